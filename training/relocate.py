"""Pointing the embedded MLflow store at its artifacts again after ``JOURNEY_HOME`` moved.

MLflow's SQLite store records every artifact location as an absolute ``file://`` URI. A home
moved or restored elsewhere then fails to load its models ("No such file"), and a copied home
silently keeps reading, and later writing, the original's artifacts: deleting the original
breaks the copy. Relocating rewrites each URI under another home's ``mlflow/artifacts`` to the
same place under this home's, after checking that every rewritten location exists here.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from features.errors import ConfigError
from training.registry_lock import Note, registry_lock

# (table, key column, location column): every column of MLflow's schema holding an artifact
# location (checked against mlflow 3.x; a column a later schema drops is skipped).
LOCATIONS = (
    ("experiments", "experiment_id", "artifact_location"),
    ("runs", "run_uuid", "artifact_uri"),
    ("logged_models", "model_id", "artifact_location"),
    ("model_versions", "name || ' v' || version", "storage_location"),
    ("model_versions", "name || ' v' || version", "source"),
)
ARTIFACTS = "/mlflow/artifacts"
MODEL_TABLES = frozenset({"logged_models", "model_versions"})


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


@dataclass
class Relocation:
    """What relocating found: each other root with how many locations pointed under it, the
    rows rewritten, and the models whose files are not under this home (nothing is rewritten
    while there are any)."""

    root: str
    others: dict[str, int] = field(default_factory=dict)
    rewritten: int = 0
    missing: list[str] = field(default_factory=list)
    backup: Path | None = None


def _path(uri: str) -> str:
    return unquote(urlparse(uri).path)


def _split(location: str) -> tuple[str, str] | None:
    """(root, rest) of a ``file://`` location under some home's ``mlflow/artifacts``."""
    if not location.startswith("file://"):
        return None
    path = _path(location)
    head, sep, rest = path.partition(ARTIFACTS)
    if not sep or (rest and not rest.startswith("/")):
        return None
    return head + ARTIFACTS, rest


def _rows(db: sqlite3.Connection) -> Iterator[tuple[str, str, str, str]]:
    """(table, column, key, location) of every artifact location the store records."""
    for table, key, column in LOCATIONS:
        try:
            rows = db.execute(f"SELECT {key}, {column} FROM {table}").fetchall()
        except sqlite3.OperationalError:  # a schema without this table or column
            continue
        for k, location in rows:
            if isinstance(location, str):
                yield table, column, str(k), location


def plan(db_file: Path, artifact_root: str) -> tuple[Relocation, list[tuple[str, str, str, str]]]:
    """What relocating ``db_file`` onto ``artifact_root`` (a ``file://`` URI) would do: the
    finding, and (table, column, old, new) of each rewrite."""
    root = _path(artifact_root).rstrip("/")
    found = Relocation(root)
    changes: dict[tuple[str, str, str], str] = {}
    with closing(sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)) as db:
        for table, column, key, location in _rows(db):
            split = _split(location)
            if split is None or split[0] == root:
                continue
            other, rest = split
            found.others[other] = found.others.get(other, 0) + 1
            # A run's folder exists only once it logs a file, an experiment's once a run
            # does; a model's files must be here, or the registry would point at nothing.
            if table in MODEL_TABLES and not Path(root + rest).exists():
                found.missing.append(f"{table}.{column} of {key}: {root + rest}")
            changes[table, column, location] = "file://" + root + rest
    return found, [(t, c, old, new) for (t, c, old), new in changes.items()]


def elsewhere(db_file: Path, artifact_root: str) -> str | None:
    """Another home's artifact folder this store's experiments write to (None: none, or no
    store yet). New runs and models go under their experiment's location: a copied home that
    was not relocated writes into the original. Reads the experiments table alone."""
    if not db_file.exists():
        return None
    root = _path(artifact_root).rstrip("/")
    try:
        with closing(sqlite3.connect(f"file:{db_file}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT artifact_location FROM experiments").fetchall()
    except sqlite3.Error:  # not an MLflow store yet, or locked: the command's own check says
        return None
    for (location,) in rows:
        split = _split(location) if isinstance(location, str) else None
        if split is not None and split[0] != root:
            return split[0]
    return None


def relocate(db_file: Path, artifact_root: str, dry_run: bool = False, note: Note = _stderr
             ) -> Relocation:
    """Rewrite the store's artifact locations under other homes to ``artifact_root``, in one
    transaction, after copying the database aside. Refuses (ConfigError) when a rewritten
    location's files are not under this home: the registry would point at nothing.

    The copy and the rewrite hold the registry's lock (``note``: where a wait for it is
    said): a promotion or a challenger move meanwhile would load models from locations about
    to change, and its writes during the copy would leave a torn copy of the database."""
    if not db_file.is_file():
        raise ConfigError(f"{db_file}: no MLflow store here (nothing was trained in this home)")
    # Refused or with nothing to do, it touches nothing, not even the lock file.
    found, changes = _planned(db_file, artifact_root)
    if dry_run or not changes:
        return found
    with registry_lock(f"sqlite:///{db_file}", "journey relocate", note):
        # Again: the writer this one waited for may have changed the rows.
        found, changes = _planned(db_file, artifact_root)
        if not changes:
            return found
        found.backup = db_file.with_name(f"{db_file.name}.before-relocate-{int(time.time())}")
        shutil.copy2(db_file, found.backup)
        with closing(sqlite3.connect(db_file)) as db, db:
            for table, column, old, new in changes:
                cur = db.execute(f"UPDATE {table} SET {column} = ? WHERE {column} = ?",
                                 (new, old))
                found.rewritten += cur.rowcount
    return found


def _planned(db_file: Path, artifact_root: str
             ) -> tuple[Relocation, list[tuple[str, str, str, str]]]:
    """``plan``, refused (ConfigError) when a model's files are not under this home."""
    found, changes = plan(db_file, artifact_root)
    if found.missing:
        shown = "; ".join(found.missing[:3])
        more = f" (and {len(found.missing) - 3} more)" if len(found.missing) > 3 else ""
        raise ConfigError(
            f"{db_file}: {len(found.missing)} artifact locations would point at files that are "
            f"not under {found.root}: {shown}{more}. Copy the old home's mlflow/artifacts "
            "folder here with the database, then relocate again; nothing was changed")
    return found, changes
