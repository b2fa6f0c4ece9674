"""The service's worker stops when its supervisor is gone.

BentoML runs the service in a worker process with a session of its own under a supervisor
(the PID `journey serve --detach` records). When the supervisor was killed (SIGKILL, an OOM
kill) the worker went on serving with PID 1 as its parent, holding the event store and the
port, where `journey stop` could no longer find it. A thread notices the parent change and
stops the worker as `journey stop` would (SIGTERM: the store is closed cleanly).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time

log = logging.getLogger("journey.serving")


def stop_with_parent(interval: float = 1.0) -> threading.Thread:
    """Watch this process's parent; SIGTERM this process once the parent has changed."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        log.warning("the service's supervisor (PID %d) is gone: stopping this worker (PID %d)",
                    parent, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="journey-parent-watch", daemon=True)
    thread.start()
    return thread
