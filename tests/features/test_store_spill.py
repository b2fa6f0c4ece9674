"""The spill files a killed load left in <store>.tmp are swept by the store's next writer, and
only by a writer: none of its own live files, nor anything that is not DuckDB's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from features.store import EventStore
from features.store_spill import sweep_spill

# A load in its own process that spills (DuckDB's memory limit far below its sort) and waits.
SPILLER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SET memory_limit = '32MB'")
con.execute("SET threads = 1")
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TEMP TABLE big AS SELECT range AS i, random() AS r, repeat('x', 40) AS s "
            "FROM range(2000000) ORDER BY r")
print("spilled", flush=True)
sys.stdin.read()
"""


def _spill_files(store: Path) -> list[Path]:
    folder = store.with_name(store.name + ".tmp")
    return sorted(p for p in folder.iterdir() if p.name.startswith("duckdb_temp_"))


@pytest.fixture
def left(tmp_path: Path) -> Path:
    """A store whose writer was killed (SIGKILL) while its spill files were in use."""
    store = tmp_path / "events.duckdb"
    EventStore(store).close()
    child = subprocess.Popen([sys.executable, "-c", SPILLER, str(store)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"spilled\n"
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
    assert _spill_files(store), "the killed load left no spill file to sweep"
    return store


def test_the_next_writer_sweeps_what_a_killed_load_left(left: Path) -> None:
    files = _spill_files(left)
    size = sum(p.stat().st_blocks * 512 for p in files)
    lines: list[str] = []
    with EventStore(left, report=lines.append):
        assert _spill_files(left) == []
    plural = "s" if len(files) > 1 else ""
    assert lines == [f"swept {len(files)} spill file{plural} ({size / 1e6:,.1f} MB) a killed "
                     f"process left in {left}.tmp"]


def test_a_reader_sweeps_nothing(left: Path) -> None:
    """A reader shares the store with other readers, which may be spilling."""
    before = _spill_files(left)
    lines: list[str] = []
    with EventStore(left, read_only=True, report=lines.append):
        pass
    assert _spill_files(left) == before and lines == []


def test_files_that_are_not_duckdb_s_stay(left: Path) -> None:
    other = left.with_name(left.name + ".tmp") / "notes.txt"
    other.write_text("mine")
    with EventStore(left, report=lambda _: None):
        pass
    assert other.read_text() == "mine"


def test_nothing_is_said_when_nothing_was_left(tmp_path: Path) -> None:
    lines: list[str] = []
    with EventStore(tmp_path / "events.duckdb", report=lines.append):
        pass
    with EventStore(tmp_path / "events.duckdb", report=lines.append):
        pass
    assert lines == []


def test_the_live_spill_files_of_this_process_stay(tmp_path: Path) -> None:
    """A second connection of this process to the store shares the first one's database, and
    its spill files, which are in use."""
    store = tmp_path / "events.duckdb"
    first = EventStore(store, memory_limit="128MB")
    first.con.execute("SET threads = 1")
    first.con.execute("CREATE TEMP TABLE big AS SELECT range AS i, repeat('x', 60) AS s "
                      "FROM range(4000000) ORDER BY hash(i)")
    live = _spill_files(store)
    assert live, "the first connection did not spill"
    lines: list[str] = []
    with EventStore(store, memory_limit="128MB", report=lines.append):
        assert _spill_files(store) == live
    assert lines == []
    assert first.con.execute("SELECT count(*), sum(i) FROM big").fetchone() == (
        4_000_000, 4_000_000 * 3_999_999 // 2)
    first.close()


def test_a_file_written_after_the_store_was_opened_stays(tmp_path: Path) -> None:
    """Another connection of this process may spill while the sweep runs."""
    store = tmp_path / "events.duckdb"
    with EventStore(store) as es:
        folder = store.with_name(store.name + ".tmp")
        folder.mkdir(exist_ok=True)
        fresh = folder / "duckdb_temp_storage_S32K-0.tmp"
        fresh.write_bytes(b"\0" * 4096)
        assert sweep_spill(es.con, time.time() - 60, lambda _: None) == 0
        assert fresh.exists()
        assert sweep_spill(es.con, time.time() + 1, lambda _: None) > 0
        assert not fresh.exists()
