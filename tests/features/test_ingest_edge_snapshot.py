"""Snapshot folders of as-ofs within one second are apart: 23:59:59, 23:59:59.6 and
23:59:59.999999 used to share (and overwrite) one folder. Whole-second as-ofs keep the names
they always had, so snapshots written before are still found."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pytest

from features.snapshot import find_snapshot, snapshot_dir, write_snapshot
from features.spec import FeatureSpec, load_spec

SECOND = datetime(2024, 6, 1, 23, 59, 59, tzinfo=UTC)
AS_OFS = [SECOND, SECOND.replace(microsecond=600000), SECOND.replace(microsecond=999999),
          SECOND.replace(microsecond=1)]


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec()


def _table(i: int) -> pa.Table:
    return pa.table({"customer_id": ["c"], "events_total": [float(i)]})


def test_each_as_of_has_its_folder(tmp_path: Path, spec: FeatureSpec) -> None:
    for i, as_of in enumerate(AS_OFS):
        write_snapshot(tmp_path, "features", _table(i), spec, as_of)
        write_snapshot(tmp_path, "labels", _table(i), spec, as_of, 14, churn_gap_days=30)
    names = sorted(p.name for p in (tmp_path / "features" / spec.hash).iterdir())
    assert names == ["2024-06-01T23-59-59.000001Z", "2024-06-01T23-59-59.6Z",
                     "2024-06-01T23-59-59.999999Z", "2024-06-01T23-59-59Z"]
    for i, as_of in enumerate(AS_OFS):
        for snap in (find_snapshot(tmp_path, "features", spec, as_of),
                     find_snapshot(tmp_path, "labels", spec, as_of, 14, 30)):
            assert snap.read()["events_total"].to_pylist() == [float(i)]
            assert datetime.fromisoformat(snap.manifest["as_of"]) == as_of


def test_whole_seconds_keep_their_names(spec: FeatureSpec) -> None:
    root = Path("/snaps")
    assert snapshot_dir(root, "features", spec, SECOND).name == "2024-06-01T23-59-59Z"
    local = SECOND.astimezone(timezone(timedelta(hours=2))) + timedelta(microseconds=250000)
    assert snapshot_dir(root, "labels", spec, local, 7, 30).name == (
        "2024-06-01T23-59-59.25Z_h7d_g30d")
