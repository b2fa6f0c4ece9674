"""What `journey` commands create is private to their user (umask 077): the event store and
the rejects file hold customers' events and raw rows."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.journey.cli_helpers import ok
from tests.journey.ingest_helpers import TOUCHPOINTS_MAP, rejects_file

pytestmark = pytest.mark.usefixtures("isolated")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_ingest_creates_a_private_home(tmp_path: Path, touchpoints: Path) -> None:
    before = os.umask(0o022)  # a usual default: group and others may read
    try:
        store = tmp_path / "home" / "db" / "events.duckdb"
        lines = ok("ingest", touchpoints, "--map", TOUCHPOINTS_MAP, "--store", store)
        assert os.umask(0o022) == 0o022  # the caller's umask is given back
    finally:
        os.umask(before)
    rejects = rejects_file(lines)
    assert mode(store) == 0o600 and mode(rejects) == 0o600
    for folder in (tmp_path / "home", store.parent, rejects.parent):
        assert mode(folder) == 0o700, folder
    # Nothing beside them that others could read (DuckDB's WAL, a lock file...).
    for path in (tmp_path / "home").rglob("*"):
        assert mode(path) & 0o077 == 0, path
