"""What the event store says when it cannot do what it was asked: the cause, and what to do."""

from __future__ import annotations

import re
import resource
from pathlib import Path

from features.errors import JourneyError
from features.readers import source_files

LOCK_HELD = re.compile(r"Conflicting lock is held in .* \(PID (\d+)\)")
# DuckDB adds this when the holder only reads (a read-only open would succeed beside it).
ONLY_READS = "open this database in read-only mode"
SERVICE_ADVICE = ("stop it first (`journey stop`, or Ctrl-C where it runs in the foreground), "
                  "or go through it: POST /v1/events to ingest, POST /v1/admin/score to score. "
                  "Training and other reads can also run on a copy of the store taken while it "
                  "was stopped (JOURNEY_STORE=<copy>; see docs/retraining.md).")


def cannot_open(path: Path, exc: Exception) -> str:
    """Why ``path`` did not open; for a lock another process holds, ``held_by`` it."""
    held = LOCK_HELD.search(str(exc))
    if held is None:
        return f"cannot open event store {path}: {exc}"
    return held_by(path, int(held[1]), ONLY_READS not in str(exc))


def held_by(path: Path, pid: int, writes: bool) -> str:
    """The store is held by process ``pid``: which process that is (from its command line),
    whether it reads or writes, and what to do about that one."""
    access = "writing" if writes else "reading"
    said = f"cannot open event store {path}: process {pid}"
    holder = lock_holder(pid)
    if holder is None:  # /proc unreadable (hidepid) or the process is gone: both cases
        return (f"{said} has it open for {access}. If it is the Journey service (`journey "
                f"serve`), {SERVICE_ADVICE} Otherwise wait for it to finish and run again.")
    if holder == SERVICE:
        return f"{said} (the Journey service, `journey serve`) has it open for {access}: " + (
            SERVICE_ADVICE)
    if not writes or holder.startswith("`journey "):
        return (f"{said} ({holder}) has it open for {access}: wait for it to finish and run "
                "again.")
    return (f"{said} ({holder}) has it open for {access}: wait for it to finish (or close it) "
            "and run again.")


SERVICE = "service"
PROC = Path("/proc")


def lock_holder(pid: int) -> str | None:
    """What process ``pid`` is, from /proc/PID/cmdline: ``SERVICE`` for the Journey service's
    worker, "`journey CMD`" for a Journey command, "another program: NAME" otherwise; None
    when it cannot be read."""
    try:
        raw = (PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return None
    args = [a for a in raw.decode(errors="replace").split("\0") if a]
    if not args:  # a zombie, or a kernel thread: nothing to name it by
        return None
    if any(a.startswith("serving.service:") for a in args):  # `bentoml serve SERVICE`'s worker
        return SERVICE
    for i, arg in enumerate(args):
        if Path(arg).name == "journey" or (arg == "journey" and i and args[i - 1] == "-m"):
            command = next((a for a in args[i + 1:] if not a.startswith("-")), None)
            return f"`journey {command}`" if command else "`journey`"
    return f"another program: {' '.join(Path(a).name for a in args[:2])}"


def out_of_memory(path: Path, source: str | Path, limit: str, exc: Exception) -> str:
    cap = process_memory_cap()
    if cap is not None:  # what ran out is the process's address space, not the store's share
        advice = (f"This process may map at most {cap / 2**30:.1f} GiB (ulimit -v or a "
                  "container limit): lower JOURNEY_STORE_MEMORY to about a third of that, or "
                  "raise the process limit")
    else:
        advice = "Raise the limit (JOURNEY_STORE_MEMORY) or load the source in parts"
    return (f"{path}: loading {source} needed more memory than the store may use ({limit}); "
            f"nothing was stored. {advice}. DuckDB: {str(exc).strip().splitlines()[0]}")


def process_memory_cap() -> int | None:
    """The process's address-space limit in bytes (RLIMIT_AS), None when unlimited."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return None if soft == resource.RLIM_INFINITY else int(soft)


def nothing_loaded(exc: JourneyError, source: str | Path) -> JourneyError:
    """``exc`` again (same class), saying that the load stored nothing: one bad file stops
    a load of many, and the others' rows are not stored either."""
    try:
        files = len(source_files(Path(source)))
    except JourneyError:
        files = 1
    said = str(exc).rstrip(". ")
    message = (f"{said}; nothing was loaded from any of the {files} files of {source} (a load "
               "stores the rows of all its files or none): fix or remove that file and load "
               "again" if Path(source).is_dir() else f"{said}; nothing was loaded from {source}")
    try:
        return type(exc)(message)
    except TypeError:  # a class that takes other arguments: keep its own words
        return exc


def nothing_accepted(source: str | Path, rows: int, rejects: Path | None, store: Path,
                     existed: bool) -> str:
    """A load whose every row was rejected: it stores nothing, and its rejects say why."""
    kept = f"the store {store} is unchanged" if existed else f"no store was created at {store}"
    listed = (f"rejected rows (file, line, field, reason, value): {rejects}" if rejects
              else "no rejects file was asked for")
    return (f"nothing was loaded from {source}: all {rows:,} rows read were rejected, "
            f"{kept}; {listed}")
