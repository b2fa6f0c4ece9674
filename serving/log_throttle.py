"""At most one log line per kind of event a minute, with a count of those held back.

A dead receiver turns every firing into a retry line and then a dead line: at a few
thousand firings an hour that was most of serve.log, while the operator needs one line a
minute saying it goes on, and how many. Keys are bounded (an endpoint's name and what
happened; a route and status code for request lines), never a firing or customer id.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

LOG_EVERY_SECONDS = 60.0


class Throttle:
    """``allow(key)``: whether to log this line now, and how many lines of that key were held
    back since the last one; ``due()``: the keys whose held lines should be said now."""

    def __init__(self, every: float = LOG_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.every = every
        self._clock = clock
        self._lock = threading.Lock()  # sender threads and the triggers' worker share it
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, key: str) -> int | None:
        """None: hold this line back (it is counted); otherwise log it now, with the returned
        number of lines held back since the last one of ``key``."""
        with self._lock:
            now = self._clock()
            if now - self._last.get(key, -math.inf) < self.every:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            self._last[key] = now
            return self._held.pop(key, 0)

    def due(self, force: bool = False) -> dict[str, int]:
        """The keys with lines held back whose interval has passed (``force``: all of them,
        at shutdown), with their counts; they count as said now."""
        out: dict[str, int] = {}
        with self._lock:
            now = self._clock()
            for key, n in list(self._held.items()):
                if force or now - self._last.get(key, -math.inf) >= self.every:
                    out[key] = n
                    del self._held[key]
                    self._last[key] = now
        return out


def more(n: int, what: str) -> str:
    """The suffix of a line that follows ``n`` held back: `` (+3 more retries since ...)``."""
    return f" (+{n} more {what} since the last such line)" if n else ""
