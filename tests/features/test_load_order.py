"""A load stores the same events whatever the order of its rows: of rows sharing an event id
(Shapees reuses ids for different users) the first in the file used to win, so a shuffled file
gave another store, other features and other labels."""

from __future__ import annotations

import csv
from itertools import permutations
from pathlib import Path

import pytest

from features.mapping import identity_mapping
from features.store import EventStore
from features.store_conflicts import EARLIER, conflicts_path
from features.taxonomy import Taxonomy

HEADER = "event_id,customer_id,ts,event_type,channel,value,action,properties\n"
ROWS = [
    "s1,u2,2024-01-01T10:00:00Z,page_view,web,,,\n",  # one id, three users at one time
    "s1,u1,2024-01-01T10:00:00Z,page_view,web,,,\n",
    "s1,u3,2024-01-01T10:00:00Z,page_view,web,,,\n",
    "s2,u1,2024-01-02T10:00:00Z,purchase,web,20,,\n",  # one id: only the value differs
    "s2,u1,2024-01-02T10:00:00Z,purchase,web,,,\n",
    's3,u1,2024-01-03T10:00:00Z,support_ticket,web,,,"{""csat"": 2}"\n',  # only properties
    "s3,u1,2024-01-03T10:00:00Z,support_ticket,web,,,\n",
    "s4,u4,2024-01-04T10:00:00Z,page_view,web,,,\n",  # only the channel
    "s4,u4,2024-01-04T10:00:00Z,page_view,app,,,\n",
    ",u5,2024-01-05T00:00:00Z,purchase,web,5.0000001,,\n",  # one derived id: numbered apart
    ",u5,2024-01-05T00:00:00Z,purchase,web,5.0000002,,\n",
    ",u5,2024-01-05T00:00:00Z,purchase,web,5,,\n",
]


def load(folder: Path, rows: list[str], taxonomy: Taxonomy) -> tuple[list[tuple[object, ...]],
                                                                      list[str], int]:
    """(stored rows, listed conflicts' ids, conflicts counted) of one load of ``rows``."""
    folder.mkdir()
    (folder / "in.csv").write_text(HEADER + "".join(rows), encoding="utf-8")
    rejects = folder / "rejects.csv"
    with EventStore(folder / "s.duckdb") as store:
        report = store.ingest(folder / "in.csv", identity_mapping(), taxonomy, rejects)
        stored = store.con.execute(
            "SELECT event_id, customer_id, epoch_us(ts), event_type, channel, value, action, "
            "properties "
            "FROM events ORDER BY event_id").fetchall()
    with conflicts_path(rejects).open(newline="", encoding="utf-8") as fh:
        listed = sorted(r["value"] for r in csv.DictReader(fh))
    assert all(EARLIER in r for r in conflicts_path(rejects).read_text().splitlines()[1:])
    return stored, listed, report.append.conflicts


@pytest.mark.parametrize("order", [list(range(len(ROWS))), list(range(len(ROWS)))[::-1],
                                   [3, 7, 0, 11, 5, 2, 9, 1, 6, 10, 4, 8]])
def test_the_rows_order_does_not_change_the_store(tmp_path: Path, taxonomy: Taxonomy,
                                                  order: list[int]) -> None:
    expected = load(tmp_path / "file", ROWS, taxonomy)
    got = load(tmp_path / "shuffled", [ROWS[i] for i in order], taxonomy)
    assert got == expected
    stored, listed, conflicts = expected
    assert conflicts == 5 and listed == ["s1", "s1", "s2", "s3", "s4"]
    winners = {row[0]: row for row in stored}
    assert winners["s1"][1] == "u1"  # the smallest customer at the same time
    assert winners["s2"][5] == 20.0  # a value before none
    assert winners["s3"][7] == '{"csat": 2}'
    assert winners["s4"][4] == "app"
    assert len(stored) == 7 and sum(row[1] == "u5" for row in stored) == 3


def test_every_order_of_a_few_rows_gives_one_store(tmp_path: Path, taxonomy: Taxonomy) -> None:
    rows = ROWS[:3] + ROWS[9:]
    stores = {str(load(tmp_path / f"p{k}", [rows[i] for i in p], taxonomy)[0])
              for k, p in enumerate(permutations(range(len(rows))))
              if k % 37 == 0}  # a spread of the 720 orders
    assert len(stores) == 1
