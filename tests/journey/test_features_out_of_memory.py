"""`journey features` that runs out of memory (a process limit such as ulimit -v, or DuckDB's
own) ends with one line saying what to change, exit 2, not DuckDB's traceback; and DuckDB
reads the store within JOURNEY_STORE_MEMORY there, as the line's advice assumes."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import duckdb
import pytest

from features import memory_errors
from features.batch import BatchEngine
from features.memory_errors import out_of_memory
from features.store import EventStore
from tests.journey.cli_helpers import fails, run

# What DuckDB said when an Arrow stream it filled ran out under `ulimit -v 1100000`: pyarrow
# raises it as an OSError.
ARROW_STREAM = ("Out of Memory Error: ArrowBuffer: failed to allocate 8388608 bytes\n\n"
                "Possible solutions:\n* Reducing the number of threads (SET threads=X)\n")
DOING = "computing the features of /h/events.duckdb as of 2025-10-01T00:00:00+00:00"


@pytest.fixture(scope="module")
def duckdb_oom() -> duckdb.OutOfMemoryException:
    """A real one: DuckDB with 16 MB and nowhere to spill."""
    con = duckdb.connect()
    con.execute("SET memory_limit = '16MB'")
    con.execute("SET temp_directory = ''")
    con.execute("SET threads = 1")
    with pytest.raises(duckdb.OutOfMemoryException) as raised:
        con.execute("SELECT count(DISTINCT range::VARCHAR) FROM range(20000000)").fetchall()
    con.close()
    return raised.value


def test_under_a_process_limit_the_line_says_to_raise_it_or_lower_duckdb_s_share(
        duckdb_oom: duckdb.OutOfMemoryException, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_errors, "process_memory_cap", lambda: 1_228_800_000)
    said = str(duckdb_oom).splitlines()[0]
    assert said.startswith("Out of Memory Error: failed to allocate data of size ")
    line = out_of_memory(duckdb_oom, DOING, "4GB")
    assert line == (f"{DOING} ran out of memory (DuckDB: {said}): this process may map at "
                    "most 1.1 GiB (ulimit -v or a container limit): raise that limit, or "
                    "lower JOURNEY_STORE_MEMORY (4GB, what DuckDB may hold) well below it, "
                    "and run again")


@pytest.mark.parametrize(("exc", "said", "advice"), [
    (OSError(ARROW_STREAM), "DuckDB: Out of Memory Error: ArrowBuffer: failed to allocate "
     "8388608 bytes", "raise JOURNEY_STORE_MEMORY (4GB, what DuckDB may hold), within the "
     "machine's free memory"),
    (MemoryError("Unable to allocate 8.96 MiB for an array with shape (1174564,) and data "
                 "type float64"), "MemoryError: Unable to allocate 8.96 MiB",
     "free memory on the machine, or lower JOURNEY_STORE_MEMORY (4GB"),
])
def test_without_a_process_limit(exc: BaseException, said: str, advice: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory_errors, "process_memory_cap", lambda: None)
    line = out_of_memory(exc, DOING, "4GB")
    assert line is not None
    assert line.startswith(f"{DOING} ran out of memory ({said}")
    assert advice in line and line.endswith(", and run again") and "\n" not in line


@pytest.mark.parametrize("exc", [ValueError("a bug"), OSError(2, "No such file"),
                                 duckdb.IOException("Could not set lock on file")])
def test_other_errors_are_not_taken_for_running_out(exc: BaseException) -> None:
    assert out_of_memory(exc, DOING, "4GB") is None


def test_the_command_ends_with_the_line_and_exit_2(
        duckdb_oom: duckdb.OutOfMemoryException, isolated: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "events.duckdb"
    EventStore(store).close()
    limits: list[str] = []

    def runs_out(self: BatchEngine, cutoff: object) -> NoReturn:
        row = self.store.con.execute("SELECT current_setting('memory_limit')").fetchone()
        limits.append(str(row[0]) if row else "")
        raise duckdb_oom

    monkeypatch.setattr(BatchEngine, "features", runs_out)
    monkeypatch.setenv("JOURNEY_STORE_MEMORY", "300MB")
    monkeypatch.setattr(memory_errors, "process_memory_cap", lambda: 1_228_800_000)
    err = fails("features", "--as-of", "2025-10-01", "--store", store,
                "--out", tmp_path / "snapshots")
    assert err.splitlines() == [
        f"error: computing the features of {store} as of 2025-10-01T00:00:00+00:00 ran out of "
        f"memory (DuckDB: {str(duckdb_oom).splitlines()[0]}): this process may map at most "
        "1.1 GiB (ulimit -v or a container limit): raise that limit, or lower "
        "JOURNEY_STORE_MEMORY (300MB, what DuckDB may hold) well below it, and run again"]
    assert limits == ["286.1 MiB"]  # DuckDB's spelling of 300MB: the setting is in force


def test_any_other_error_still_has_its_traceback(isolated: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "events.duckdb"
    EventStore(store).close()

    def buggy(self: BatchEngine, cutoff: object) -> NoReturn:
        raise ValueError("a bug")

    monkeypatch.setattr(BatchEngine, "features", buggy)
    result = run("features", "--as-of", "2025-10-01", "--store", store,
                 "--out", tmp_path / "snapshots")
    assert result.exit_code == 1 and isinstance(result.exception, ValueError)
