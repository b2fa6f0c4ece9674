"""One id per request, to match an answer to the service's log lines.

A caller (or its proxy) may name the request with ``X-Request-ID``; a sane one is kept, so the
caller's own logs and the service's share it. Anything else (too long, spaces, control or
non-ASCII characters: a log line must not be forgeable through it) is replaced by one made
here. The id travels in a context variable: the error answers (``serving.http.error_json``)
and the log formatter (``serving.logs``) read it wherever the request's code runs, threads
started with ``anyio.to_thread`` included (they copy the context).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from contextvars import ContextVar

HEADER = b"x-request-id"
MAX_CHARS = 128
# Visible ASCII only: no spaces, quotes of a log format's fields survive as they are, and
# nothing that ends a line.
_SANE = re.compile(rb"[!-~]{1,%d}" % MAX_CHARS)
REQUEST_ID: ContextVar[str | None] = ContextVar("journey_request_id", default=None)


def new_id() -> str:
    """16 hex digits (64 random bits): unique enough for a log, short enough to read. Not
    a secret, so not from the OS's generator (a system call on every request)."""
    return f"{random.getrandbits(64):016x}"


def incoming(headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The request's id: its first ``X-Request-ID`` when sane, else a new one."""
    for name, value in headers:
        if name == HEADER:
            return value.decode("ascii") if _SANE.fullmatch(value) else new_id()
    return new_id()


def current() -> str | None:
    """The id of the request whose code is running, if any."""
    return REQUEST_ID.get()
