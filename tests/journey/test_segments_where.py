"""`journey segments --where` reads values as the API's query does: commas separate values,
except in a value the snapshot has whole ("Paris, France")."""

from __future__ import annotations

import pytest

from features.errors import ConfigError
from journey.marketing_cli import parse_filters

KNOWN = {"region": ("north", "south", "Paris, France"), "tier": ("high", "low")}


def test_a_known_value_with_a_comma_is_one_value() -> None:
    assert parse_filters(["region=Paris, France"], KNOWN) == {"region": ["Paris, France"]}
    assert parse_filters(["region= Paris, France ", "region=north,south"], KNOWN) == {
        "region": ["Paris, France", "north", "south"]}


def test_other_values_split_on_commas() -> None:
    assert parse_filters(["tier=high, low"], KNOWN) == {"tier": ["high", "low"]}
    # Not a value of this dimension (nor any value whole): split, then refused by name later.
    assert parse_filters(["tier=Paris, France"], KNOWN) == {"tier": ["Paris", "France"]}
    assert parse_filters(["region=Paris, France"]) == {"region": ["Paris", "France"]}


def test_a_filter_without_a_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="write DIM=VALUE"):
        parse_filters(["region="], KNOWN)
