"""Versioned snapshots: paths by definition hash and cutoff, manifests, atomic rewrite, lookup."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.errors import ConfigError
from features.schema import events_table
from features.snapshot import (
    data_fingerprint,
    find_snapshot,
    read_snapshot,
    snapshot_dir,
    write_snapshot,
)
from features.spec import FeatureSpec, load_spec
from features.store import EventStore

AS_OF = datetime(2024, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return load_spec()


@pytest.fixture(scope="module")
def other_spec(tmp_path_factory: pytest.TempPathFactory) -> FeatureSpec:
    path = tmp_path_factory.mktemp("spec") / "features.yaml"
    path.write_text("windows_days: [7, 14]\n", encoding="utf-8")
    return load_spec(path)


def table(n: int = 3, value: float = 1.0) -> pa.Table:
    return pa.table({"customer_id": [f"c{i}" for i in range(n)],
                     "events_total": [value] * n,
                     "last_channel": pa.array(["email"] * (n - 1) + [None], pa.string())})


def files(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def test_features_snapshot_path_and_manifest(tmp_path: Path, spec: FeatureSpec) -> None:
    snap = write_snapshot(tmp_path, "features", table(), spec, AS_OF, engine="duckdb",
                          store="var/events.duckdb")
    assert snap.path == tmp_path / "features" / spec.hash / "2024-06-01T00-00-00Z"
    assert files(snap.path) == ["data.parquet", "manifest.json"]
    manifest = json.loads((snap.path / "manifest.json").read_text(encoding="utf-8"))
    assert manifest == snap.manifest
    created = datetime.fromisoformat(manifest.pop("created_at"))
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)
    assert manifest == {
        "kind": "features", "definition_hash": spec.hash,
        "definition": json.loads(json.dumps(spec.definition())),
        "as_of": "2024-06-01T00:00:00+00:00", "horizon_days": None, "rows": 3,
        "columns": ["customer_id", "events_total", "last_channel"],
        "engine": "duckdb", "store": "var/events.duckdb",
    }
    assert snap.read().equals(table())


def test_labels_snapshot_path_has_the_horizon_and_gap(tmp_path: Path, spec: FeatureSpec) -> None:
    snap = write_snapshot(tmp_path, "labels", table(2), spec, AS_OF, 14, churn_gap_days=30)
    assert snap.path == tmp_path / "labels" / spec.hash / "2024-06-01T00-00-00Z_h14d_g30d"
    assert (snap.manifest["kind"], snap.manifest["horizon_days"], snap.manifest["rows"]) == (
        "labels", 14, 2)
    assert snap.manifest["churn_gap_days"] == 30


def test_as_of_is_stamped_in_utc(tmp_path: Path, spec: FeatureSpec) -> None:
    local = datetime(2024, 6, 1, 2, 30, 15, tzinfo=timezone(timedelta(hours=2)))
    snap = write_snapshot(tmp_path, "features", table(), spec, local)
    assert snap.path.name == "2024-06-01T00-30-15Z"
    assert snap.manifest["as_of"] == "2024-06-01T00:30:15+00:00"
    assert find_snapshot(tmp_path, "features", spec, local.astimezone(UTC)).path == snap.path


def test_paths_differ_by_hash_and_as_of(spec: FeatureSpec, other_spec: FeatureSpec) -> None:
    root = Path("/snaps")
    base = snapshot_dir(root, "features", spec, AS_OF)
    assert spec.hash != other_spec.hash
    assert snapshot_dir(root, "features", other_spec, AS_OF) != base
    assert snapshot_dir(root, "features", spec, AS_OF + timedelta(seconds=1)) != base
    assert snapshot_dir(root, "labels", spec, AS_OF, 7, 30) != snapshot_dir(
        root, "labels", spec, AS_OF, 14, 30)
    assert snapshot_dir(root, "labels", spec, AS_OF, 14, 30) != snapshot_dir(
        root, "labels", spec, AS_OF, 14, 60)
    with pytest.raises(ValueError, match="snapshot kind"):
        snapshot_dir(root, "models", spec, AS_OF)


def test_read_and_find(tmp_path: Path, spec: FeatureSpec) -> None:
    written = write_snapshot(tmp_path, "features", table(), spec, AS_OF)
    found = find_snapshot(tmp_path, "features", spec, AS_OF)
    assert found.path == written.path
    assert found.manifest == written.manifest
    assert found.read().equals(table())
    assert read_snapshot(written.path).manifest == written.manifest
    labels = write_snapshot(tmp_path, "labels", table(1), spec, AS_OF, 7, churn_gap_days=30)
    assert find_snapshot(tmp_path, "labels", spec, AS_OF, 7, 30).path == labels.path


def test_missing_snapshots_raise_config_error(tmp_path: Path, spec: FeatureSpec,
                                              other_spec: FeatureSpec) -> None:
    write_snapshot(tmp_path, "features", table(), spec, AS_OF)
    write_snapshot(tmp_path, "labels", table(), spec, AS_OF, 14, churn_gap_days=30)
    with pytest.raises(ConfigError, match="run `journey features` first") as err:
        find_snapshot(tmp_path, "features", spec, AS_OF + timedelta(days=1))
    assert spec.hash in str(err.value)
    with pytest.raises(ConfigError, match=f"definition {other_spec.hash}"):
        find_snapshot(tmp_path, "features", other_spec, AS_OF)  # another definition
    with pytest.raises(ConfigError, match=r"horizon 7d and churn gap 30d.*run `journey labels"):
        find_snapshot(tmp_path, "labels", spec, AS_OF, 7, 30)  # another horizon
    with pytest.raises(ConfigError, match="run `journey labels` first"):
        find_snapshot(tmp_path, "labels", spec, AS_OF, 14, 60)  # another gap
    # a directory that is not a (complete) snapshot
    half = snapshot_dir(tmp_path, "features", spec, AS_OF + timedelta(days=2))
    half.mkdir(parents=True)
    (half / "data.parquet").write_bytes(b"")
    with pytest.raises(ConfigError, match="not a snapshot"):
        find_snapshot(tmp_path, "features", spec, AS_OF + timedelta(days=2))
    with pytest.raises(ConfigError, match="not a snapshot"):
        read_snapshot(tmp_path / "nowhere")


def test_rewrite_replaces_the_snapshot(tmp_path: Path, spec: FeatureSpec) -> None:
    first = write_snapshot(tmp_path, "features", table(3, 1.0), spec, AS_OF, engine="duckdb")
    second = write_snapshot(tmp_path, "features", table(5, 2.0), spec, AS_OF, engine="spark")
    assert second.path == first.path
    assert files(second.path) == ["data.parquet", "manifest.json"]  # no temporary files left
    found = find_snapshot(tmp_path, "features", spec, AS_OF)
    assert found.read().equals(table(5, 2.0))
    assert (found.manifest["rows"], found.manifest["engine"]) == (5, "spark")


def test_failed_rewrite_leaves_the_old_snapshot(tmp_path: Path, spec: FeatureSpec,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    write_snapshot(tmp_path, "features", table(3, 1.0), spec, AS_OF)
    real = pq.write_table

    def crash(tbl: pa.Table, where: Path, **kwargs: object) -> None:
        real(tbl.slice(0, 1), where, **kwargs)  # a partial file, then the process dies
        raise OSError("disk full")

    monkeypatch.setattr("features.snapshot.pq.write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        write_snapshot(tmp_path, "features", table(5, 2.0), spec, AS_OF)
    monkeypatch.undo()
    found = find_snapshot(tmp_path, "features", spec, AS_OF)
    assert found.read().equals(table(3, 1.0))
    assert found.manifest["rows"] == 3
    # the next successful write cleans up after the failed one
    write_snapshot(tmp_path, "features", table(4, 3.0), spec, AS_OF)
    assert files(found.path) == ["data.parquet", "manifest.json"]
    assert find_snapshot(tmp_path, "features", spec, AS_OF).read().equals(table(4, 3.0))


def test_unserializable_manifest_leaves_the_old_snapshot(tmp_path: Path,
                                                         spec: FeatureSpec) -> None:
    """A manifest that cannot be written must not leave new data under the old manifest."""
    write_snapshot(tmp_path, "features", table(3, 1.0), spec, AS_OF, store="a.duckdb")
    with pytest.raises(TypeError):
        write_snapshot(tmp_path, "features", table(5, 2.0), spec, AS_OF,
                       store=Path("b.duckdb"))  # a Path is not JSON
    found = find_snapshot(tmp_path, "features", spec, AS_OF)
    assert (found.manifest["rows"], found.manifest["store"]) == (3, "a.duckdb")
    assert found.read().equals(table(3, 1.0))


def test_labels_of_another_churn_gap_are_another_snapshot(tmp_path: Path,
                                                          spec: FeatureSpec) -> None:
    """`journey labels --churn-gap-days 30` then `--churn-gap-days 60`: the gap dates churn, so
    the second must not replace the first; each is found by its own gap."""
    g30 = write_snapshot(tmp_path, "labels", table(2, 30.0), spec, AS_OF, 14, churn_gap_days=30)
    g60 = write_snapshot(tmp_path, "labels", table(3, 60.0), spec, AS_OF, 14, churn_gap_days=60)
    assert g30.path != g60.path
    for gap, rows in ((30, table(2, 30.0)), (60, table(3, 60.0))):
        found = find_snapshot(tmp_path, "labels", spec, AS_OF, 14, gap)
        assert found.read().equals(rows)
        assert found.manifest["churn_gap_days"] == gap


def test_labels_need_their_horizon_and_gap(tmp_path: Path, spec: FeatureSpec) -> None:
    """Without either, snapshots of other horizons or gaps would share one folder."""
    for horizon, gap in ((14, None), (None, 30), (None, None)):
        with pytest.raises(ValueError, match="horizon_days and churn_gap_days"):
            write_snapshot(tmp_path, "labels", table(), spec, AS_OF, horizon,
                           churn_gap_days=gap)
        with pytest.raises(ValueError, match="horizon_days and churn_gap_days"):
            find_snapshot(tmp_path, "labels", spec, AS_OF, horizon, gap)
    assert not (tmp_path / "labels").exists()


# -- what a snapshot was made from ---------------------------------------------------------------
def attribute_store(path: Path) -> EventStore:
    store = EventStore(path)
    store.append(events_table([
        {"event_id": f"e{i}", "customer_id": c, "ts": AS_OF - timedelta(days=i + 1),
         "event_type": "page_view", "channel": "web"} for i, c in enumerate(["a", "b"])]))
    return store


def test_fingerprint_of_a_store_without_attributes_is_its_events(tmp_path: Path) -> None:
    """The events' count, newest time and contents hash; no attributes entry."""
    with attribute_store(tmp_path / "s.duckdb") as store:
        made = data_fingerprint(store, AS_OF)
    assert set(made) == {"events", "newest", "content"}
    assert (made["events"], made["newest"]) == (2, "2024-05-31T00:00:00")
    assert len(made["content"]) == 16 and int(made["content"], 16)


def test_fingerprint_changes_with_the_attributes(tmp_path: Path) -> None:
    """Attributes have no time: a snapshot as of a past T is built from the values loaded then.
    A later load that changes one (the audit's C0000000 region=CHANGED) must make it stale."""
    with attribute_store(tmp_path / "s.duckdb") as store:
        store.load_attributes(pa.table({"customer_id": ["a", "b"], "region": ["west", "east"]}))
        loaded = data_fingerprint(store, AS_OF)
        assert loaded["attributes"]["rows"] == 2
        store.load_attributes(pa.table({"customer_id": ["a"], "region": ["west"]}))
        assert data_fingerprint(store, AS_OF) == loaded  # the same values again: same data
        store.load_attributes(pa.table({"customer_id": ["a"], "region": ["CHANGED"]}))
        changed = data_fingerprint(store, AS_OF)
        assert changed != loaded
        assert {k: changed[k] for k in ("events", "newest")} == {
            k: loaded[k] for k in ("events", "newest")}
        store.load_attributes(pa.table({"customer_id": ["b"], "device": ["mobile"]}))
        assert data_fingerprint(store, AS_OF)["attributes"]["rows"] == 3
