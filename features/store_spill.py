"""Spill files a killed process left in the store's temp directory, swept by its next writer.

DuckDB spills what does not fit its memory limit to files in its temp_directory, by default
``<store>.tmp`` beside the store (Journey never sets another), and deletes them when the
database closes. A process killed mid-load (SIGKILL, the OOM killer) leaves them, up to the
size of the load's staged rows, and no later DuckDB removes them: it only reuses those whose
names it happens to spill to again.

They are swept only by a process that holds the store open for writing. DuckDB locks the
file for a writer against every other process, readers included, so no other process has the
store open, and none can spill to its temp directory: the only live spill files are this
process's own, which DuckDB lists (``duckdb_temporary_files()``). That is certain, where an
age rule (files untouched for an hour) would guess: it could delete the files of a reader
that has spilled and sits idle, and keeps a killed load's for the hour. Every writer sweeps:
`journey ingest`, `attributes`, `unload`, `relocate`, and the service, which opens the store
for writing with the same temp directory (EventStore never sets another).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import duckdb

# DuckDB's spill file names (duckdb_temp_storage_S32K-0.tmp, duckdb_temp_block-*.block in
# older versions): other files in the folder are not DuckDB's to sweep.
SPILL_PREFIX = "duckdb_temp_"


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def sweep_spill(con: duckdb.DuckDBPyConnection, opened_at: float,
                report: Callable[[str], None]) -> int:
    """Delete the spill files no DuckDB uses from the temp directory of ``con``, which must
    hold its store open for writing; the bytes freed, said in one line when there were any.

    ``opened_at``: when the connection was asked for. Another connection of this process to
    the same store shares its database, which may spill while this runs: a file it writes
    after the list of live ones was read is newer than that."""
    row = con.execute("SELECT current_setting('temp_directory')").fetchone()
    folder = Path(str(row[0])) if row and row[0] else None
    if folder is None or not folder.is_dir():
        return 0
    live = {os.path.realpath(str(p)) for (p,) in
            con.execute("SELECT path FROM duckdb_temporary_files()").fetchall()}
    freed = files = 0
    for entry in folder.iterdir():
        if not entry.name.startswith(SPILL_PREFIX) or os.path.realpath(entry) in live:
            continue
        try:
            st = entry.stat()
            if not entry.is_file() or st.st_mtime >= opened_at:
                continue
            entry.unlink()
        except OSError:  # gone meanwhile, or not ours to delete: a sweep never fails a command
            continue
        freed += st.st_blocks * 512  # the disk it took: spill files may be sparse
        files += 1
    if files:
        report(f"swept {files} spill file{'s' if files > 1 else ''} ({freed / 1e6:,.1f} MB) "
               f"a killed process left in {folder}")
    return freed
