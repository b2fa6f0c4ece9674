"""Failures of the machine, not of the input: a full disk, a read-only or unwritable folder.
A command ends with one line naming the file and what to do, where it printed a traceback
(often without the path: "OSError: [Errno 28] Error writing bytes to file")."""

from __future__ import annotations

import errno
import re

import duckdb

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
