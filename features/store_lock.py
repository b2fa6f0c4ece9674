"""Who holds the event store's lock, asked of the kernel without taking it.

DuckDB locks the whole store file (fcntl: a write lock for a writer, a read lock for a
reader) as long as a process has it open. A command that only needs to know whether it could
open the store for writing asks with F_GETLK instead of opening it: a real open, even a
read-only one, would itself hold the lock for a moment and could make a service starting
meanwhile fail to open its store.
"""

from __future__ import annotations

import fcntl
import os
import struct
from dataclasses import dataclass
from pathlib import Path

# struct flock on 64-bit Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid
# (pid_t), padded to 32 bytes.
FLOCK = "hhqqi4x"


@dataclass(frozen=True)
class Held:
    pid: int
    writes: bool  # a write lock: the holder writes (a read lock: it only reads)


def store_holder(path: Path) -> Held | None:
    """The process whose lock on ``path`` would refuse a writer; None when there is none, or
    when it cannot be told (no such file, no permission, a system without F_GETLK)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        asked = struct.pack(FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
        kind, _, _, _, pid = struct.unpack(FLOCK, fcntl.fcntl(fd, fcntl.F_GETLK, asked))
    except (OSError, struct.error):
        return None
    finally:
        os.close(fd)  # this process holds no lock on it: closing releases nothing
    if kind == fcntl.F_UNLCK or pid <= 0:
        return None
    return Held(pid, kind == fcntl.F_WRLCK)
