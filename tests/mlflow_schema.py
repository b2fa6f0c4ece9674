"""A new MLflow tracking database without its migrations, for the tests' own process.

Opening a SQLite store that has no tables makes MLflow create them and run its alembic
migrations, ~3 s each time; the tests make a new store in dozens of homes (1-2 minutes of
the suite). In the test process the first new store is migrated as MLflow does it, into a
template, and every new store receives a copy of it instead: the same tables, indexes and
schema revision, which tests/training/test_mlflow_schema.py checks against a real
migration. Commands the tests start as processes migrate as they would anywhere.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest


def _migrate(template: Path, original: Callable[[Any], None]) -> None:
    """An empty store migrated by MLflow, renamed into place only once whole (a test that
    makes MLflow fail meanwhile leaves no half-made template behind)."""
    from sqlalchemy import create_engine

    partial = template.with_suffix(".partial")
    made = create_engine(f"sqlite:///{partial}")
    try:
        original(made)
    finally:
        made.dispose()
    partial.rename(template)


def _copier(template: Path, original: Callable[[Any], None]) -> Callable[[Any], None]:
    def initialize(engine: Any) -> None:
        if engine.dialect.name != "sqlite" or engine.url.database in (None, "", ":memory:"):
            original(engine)
            return
        if not template.exists():
            _migrate(template, original)
        with closing(engine.raw_connection()) as raw:
            con = raw.driver_connection
            # Only a database with nothing in it: one with some of the tables is MLflow's to
            # complete, and a copy would replace what it holds.
            if con.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0:
                with closing(sqlite3.connect(template)) as src:
                    src.backup(con)
                return
        original(engine)

    return initialize


@contextmanager
def migrated_copies(folder: Path) -> Iterator[None]:
    """While open, new SQLite tracking stores start as a copy of one migrated in ``folder``
    (when the first is made: a process that makes none pays nothing)."""
    import mlflow.store.db.utils as db_utils

    template = folder / "empty-mlflow.db"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db_utils, "_initialize_tables", _copier(template, db_utils._initialize_tables))
        yield
