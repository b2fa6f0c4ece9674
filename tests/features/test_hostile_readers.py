"""Reader fixes for hostile files (issue #8, item 5): bad timestamps, failing rows, read errors."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import SourceError
from features.mapping import mapping_from_dict
from features.normalize import Normalizer
from features.readers import ReadLimits, read_batches
from tests.features.hostile_cases import HEADER

if TYPE_CHECKING:
    from tests.conftest import LoadFn

pytestmark = pytest.mark.timeout(60)


# -- timestamps ----------------------------------------------------------------------------------
def test_epoch_numbers_past_duckdbs_range(tmp_path: Path, load: LoadFn) -> None:
    """make_timestamp raised on them, and the whole batch (the load) failed."""
    path = tmp_path / "e.csv"
    path.write_text("customer_id,ts,event_type\nc1,9223372036854775000,page_view\n"
                    "c2,-9223372036854775000,page_view\nc3,99999999999999999,page_view\n"
                    "c4,1700000000000000,page_view\n")
    mapping = mapping_from_dict({"columns": {f: f for f in ("customer_id", "ts", "event_type")},
                                 "ts_format": "epoch_us"}, "m")
    got = load(path, mapping)
    assert got.column("customer_id") == ["c4"]
    assert [t[:3] for t in got.reject_tuples()] == [
        (2, "ts", "timestamp outside 1970-2100"),
        (3, "ts", "timestamp outside 1970-2100"),
        (4, "ts", "timestamp outside 1970-2100"),
    ]


@pytest.mark.parametrize("word", ["epoch", "infinity", "-infinity", "now", "allballs"])
def test_words_are_not_timestamps(tmp_path: Path, load: LoadFn, word: str) -> None:
    path = tmp_path / "e.csv"
    path.write_text(f"{HEADER}c1,{word},page_view\n")
    assert load(path).reject_tuples() == [(2, "ts", "unparseable timestamp", word)]


# -- whatever the checks did not foresee, and files that cannot be read --------------------------
def test_a_database_error_on_some_rows_rejects_only_those(
    tmp_path: Path, load: LoadFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DuckDB error on one value failed the whole batch (the load); the batch is now halved
    until the rows that cause it are found, and they are rejected with the error."""
    original = Normalizer._ts_expr

    def fragile(self: Normalizer, schema: pa.Schema, resolved: dict[str, tuple[str, ...]]) -> str:
        good = original(self, schema, resolved)
        return ('CASE WHEN starts_with("customer_id", \'boom\') THEN '
                f'CAST(CAST("customer_id" AS INTEGER) AS TIMESTAMPTZ) ELSE {good} END')

    monkeypatch.setattr(Normalizer, "_ts_expr", fragile)
    path = tmp_path / "e.csv"
    ids = [f"boom{i}" if i in (3, 7) else f"c{i}" for i in range(10)]
    path.write_text(HEADER + "".join(f"{c},2024-01-01,page_view\n" for c in ids))
    got = load(path)
    assert got.column("customer_id") == [c for c in ids if not c.startswith("boom")]
    assert [(t[0], t[2].split(":")[0]) for t in got.reject_tuples()] == [
        (5, "value the checks did not foresee"), (9, "value the checks did not foresee")]
    assert "Conversion Error" in got.reject_tuples()[0][2]


def test_parquet_timestamps_past_duckdbs_range(tmp_path: Path, load: LoadFn) -> None:
    """DuckDB cannot scan these seconds as microseconds: the batch failed, and with it the load.
    Found by the halving above, they are rejected one by one."""
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({
        "customer_id": ["c1", "c2", "c3"],
        "ts": pa.array([1_700_000_000, 9 * 10**15, -9 * 10**15], pa.timestamp("s")),
        "event_type": ["page_view"] * 3,
    }), path)
    got = load(path)
    assert got.column("customer_id") == ["c1"]
    assert [(t[0], t[2].split(":")[0]) for t in got.reject_tuples()] == [
        (2, "value the checks did not foresee"), (3, "value the checks did not foresee")]


def test_isolating_failing_rows_has_a_query_budget(
    tmp_path: Path, load: LoadFn, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the budget a failing part is rejected whole: unbounded halving costs about two
    queries a row when every row fails (200k for a batch of 100k)."""
    monkeypatch.setattr("features.normalize.MAX_ISOLATING_QUERIES", 2)
    path = tmp_path / "e.parquet"
    pq.write_table(pa.table({
        "customer_id": [f"c{i}" for i in range(8)],
        "ts": pa.array([1_700_000_000] * 4 + [9 * 10**15] + [1_700_000_000] * 3,
                       pa.timestamp("s")),
        "event_type": ["page_view"] * 8,
    }), path)
    got = load(path)
    assert got.column("customer_id") == ["c0", "c1", "c2", "c3"]  # the half without the bad row
    assert [t[0] for t in got.reject_tuples()] == [5, 6, 7, 8]


def test_an_os_error_while_reading_is_a_source_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "e.csv"
    path.write_text(HEADER)

    def denied(p: Path, gz: bool) -> None:
        raise PermissionError(13, "Permission denied", str(p))

    monkeypatch.setattr("features.readers._open", denied)
    with pytest.raises(SourceError, match=r"e\.csv: cannot be read: .*Permission denied"):
        list(read_batches(path))


# -- memory stays bounded by batch, not by file --------------------------------------------------
def test_batches_are_cut_by_rejects_and_by_bytes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "x\n" * 1000)  # only rejects: they were held until the file's end
    batches = list(read_batches(bad, batch_rows=100))
    assert len(batches) >= 10
    assert sum(len(b.rejects) for b in batches) == 1000
    wide = tmp_path / "wide.csv"
    wide.write_text("customer_id,ts,event_type,note\n"
                    + "".join(f"c{i},2024-01-01,page_view,{'n' * 500}\n" for i in range(100)))
    batches = list(read_batches(wide, limits=ReadLimits(max_batch_bytes=5000)))
    assert len(batches) >= 10
    assert sum(b.table.num_rows for b in batches) == 100
