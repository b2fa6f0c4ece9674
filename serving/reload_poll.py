"""The service's registry poll (JOURNEY_RELOAD_POLL_SECONDS): champions are loaded once their
aliases hold still.

A promotion moves the champion aliases one model at a time. A poll that loaded whatever it
read mid-promotion served, until its next poll, a mix of versions never promoted together
(1.4 s at one poll a second). The poll loads a reading only when the next poll reads the same
(the set has settled); an explicit POST /v1/admin/reload still loads at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from serving.champions import ModelHolder

log = logging.getLogger("journey.serving")


class SettledPoll:
    """``tick()`` once a poll interval: reads the aliases (``probe``) and calls ``reload``
    only for a reading the previous tick read too."""

    def __init__(self, holder: ModelHolder, probe: Callable[[], dict[str, str]],
                 reload: Callable[[], bool]) -> None:
        self._holder, self._probe, self._reload = holder, probe, reload
        self._last: dict[str, str] | None = None

    def start(self, stop: threading.Event, seconds: float) -> threading.Thread:
        """A thread that polls every ``seconds`` until ``stop`` is set."""
        def run() -> None:
            while not stop.wait(seconds):
                self.tick()

        thread = threading.Thread(target=run, name="journey-poll", daemon=True)
        thread.start()
        return thread

    def tick(self) -> bool:
        """One poll; True when it swapped the served models."""
        try:
            reading = self._probe()
        except Exception:
            # The reload reads again and records the failure (log, /readyz, metrics), as a
            # poll always did: a registry that does not answer must show.
            self._last = None
            return self._reload()
        settled, self._last = reading == self._last, reading
        current = self._holder.current
        if current is not None and reading == current.versions():
            # Nothing to load; a reload only to clear the error of a failed one.
            return self._reload() if self._holder.last_error is not None else False
        if not settled:
            log.info("the registry's aliases name %s: loaded once the next poll reads the "
                     "same (a promotion may be moving them)", reading)
            return False
        return self._reload()
