"""Score snapshots as of an earlier time than the newest (scored for a backtest) are kept but
not published: LATEST, and so segments, KPIs and the dashboard, stay on the newest picture."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from serving.snapshots import Snapshot, latest, previous_of, read_snapshot, write_snapshot


def write(root: Path, as_of: str, keep: int = 9) -> str:
    table = pa.table({"customer_id": ["c1"], "churn": [0.5]})
    return write_snapshot(root, table, None, {"as_of": as_of}, keep=keep).id


def newest(root: Path) -> Snapshot:
    snap = latest(root)
    assert snap is not None, f"no LATEST under {root}"
    return snap


def test_an_earlier_as_of_is_written_but_not_published(tmp_path: Path) -> None:
    root = tmp_path / "scores"
    jan = write(root, "2026-01-01T00:00:00Z")
    nov = write(root, "2025-11-01T00:00:00Z")  # for `journey backtest`
    assert newest(root).id == jan and newest(root).meta["published"] is True
    back = read_snapshot(root / nov).meta
    assert back["published"] is False and back["previous"] is None  # no backwards change
    later = write(root, "2026-02-01T00:00:00Z")
    assert newest(root).id == later
    before = previous_of(root, newest(root))
    assert before is not None and before.id == jan  # not the backdated one
    again = write(root, "2026-02-01T00:00:00Z")  # a rescore at the same time is published
    assert newest(root).id == again


def test_pruning_never_removes_the_published_snapshot(tmp_path: Path) -> None:
    root = tmp_path / "scores"
    jan = write(root, "2026-01-01T00:00:00Z", keep=1)
    nov = write(root, "2025-11-01T00:00:00Z", keep=1)
    assert (root / jan).is_dir() and (root / nov).is_dir()  # LATEST's is older, yet kept
    oct_ = write(root, "2025-10-01T00:00:00Z", keep=1)
    assert not (root / nov).exists() and (root / oct_).is_dir()
    assert newest(root).id == jan


def test_publish_shows_an_earlier_snapshot_all_the_same(tmp_path: Path) -> None:
    """Scored first as of now, long after the data ends, then as of the data's end: the
    second is the picture meant, and nothing else would show it."""
    root = tmp_path / "scores"
    write(root, "2026-12-05T00:00:00Z")
    table = pa.table({"customer_id": ["c1"], "churn": [0.5]})
    meant = write_snapshot(root, table, None, {"as_of": "2024-04-12T00:00:00Z"}, keep=9,
                           publish=True)
    assert newest(root).id == meant.id and meant.meta["published"] is True


def test_a_failed_write_leaves_no_half_written_folder(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "scores"
    first = write(root, "2026-01-01T00:00:00Z")

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(OSError, match="No space left"):
        write(root, "2026-02-01T00:00:00Z")
    assert sorted(p.name for p in root.iterdir()) == sorted([first, "LATEST"])


def test_a_killed_runs_leftover_is_swept_once_stale(tmp_path: Path) -> None:
    root = tmp_path / "scores"
    write(root, "2026-01-01T00:00:00Z")
    old, fresh = root / ".20260101T000000000000Z.tmp", root / ".20260102T000000000000Z.tmp"
    for left in (old, fresh):
        left.mkdir()
        (left / "customers.parquet").write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    write(root, "2026-02-01T00:00:00Z")
    assert not old.exists() and fresh.exists()  # a fresh one may be another run's, in progress
