"""One writer at a time on a model registry, and MLflow writes that survive a second writer.

MLflow's alias and tag writes read the row and then insert it, so two processes writing the
same new key make one of them fail (UNIQUE constraint), and a promotion that reads `champion`
while another moves it decides on a registry that is gone. Promotions and challenger picks
therefore take an exclusive ``flock`` on ``registry.lock`` beside a local store (the SQLite
file's folder, or a file store's own folder) and wait their turn. The kernel drops the lock
when its holder exits, killed or not, so a crashed run never leaves it held.

A tracking server or a database URI has no file that every writer shares, and a lock beside
one machine's copy of the code would serialise nothing: there is no lock for them. Their
writes are still made safe against the race itself (``settled``), and a promotion still moves
its aliases last, so the narrower harm left is two promotions deciding side by side.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from features.errors import ConfigError
from training.tracking import local_path

LOCK_NAME = "registry.lock"
Note = Callable[[str], None]
T = TypeVar("T")
# Error texts of a uniqueness race as MLflow passes them on, from SQLite, PostgreSQL, MySQL
# and a tracking server (whose REST errors carry the text, not the exception).
_RACE_SIGNS = ("UNIQUE constraint", "IntegrityError", "duplicate key", "Duplicate entry",
               "already exists")


@dataclass
class _Held:
    """This process's hold on one lock file: threads take turns on ``turn`` (re-entrant, so
    a promotion inside a promotion does not wait for itself), the first in takes the flock."""

    turn: threading.RLock
    depth: int = 0
    fd: int | None = None


_HOLDS: dict[Path, _Held] = {}
_HOLDS_GUARD = threading.Lock()


def lock_path(tracking_uri: str) -> Path | None:
    """The lock file of a local store; None for a tracking server or a database URI."""
    where = local_path(tracking_uri)
    if where is None:
        return None
    return (where.parent if tracking_uri.startswith("sqlite:") else where) / LOCK_NAME


@contextmanager
def registry_lock(tracking_uri: str, doing: str, note: Note) -> Iterator[None]:
    """Hold the registry's lock for the block, ``note``-ing one line when it must wait.

    ``doing`` (e.g. "promotion") is what the holder is doing, for the note of whoever waits."""
    path = lock_path(tracking_uri)
    if path is None:
        yield
        return
    with _HOLDS_GUARD:
        held = _HOLDS.setdefault(path, _Held(threading.RLock()))
    if not held.turn.acquire(blocking=False):
        note(_waiting(path))
        held.turn.acquire()
    try:
        if held.depth == 0:
            held.fd = _take(path, doing, note)
        held.depth += 1
        try:
            yield
        finally:
            held.depth -= 1
            if held.depth == 0 and held.fd is not None:
                os.close(held.fd)  # closing the file releases the flock
                held.fd = None
    finally:
        held.turn.release()


def _take(path: Path, doing: str, note: Note) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except PermissionError:  # another user's lock file: flock needs no write access
            fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(f"cannot open the registry lock {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            note(_waiting(path))
            fcntl.flock(fd, fcntl.LOCK_EX)
        with suppress(OSError):  # a read-only lock file: the next waiter's note is vaguer
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()} {doing}\n".encode(), 0)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _waiting(path: Path) -> str:
    """The note of a writer that waits: who holds the lock, as the holder wrote it."""
    try:
        pid, _, doing = path.read_text(encoding="utf-8").strip().partition(" ")
    except OSError:
        pid, doing = "", ""
    if not pid.isdigit():
        return "waiting for another promotion or training run on this registry …"
    return f"waiting for another {doing or 'writer'} on this registry (pid {pid}) …"


def settled(write: Callable[[], T], tries: int = 3) -> T:
    """``write`` (an MLflow write that reads, then inserts), tried again when another writer
    inserted the same row first: the retry finds that row and updates it, or finds the
    experiment the other writer created."""
    from mlflow.exceptions import MlflowException

    for attempt in range(1, tries + 1):
        try:
            return write()
        except MlflowException as exc:
            if attempt == tries or not raced(exc):
                raise
            time.sleep(0.05 * attempt)
    raise AssertionError("unreachable: the last attempt returns or raises")


def raced(exc: BaseException) -> bool:
    """Whether an MLflow error is another writer's row arriving first."""
    return any(sign in str(exc) for sign in _RACE_SIGNS)
