"""Score snapshots on disk: one folder per scoring run under ``<home>/scores``, holding the
customers' scores (Parquet), the journey map and the KPIs (JSON) and what produced them (meta
JSON). A file
``LATEST`` names the newest complete one; it is replaced atomically after the folder is
written, so a reader never sees a half-written snapshot."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from features.errors import ConfigError
from serving.utc import iso_z, parsed, utc_text

CUSTOMERS = "customers.parquet"
MAP = "journey_map.json"
KPIS = "kpis.json"
META = "meta.json"
LATEST = "LATEST"


@dataclass(frozen=True)
class Snapshot:
    path: Path
    meta: dict[str, Any]

    @property
    def id(self) -> str:
        return self.path.name

    def customers(self, columns: Sequence[str] | None = None) -> pa.Table:
        """The customers' scores; ``columns``: only those of them the snapshot has (an older
        one may lack a column newer runs write)."""
        if columns is None:
            return pq.read_table(self.path / CUSTOMERS)
        have = set(pq.read_schema(self.path / CUSTOMERS).names)
        return pq.read_table(self.path / CUSTOMERS, columns=[c for c in columns if c in have])

    def journey_map(self) -> dict[str, Any] | None:
        return self._json(MAP)

    def kpis(self) -> dict[str, Any] | None:
        """KPIs overall, by persona, stage, attribute and month (None: scored before KPIs)."""
        return self._json(KPIS)

    def why_no_personas(self, persona_model: str) -> tuple[str, bool]:
        """Why this snapshot, which has no KPIs by persona, has none, and whether a persona
        model must be fitted first (False: one scored it before KPIs were kept by persona,
        so scoring again is enough). ``persona_model``: the registered model's name."""
        version = self.meta.get("models", {}).get(persona_model)
        if version:
            return (f"it was scored with {persona_model} v{version} before KPIs were kept by "
                    "persona", False)
        return "it was scored without a persona model", True

    def _json(self, name: str) -> dict[str, Any] | None:
        f = self.path / name
        if not f.exists():
            return None
        data: dict[str, Any] = json.loads(f.read_text(encoding="utf-8"))
        return data


def write_snapshot(root: Path, customers: pa.Table, journey_map: dict[str, Any] | None,
                   meta: dict[str, Any], keep: int, kpis: dict[str, Any] | None = None,
                   publish: bool = False) -> Snapshot:
    """Write a new snapshot, point LATEST at it, and delete all but the ``keep`` newest (never
    the one LATEST names).

    A snapshot as of an earlier time than LATEST's (scored for a backtest) is written but not
    published (meta ``published`` false): segments, KPIs and the dashboard would otherwise
    show the past as the present, and compare it with the newer picture as a change.
    ``publish`` publishes it all the same (the newer one was scored as of a time past the
    data, say, and this is the picture meant)."""
    root.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    name = now.strftime("%Y%m%dT%H%M%S%fZ")
    tmp = root / f".{name}.tmp"
    tmp.mkdir()
    try:
        _write_files(tmp, customers, journey_map, kpis)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # a full disk left it, space and all
        raise
    previous = latest(root)
    published = publish or previous is None or not _earlier(meta.get("as_of"),
                                                            previous.meta.get("as_of"))
    before = previous if published else None
    # As-ofs in UTC, whatever the caller and the previous snapshot's writer kept (older ones
    # kept the offset of a pinned clock: -05:00 here, Z in every answer).
    written = {"as_of": utc_text(str(meta["as_of"]))} if meta.get("as_of") is not None else {}
    before_as_of = before.meta.get("as_of") if before else None
    full = {**meta, **written, "id": name, "scored_at": iso_z(now),
            "previous": before.id if before else None,
            "previous_as_of": None if before_as_of is None else utc_text(str(before_as_of)),
            "published": published}
    (tmp / META).write_text(json.dumps(full, indent=1), encoding="utf-8")
    tmp.rename(root / name)
    if published:
        pointer = root / f".{LATEST}.tmp"
        pointer.write_text(name, encoding="utf-8")
        os.replace(pointer, root / LATEST)
    _prune(root, keep, latest_name(root))
    return Snapshot(root / name, full)


def _write_files(tmp: Path, customers: pa.Table, journey_map: dict[str, Any] | None,
                 kpis: dict[str, Any] | None) -> None:
    pq.write_table(customers, tmp / CUSTOMERS, compression="zstd")
    if journey_map is not None:
        (tmp / MAP).write_text(json.dumps(journey_map, separators=(",", ":")), encoding="utf-8")
    if kpis is not None:
        (tmp / KPIS).write_text(json.dumps(kpis, separators=(",", ":")), encoding="utf-8")


def _earlier(as_of: object, than: object) -> bool:
    """Whether one snapshot's as_of (ISO text) is before another's; unknown ones are not."""
    try:
        return parsed(str(as_of)) < parsed(str(than))  # naive: UTC, as elsewhere
    except ValueError:
        return False


def _prune(root: Path, keep: int, current: str | None) -> None:
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in names[:-keep]:
        if old != current:
            shutil.rmtree(root / old, ignore_errors=True)
    # Half-written runs a killed process left (an hour old: not one being written now).
    stale = time.time() - 3600
    for left in root.glob(".*.tmp"):
        if left.is_dir() and left.stat().st_mtime < stale:
            shutil.rmtree(left, ignore_errors=True)


def read_snapshot(path: Path) -> Snapshot:
    try:
        meta = json.loads((path / META).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable score snapshot ({exc})") from exc
    return Snapshot(path, meta)


def latest(root: Path) -> Snapshot | None:
    name = latest_name(root)
    return read_snapshot(root / name) if name else None


def previous_of(root: Path, snapshot: Snapshot) -> Snapshot | None:
    """The snapshot scored before ``snapshot``, when it is still kept."""
    prev = snapshot.meta.get("previous")
    if not prev or not (root / prev / META).exists():
        return None
    return read_snapshot(root / prev)


def latest_name(root: Path) -> str | None:
    """The newest snapshot's folder name (a small read: what a reader polls to notice one)."""
    try:
        return (root / LATEST).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
