"""A full disk or a read-only home ends a command with one line naming the file and what to do,
exit 2, where it printed a traceback; any other error still does."""

from __future__ import annotations

import errno
from pathlib import Path

import duckdb
import pytest
import typer

from journey.common import friendly_errors
from journey.environment_errors import environment_error

WAL = ('IO Error: Could not write file "/data/home/events.duckdb.wal": No space left on '
       'device')


@pytest.mark.parametrize(("exc", "said"), [
    (OSError(errno.ENOSPC, "No space left on device", "/data/home/scores/x.parquet"),
     "no space left on the device writing /data/home/scores/x.parquet: free some space"),
    (OSError(errno.EROFS, "Read-only file system", "/data/home/api_keys.tmp"),
     "cannot write /data/home/api_keys.tmp (Read-only file system): make it writable"),
    (duckdb.IOException(WAL),
     "no space left on the device writing /data/home/events.duckdb.wal: free some space and "
     "run again; the event store takes a write whole or not at all"),
    (duckdb.FatalException(f'database has been invalidated: "{WAL}"'),
     "DuckDB stopped the store after its last commit, which may have been kept"),
])
def test_the_line_names_the_file_and_what_to_do(exc: BaseException, said: str) -> None:
    line = environment_error(exc)
    assert line is not None and said in line


@pytest.mark.parametrize("exc", [OSError(errno.ENOENT, "No such file"), ValueError("bug"),
                                 duckdb.IOException("Could not set lock on file")])
def test_other_errors_are_not_taken_for_the_machines(exc: BaseException) -> None:
    assert environment_error(exc) is None


def test_a_command_ends_with_the_line(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    @friendly_errors
    def command() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "f"))

    with pytest.raises(typer.Exit) as ended:
        command()
    assert ended.value.exit_code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no space left on the device writing ") and "Traceback" not in err

    @friendly_errors
    def buggy() -> None:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):  # a traceback, as before
        buggy()
