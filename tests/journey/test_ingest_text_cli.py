"""`journey ingest` and `journey attributes` on a European export: `;` between fields, cp1252
text (--delimiter, --encoding, or the mapping file's `delimiter:` / `encoding:`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from features.store import EventStore
from tests.journey.cli_helpers import fails, ok, out, run
from tests.journey.ingest_helpers import reject_counts, stored

pytestmark = pytest.mark.usefixtures("isolated")
EXPORT = ("Kunde;Zeit;Ereignis;Betrag\n"
          "Zoë;2025-03-01T10:00:00Z;purchase;12.5\n"
          "Jürgen;2025-03-02T10:00:00Z;page_view;\n")
MAP = "customer_id=Kunde,ts=Zeit,event_type=Ereignis,value=Betrag"


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "export.csv"
    path.write_bytes(EXPORT.encode("cp1252"))
    return path


def test_options_load_every_row_with_its_accents(export: Path) -> None:
    lines = ok("ingest", export, "--map", MAP, "--delimiter", ";", "--encoding", "cp1252",
               "--store", "s.duckdb")
    assert lines[0].startswith("read 2 rows from 1 file(s): 2 valid, 0 rejected")
    got = {(e["customer_id"], e["event_type"], e["value"]) for e in stored(Path("s.duckdb"))}
    assert got == {("Zoë", "purchase", 12.5), ("Jürgen", "page_view", None)}


def test_a_mapping_file_says_the_same(export: Path, tmp_path: Path) -> None:
    mapping = tmp_path / "export.yaml"
    mapping.write_text("delimiter: ';'\nencoding: cp1252\ncolumns: {customer_id: Kunde, "
                       "ts: Zeit, event_type: Ereignis, value: Betrag}\n", encoding="utf-8")
    ok("ingest", export, "--mapping", mapping, "--store", "s.duckdb")
    assert {e["customer_id"] for e in stored(Path("s.duckdb"))} == {"Zoë", "Jürgen"}


def test_without_the_delimiter_the_error_suggests_it(export: Path) -> None:
    message = fails("ingest", export, "--map", MAP, "--encoding", "cp1252",
                    "--store", "s.duckdb")
    assert "suggests the file is delimited by ';': pass --delimiter ';'" in message


def test_without_the_encoding_accented_rows_are_rejected_not_garbled(export: Path) -> None:
    result = run("ingest", export, "--map", MAP, "--delimiter", ";", "--store", "s.duckdb")
    # Every row rejected: the load fails, and stores (and creates) nothing.
    assert result.exit_code == 2
    assert reject_counts(out(result).splitlines()) == {"invalid UTF-8 bytes": 2}
    assert not Path("s.duckdb").exists()


def test_a_bad_encoding_fails_before_the_store_is_made(export: Path) -> None:
    message = fails("ingest", export, "--map", MAP, "--encoding", "latin-9x",
                    "--store", "s.duckdb")
    assert "--encoding 'latin-9x': not an encoding Python knows" in message
    assert not Path("s.duckdb").exists()


def test_attributes_take_the_same_options(export: Path, tmp_path: Path) -> None:
    ok("ingest", export, "--map", MAP, "--delimiter", ";", "--encoding", "cp1252",
       "--store", "s.duckdb")
    attrs = tmp_path / "attrs.csv"
    attrs.write_bytes("customer_id|Region\nZoë|Köln\n".encode("cp1252"))
    lines = ok("attributes", attrs, "--delimiter", "|", "--encoding", "cp1252",
               "--store", "s.duckdb")
    assert lines[0] == "attributes ['Region'] of 1 customers -> s.duckdb"
    with EventStore(Path("s.duckdb"), read_only=True) as es:
        got = es.con.execute("SELECT customer_id, name, value FROM attributes").fetchall()
    assert got == [("Zoë", "Region", "Köln")]
