"""Failures of the machine, not of the input: a full disk, a read-only or unwritable folder.
A command ends with one line naming the file and what to do, where it printed a traceback
(often without the path: "OSError: [Errno 28] Error writing bytes to file")."""

from __future__ import annotations

import errno
import re

import duckdb

from features.store_messages import process_memory_cap

_FULL = (errno.ENOSPC, errno.EDQUOT)
_UNWRITABLE = (errno.EROFS, errno.EACCES, errno.EPERM)
# DuckDB's I/O errors name the file in quotes: Could not write file "/x/events.duckdb": ...
_DUCKDB_FILE = re.compile(r'file "([^"]+)"')
_STORE = ("; the event store takes a write whole or not at all, so nothing of this one is in "
          "it")
_FATAL = ("; DuckDB stopped the store after its last commit, which may have been kept: check "
          "with `journey summary`")


def environment_error(exc: BaseException) -> str | None:
    """The line to end a command with, or None when ``exc`` is not such a failure."""
    if isinstance(exc, OSError) and exc.errno in _FULL + _UNWRITABLE:
        where = exc.filename or "a file"
        if exc.errno in _FULL:
            return f"no space left on the device writing {where}: free some space and run again"
        return (f"cannot write {where} ({exc.strerror}): make it writable, or point "
                "JOURNEY_HOME (or the command's path option) elsewhere, and run again")
    if not isinstance(exc, duckdb.IOException | duckdb.TransactionException
                      | duckdb.FatalException):
        return None
    text = str(exc)
    found = _DUCKDB_FILE.search(text)
    where = found.group(1) if found else "the event store"
    after = _FATAL if isinstance(exc, duckdb.FatalException) else _STORE
    if "No space left" in text or "disk quota" in text.lower():
        return f"no space left on the device writing {where}: free some space and run again{after}"
    if "Read-only file system" in text or "Permission denied" in text:
        return (f"cannot write {where} (read-only or not permitted): make it writable and "
                f"run again{after}")
    return None


# How DuckDB's out-of-memory errors begin, also when one reaches Python as the OSError of an
# Arrow stream it was filling (con.execute(...).to_arrow_reader()).
_DUCKDB_OOM = "Out of Memory Error"


def out_of_memory(exc: BaseException, doing: str, store_memory: str) -> str | None:
    """The line to end a command that ran out of memory with, or None when ``exc`` is not
    that: DuckDB's OutOfMemoryException, or Python's MemoryError (numpy, numba, Arrow).
    ``doing``: what the command was doing; ``store_memory``: the JOURNEY_STORE_MEMORY it
    gave DuckDB."""
    said = (str(exc).strip().splitlines() or ["no details"])[0]
    duck = isinstance(exc, duckdb.OutOfMemoryException) or (
        isinstance(exc, OSError) and said.startswith(_DUCKDB_OOM))
    if not duck and not isinstance(exc, MemoryError):
        return None
    share = f"JOURNEY_STORE_MEMORY ({store_memory}, what DuckDB may hold)"
    cap = process_memory_cap()
    if cap is not None:  # the process's address space ran out, whatever DuckDB was allowed
        advice = (f"this process may map at most {cap / 2**30:.1f} GiB (ulimit -v or a "
                  f"container limit): raise that limit, or lower {share} well below it")
    elif duck:  # DuckDB reached its own limit
        advice = f"raise {share}, within the machine's free memory"
    else:
        advice = f"free memory on the machine, or lower {share} to leave more to the rest"
    source = "DuckDB" if duck else type(exc).__name__
    return f"{doing} ran out of memory ({source}: {said}): {advice}, and run again"
