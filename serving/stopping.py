"""When the service starts stopping: at the stop signal, not at the lifespan's shutdown.

`journey stop` sends SIGTERM to BentoML's supervisor, which sends it to the service's worker
and then to the worker's children, the score worker among them. Uvicorn, on that signal,
waits for the open requests before the lifespan's shutdown closes the state: a scoring run in
progress sees its child die while the service does not know yet that it is stopping, and
would score again in the service, holding up the stop. This chains a handler before uvicorn's
(or whatever handles the signal) that sets the state's stop event first. In the service the
next in the chain is ``serving.draining.Drain``'s, which hands the signal on to uvicorn's once
no new connection can come in.
"""

from __future__ import annotations

import contextvars
import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

log = logging.getLogger("journey.serving")
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
Handler = Callable[[int, FrameType | None], Any] | int | signal.Handlers | None


class StopSignals:
    """``watch()`` sets ``stopping`` on SIGTERM or SIGINT, then lets the handler it replaced
    act (uvicorn's graceful shutdown, or the default: the process ends); ``restore()`` puts
    that handler back. Signals are handled on the main thread only: elsewhere (a test's
    client) neither does anything."""

    def __init__(self, stopping: threading.Event,
                 in_flight: Callable[[], list[str]] | None = None) -> None:
        """``in_flight()``: the work under way, in words, for the line saying the signal came
        (read in the signal handler: it must take no lock the main thread may hold)."""
        self.stopping = stopping
        self._in_flight = in_flight or list
        self._replaced: dict[int, Handler] = {}

    def watch(self) -> None:
        if threading.current_thread() is not threading.main_thread() or self._replaced:
            return
        for sig in STOP_SIGNALS:
            self._replaced[sig] = signal.signal(sig, self._handle)

    def restore(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig, before in self._replaced.items():
            if signal.getsignal(sig) == self._handle:  # not if another has replaced it since
                signal.signal(sig, before)
        self._replaced.clear()

    def _handle(self, sig: int, frame: FrameType | None) -> None:
        # The handler runs in whatever the main thread was doing, a request's code included:
        # in a context of its own, its lines (and what it starts) carry no request's id.
        contextvars.Context().run(self._handled, sig, frame)

    def _handled(self, sig: int, frame: FrameType | None) -> None:
        if not self.stopping.is_set():  # a second signal says nothing new
            doing = self._in_flight()
            log.info("stop signal %s received: stopping%s", signal.Signals(sig).name,
                     f"; under way: {'; '.join(doing)}" if doing else "")
        self.stopping.set()
        before = self._replaced.get(sig)
        if callable(before):
            before(sig, frame)
        elif before == signal.SIG_DFL or before is None:  # the default: end, as without this
            signal.signal(sig, signal.SIG_DFL)
            signal.raise_signal(sig)
