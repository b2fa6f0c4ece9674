"""Large loads and busy stores: the store's memory limit (checked before it reaches DuckDB,
applied; a load that runs out of it fails whole with an error that says what to change),
progress, and a store another process is writing to."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from features.errors import ConfigError, StoreError
from features.mapping import identity_mapping
from features.memory import memory_setting
from features.store import EventStore
from features.taxonomy import Taxonomy

HEADER = "event_id,customer_id,ts,event_type,channel,value,action,properties\n"


@pytest.mark.parametrize(("text", "sql"), [
    ("4GB", "4GB"), (" 512 MiB ", "512MiB"), ("1.5gb", "1.5gb"), ("128MB", "128MB"),
])
def test_sizes_are_accepted_as_duckdb_reads_them(text: str, sql: str) -> None:
    assert memory_setting(text) == sql


@pytest.mark.parametrize(("text", "why"), [
    ("lots", "not a size"), ("4", "not a size"), ("4GB'; DROP TABLE events; --", "not a size"),
    ("-1GB", "not a size"), ("0GB", "below 128 MB"), ("100MB", "below 128 MB"),
    ("1KiB", "below 128 MB"),
])
def test_bad_sizes_are_refused_by_name(text: str, why: str) -> None:
    with pytest.raises(ConfigError, match=why) as info:
        memory_setting(text)
    assert repr(text) in str(info.value)


def _source(path: Path, n: int) -> Path:
    lines = [f"e{i},c{i % 97},2024-01-01T{i % 24:02d}:00:00Z,page_view,web,,,\n"
             for i in range(n)]
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def test_the_limit_is_applied_and_a_load_fits_in_the_smallest(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    with EventStore(tmp_path / "events.duckdb", memory_limit="128MB") as es:
        row = es.con.execute("SELECT current_setting('memory_limit')").fetchone()
        assert row is not None and row[0] == "122.0 MiB"  # 128e6 bytes
        report = es.ingest(_source(tmp_path / "a.csv", 5_000), identity_mapping(), taxonomy)
        assert report.append.inserted == es.count() == 5_000


def test_a_bad_limit_fails_before_the_store_is_created(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a size"):
        EventStore(tmp_path / "new" / "events.duckdb", memory_limit="lots")
    assert not (tmp_path / "new").exists()


class _OutOfMemoryOnInsert:
    """The store's connection, except that the final insert runs out of memory."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con

    def __getattr__(self, name: str) -> Any:
        return getattr(self.con, name)

    def execute(self, sql: str, *args: Any) -> Any:
        if sql.startswith("INSERT INTO events"):
            raise duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate")
        return self.con.execute(sql, *args)


def test_running_out_of_memory_stores_nothing_and_says_what_to_change(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    with EventStore(tmp_path / "events.duckdb", memory_limit="256MB") as es:
        es.ingest(_source(tmp_path / "a.csv", 100), identity_mapping(), taxonomy)
        real = es.con
        es.con = _OutOfMemoryOnInsert(real)  # type: ignore[assignment]  # a stand-in
        with pytest.raises(StoreError) as info:
            es.ingest(_source(tmp_path / "b.csv", 20_000), identity_mapping(), taxonomy)
        es.con = real
        message = str(info.value)
        assert "b.csv" in message and "nothing was stored" in message
        assert "JOURNEY_STORE_MEMORY" in message and "244.1 MiB" in message
        assert es.count() == 100  # the first load is whole, nothing of the second
        staged = es.con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'staged'").fetchone()
        assert staged == (0,)
        again = es.ingest(_source(tmp_path / "b.csv", 20_000), identity_mapping(), taxonomy)
        assert again.append.inserted == 19_900 and es.count() == 20_000


def test_progress_is_reported_per_batch_then_once_before_storing(
        tmp_path: Path, taxonomy: Taxonomy) -> None:
    source = tmp_path / "parts"
    source.mkdir()
    _source(source / "a.csv", 300)
    _source(source / "b.csv", 200)
    calls: list[tuple[int, int, bool]] = []
    with EventStore(tmp_path / "events.duckdb") as es:
        es.ingest(source, identity_mapping(), taxonomy,
                  progress=lambda r, storing: calls.append((r.rows_read, len(r.files), storing)))
        assert es.count() == 300  # b.csv's ids are a.csv's first 200
    assert calls == [(300, 1, False), (500, 2, False), (500, 2, True)]


def test_a_store_another_process_writes_to_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "events.duckdb"
    EventStore(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time\n"
         f"con = duckdb.connect({str(path)!r})\nprint('open', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "open"
        for read_only in (False, True):  # DuckDB refuses readers too while a process writes
            with pytest.raises(StoreError) as info:
                EventStore(path, read_only=read_only)
            message = str(info.value)
            # Not the service (tests/features/test_store_holders.py): waited for, not stopped.
            assert (f"process {holder.pid} (another program: python -c) has it open for "
                    "writing: wait for it to finish") in message
    finally:
        holder.kill()
        holder.wait()
    EventStore(path, read_only=True).close()  # free again once the writer is gone


def test_under_a_process_memory_limit_the_advice_is_to_lower_the_stores_share(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # ulimit -v 1 GB: raising JOURNEY_STORE_MEMORY, the usual advice, cannot help there.
    from features import store_messages

    exc = duckdb.OutOfMemoryException("Out of Memory Error: failed to allocate")
    monkeypatch.setattr(store_messages, "process_memory_cap", lambda: 2**30)
    capped = store_messages.out_of_memory(Path("s.duckdb"), "big.csv", "3.7 GiB", exc)
    assert "may map at most 1.0 GiB" in capped and "lower JOURNEY_STORE_MEMORY" in capped
    assert "Raise the limit" not in capped and "nothing was stored" in capped
    monkeypatch.setattr(store_messages, "process_memory_cap", lambda: None)
    free = store_messages.out_of_memory(Path("s.duckdb"), "big.csv", "3.7 GiB", exc)
    assert "Raise the limit (JOURNEY_STORE_MEMORY)" in free
