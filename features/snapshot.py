"""Versioned snapshots.

Layout: <root>/features/<definition hash>/<as_of>/ and
<root>/labels/<definition hash>/<as_of>_h<H>d_g<G>d/, each {data.parquet, manifest.json}.

Training and serving read snapshots by (definition hash, cutoff), so a vector can never be
paired with features computed by another definition. Labels are also identified by their
horizon H and churn gap G (``churn_gap_days`` dates churn, so labels with other gaps are other
labels): `journey labels --churn-gap-days 30` and `--churn-gap-days 60` keep two snapshots.
Label snapshots written before the gap was in the path (``<as_of>_h<H>d``) are not read: they
are computed again, under today's label definitions.

A manifest records what the snapshot was made from (``data_fingerprint``: the events before
its end, their contents included, and the customer attributes as loaded when it was built), so
a snapshot is reused only while the store still holds exactly that.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import ConfigError
from features.spec import FeatureSpec
from features.store import EventStore
from features.store_attributes import attributes_fingerprint

KINDS = ("features", "labels")


@dataclass(frozen=True)
class Snapshot:
    path: Path
    manifest: dict[str, Any]

    def read(self) -> pa.Table:
        return pq.read_table(self.path / "data.parquet")


def _stamp(when: datetime) -> str:
    """An as-of as a folder name: to the second (the names snapshots have always had), and
    with its fraction when it has one (23:59:59.6 -> ``…T23-59-59.6Z``), so as-ofs within one
    second get folders of their own instead of overwriting each other. The fraction is
    written without trailing zeros, so each instant has one name."""
    utc = when.astimezone(UTC)
    fraction = f".{utc.microsecond:06d}".rstrip("0") if utc.microsecond else ""
    return utc.strftime("%Y-%m-%dT%H-%M-%S") + fraction + "Z"


def snapshot_dir(
    root: Path, kind: str, spec: FeatureSpec, as_of: datetime, horizon_days: int | None = None,
    churn_gap_days: int | None = None,
) -> Path:
    if kind not in KINDS:
        raise ValueError(f"snapshot kind must be one of {KINDS}")
    if kind == "labels" and (horizon_days is None or churn_gap_days is None):
        # Without both, labels of another horizon or gap would share (and overwrite) a folder.
        raise ValueError("a labels snapshot is identified by horizon_days and churn_gap_days")
    leaf = (_stamp(as_of) + (f"_h{horizon_days}d" if horizon_days is not None else "")
            + (f"_g{churn_gap_days}d" if churn_gap_days is not None else ""))
    return root / kind / spec.hash / leaf


def check_root(root: Path, kind: str) -> None:
    """Fail before any work when ``kind`` snapshots cannot be written under ``root`` (a file
    there, a folder that cannot be created or written), not after minutes of computing."""
    if kind not in KINDS:
        raise ValueError(f"snapshot kind must be one of {KINDS}")
    folder = root / kind
    blocking = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocking is not None and not blocking.is_dir():
        raise ConfigError(f"snapshot folder {root} (--out or JOURNEY_SNAPSHOTS): {blocking} "
                          "is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        where = exc.filename or folder
        raise ConfigError(f"snapshot folder {root} (--out or JOURNEY_SNAPSHOTS): cannot create "
                          f"or write {where}: {exc.strerror or exc}") from exc


def write_snapshot(
    root: Path,
    kind: str,
    table: pa.Table,
    spec: FeatureSpec,
    as_of: datetime,
    horizon_days: int | None = None,
    churn_gap_days: int | None = None,
    **extra: Any,
) -> Snapshot:
    """Write atomically: a reader sees the old snapshot or the whole new one. Labels need
    ``horizon_days`` and ``churn_gap_days``, which name the folder and the manifest records."""
    target = snapshot_dir(root, kind, spec, as_of, horizon_days, churn_gap_days)
    target.mkdir(parents=True, exist_ok=True)
    manifest = {
        "kind": kind,
        "definition_hash": spec.hash,
        "definition": spec.definition(),
        "as_of": as_of.astimezone(UTC).isoformat(),
        "horizon_days": horizon_days,
        **({} if churn_gap_days is None else {"churn_gap_days": churn_gap_days}),
        "rows": table.num_rows,
        "columns": table.column_names,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **extra,
    }
    # Everything that can fail (serializing, writing) happens before the first replace, so a
    # failed rewrite leaves the old data and manifest together.
    text = json.dumps(manifest, indent=2)
    tmp = target / "data.parquet.tmp"
    pq.write_table(table, tmp, compression="zstd")
    (target / "manifest.json.tmp").write_text(text, encoding="utf-8")
    os.replace(tmp, target / "data.parquet")
    os.replace(target / "manifest.json.tmp", target / "manifest.json")
    return Snapshot(target, manifest)


def read_snapshot(path: Path) -> Snapshot:
    manifest_path = path / "manifest.json"
    if not manifest_path.is_file() or not (path / "data.parquet").is_file():
        raise ConfigError(f"{path}: not a snapshot (needs data.parquet and manifest.json)")
    return Snapshot(path, json.loads(manifest_path.read_text(encoding="utf-8")))


def find_snapshot(
    root: Path, kind: str, spec: FeatureSpec, as_of: datetime, horizon_days: int | None = None,
    churn_gap_days: int | None = None,
) -> Snapshot:
    path = snapshot_dir(root, kind, spec, as_of, horizon_days, churn_gap_days)
    if not path.is_dir():
        window = ("" if kind != "labels" else
                  f", horizon {horizon_days}d and churn gap {churn_gap_days}d")
        raise ConfigError(
            f"no {kind} snapshot for definition {spec.hash} as of "
            f"{as_of.isoformat()}{window} under {root}; run `journey {kind}` first"
        )
    return read_snapshot(path)


# An order-free hash of every stored column of the events before the end: a store reloaded
# with other contents (channels renamed, values fixed) under the same count and newest time
# differs. event_id is unique in a store, so XOR cannot cancel two equal rows. ~50 ms per
# million events (1.7M-event demo store: 78 ms against 0.4 ms for the count alone), once per
# snapshot; the features themselves take ~1 s per million.
_CONTENT = ("bit_xor(hash(event_id, customer_id, ts, event_type, channel, value, action, "
            "properties))")


def data_fingerprint(store: EventStore, end: datetime) -> dict[str, Any]:
    """What a snapshot computed from events before ``end`` (T for features, T+H for labels)
    was made of: the number of those events, the newest one's time and a hash of their
    contents, and, once attributes are loaded, the attributes table's fingerprint. A snapshot
    of another store, of this one before late events arrived or before it was loaded again
    with other contents, or from before an attribute load that changed a value, differs; one
    scan of the events before ``end`` and one of the (much smaller) attributes table.

    Attributes have no time: a snapshot as of a past T holds them as loaded when it was built,
    so a load after it must make it stale rather than leave two answers for one T. A store
    without attributes keeps no attributes entry. Manifests written before the content hash
    was recorded lack it, so their snapshots are computed again. DuckDB's hash may differ
    between DuckDB versions: a snapshot is then computed again too."""
    row = store.con.execute(
        f"SELECT count(*), max(ts)::TIMESTAMP, {_CONTENT} FROM events WHERE ts < ?", [end]
    ).fetchone()
    events, newest, content = row if row else (0, None, None)
    made: dict[str, Any] = {"events": int(events),
                            "newest": None if newest is None else newest.isoformat(),
                            "content": f"{int(content or 0):016x}"}
    attributes = attributes_fingerprint(store.con)
    if attributes is not None:
        made["attributes"] = attributes
    return made
