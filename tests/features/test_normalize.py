"""The service normalises event types and channels as the file loader's SQL does."""

from __future__ import annotations

import duckdb
import pytest

from features.normalize import NORMALISE_TYPE_SQL, clean_text, normal_channel, normal_event_type

SPELLINGS = ["Add to Cart", "add-to-cart", "  Page View\t", "purchase", "Order--Completed",
             "Sign Up \r\n", "ÉTAPE Über", "a\fb", "x - y", "EMAIL", " Call_Center "]


@pytest.mark.parametrize("text", SPELLINGS)
def test_python_and_sql_agree(text: str) -> None:
    con = duckdb.connect()
    cleaned = clean_text("$1")
    sql_type, sql_channel = con.execute(
        f"SELECT {NORMALISE_TYPE_SQL.format(cleaned)}, lower({cleaned})", [text]).fetchone() or (
        None, None)
    assert normal_event_type(text) == sql_type
    assert normal_channel(text) == sql_channel


def test_examples() -> None:
    assert normal_event_type(" Add to Cart ") == "add_to_cart"
    assert normal_channel("Email ") == "email"
