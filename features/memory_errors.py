"""Running out of memory while a command works on the event store: one line saying what to
change, exit 2, not DuckDB's traceback.

Every command opens the store with ``memory_limit=`` JOURNEY_STORE_MEMORY (DuckDB's own
default is 80 % of RAM, so without it lowering the setting below a process's memory limit, as
the line advises, would change nothing) and wraps its work on the store in ``memory_errors``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from features.errors import JourneyError
from features.store_messages import process_memory_cap

# How DuckDB's out-of-memory errors begin, also when one reaches Python as the OSError of an
# Arrow stream it was filling (con.execute(...).to_arrow_reader()).
_DUCKDB_OOM = "Out of Memory Error"


def out_of_memory(exc: BaseException, doing: str, store_memory: str | None) -> str | None:
    """The line to end a command that ran out of memory with, or None when ``exc`` is not
    that: DuckDB's OutOfMemoryException, or Python's MemoryError (numpy, numba, Arrow).
    ``doing``: what the command was doing; ``store_memory``: the JOURNEY_STORE_MEMORY it
    gave DuckDB."""
    said = (str(exc).strip().splitlines() or ["no details"])[0]
    duck = isinstance(exc, duckdb.OutOfMemoryException) or (
        isinstance(exc, OSError) and said.startswith(_DUCKDB_OOM))
    if not duck and not isinstance(exc, MemoryError):
        return None
    # None: the store was opened without a limit (a library caller), at DuckDB's default.
    held = store_memory or "unset: DuckDB's default, 80 % of RAM"
    share = f"JOURNEY_STORE_MEMORY ({held}, what DuckDB may hold)"
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


@contextmanager
def memory_errors(doing: str, store_memory: str | None) -> Iterator[None]:
    """Running out of memory in the block (DuckDB's OutOfMemoryException, or a MemoryError)
    raises a JourneyError of ``out_of_memory``'s line, which the CLI prints with exit 2; any
    other error goes on as it was. ``doing``: what the block does, as the line starts
    ("summarising the event store /h/events.duckdb"); ``store_memory``: the limit the store
    was opened with."""
    try:
        yield
    except Exception as exc:
        line = out_of_memory(exc, doing, store_memory)
        if line is None:
            raise
        raise JourneyError(line) from exc
