"""Snapshots are reused only while the store holds the same events, contents included: a store
loaded again at the same path with channels renamed kept the number of events and the newest
time, and training reused the old store's vectors (whose ch_* columns were wrong)."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from features.schema import events_table
from features.snapshot import data_fingerprint
from features.spec import FeatureSpec, load_spec
from features.store import EventStore
from training.dataset import SnapshotSource

T = datetime(2025, 3, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec()


def load(path: Path, channel: str) -> None:
    """A new store at ``path``: the same rows each time, but for their channel."""
    path.unlink(missing_ok=True)
    with EventStore(path) as es:
        es.append(events_table([
            {"event_id": f"e{i}", "customer_id": f"c{i % 3}", "event_type": "page_view",
             "ts": T - timedelta(days=i + 1), "channel": channel} for i in range(6)]))


def test_a_store_loaded_again_with_other_contents_is_computed_again(
        tmp_path: Path, spec: FeatureSpec) -> None:
    store, logged = tmp_path / "events.duckdb", list[str]()
    load(store, "fb")
    source = SnapshotSource(store, tmp_path / "snapshots", spec, log=logged.append)
    try:
        first = source.features(T)
        assert first.read()["last_channel"].to_pylist() == ["other"] * 3
        source.close()
        load(store, "email")  # the renamed reload: same count, same newest event
        again = source.features(T)
    finally:
        source.close()
    made, now = first.manifest["data"], again.manifest["data"]
    assert (made["events"], made["newest"]) == (now["events"], now["newest"])
    assert made["content"] != now["content"]
    assert again.read()["last_channel"].to_pylist() == ["email"] * 3
    said = [line for line in logged if "computing it again" in line]
    assert len(said) == 1 and f"contents {made['content']}" in said[0]


def test_a_manifest_without_the_contents_hash_is_stale(tmp_path: Path, spec: FeatureSpec
                                                       ) -> None:
    """Snapshots written before the hash was recorded are computed again, not reused blind
    (nor a crash)."""
    store, logged = tmp_path / "events.duckdb", list[str]()
    load(store, "email")
    source = SnapshotSource(store, tmp_path / "snapshots", spec, log=logged.append)
    try:
        first = source.features(T)
        manifest = first.path / "manifest.json"
        old = json.loads(manifest.read_text(encoding="utf-8"))
        del old["data"]["content"]
        manifest.write_text(json.dumps(old), encoding="utf-8")
        assert source.features(T).manifest["data"] == first.manifest["data"]
        assert source.features(T).path == first.path
    finally:
        source.close()
    computing = [line for line in logged if line.startswith("computing")]
    assert len(computing) == 2
    assert any("contents not recorded" in line for line in logged)


def test_the_contents_hash_ignores_row_order_and_store_copies(tmp_path: Path) -> None:
    rows: list[dict[str, object]] = [
        {"event_id": f"e{i}", "customer_id": "c", "event_type": "page_view",
         "ts": T - timedelta(hours=i + 1), "channel": "web", "value": float(i),
         "properties": '{"a":1}' if i % 2 else None} for i in range(5)]
    with EventStore(tmp_path / "a.duckdb") as a, EventStore(tmp_path / "b.duckdb") as b:
        a.append(events_table(rows))
        b.append(events_table(rows[::-1]))
        assert data_fingerprint(a, T) == data_fingerprint(b, T)
        changed = data_fingerprint(a, T - timedelta(hours=2))  # a cutoff sees fewer events
        assert changed["content"] != data_fingerprint(a, T)["content"]
    shutil.copy(tmp_path / "a.duckdb", tmp_path / "c.duckdb")
    with EventStore(tmp_path / "c.duckdb", read_only=True) as c, \
            EventStore(tmp_path / "a.duckdb", read_only=True) as a:
        assert data_fingerprint(c, T) == data_fingerprint(a, T)
