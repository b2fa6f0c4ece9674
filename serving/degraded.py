"""What /v1/readyz lists as ``problems``: each function of the service that does not work
now, and why, while the service stays ready (its status code unchanged: predictions go on,
and a load balancer must not take the instance out for, say, a broken key file). The same
list sets ``journey_degraded{function}`` at each readyz and metrics read.

Anyone may read /readyz: every reason is cut to its first line without the server's paths
(``public_reason``); the log has the whole text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry

from serving.champions import ModelHolder
from serving.drift import DriftMonitor
from serving.keys import KeyFileError, KeyRing
from serving.ops_metrics import HealthMetrics
from serving.redact import public_reason
from serving.store_guard import StoreGuard
from serving.utc import iso_z

if TYPE_CHECKING:
    from serving.state import ServiceState


@dataclass(frozen=True)
class Problem:
    function: str  # one of ops_metrics.FUNCTIONS
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"function": self.function, "reason": self.reason}


class Degraded:
    """``check(...)``: the problems now, each read from the part that knows (passed at each
    call: a test may swap a part of the state)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.metrics = HealthMetrics(registry)

    def readiness(self, state: ServiceState) -> dict[str, Any]:
        """What /readyz tells anyone (no key): the load errors without the server's paths
        (``public_reason``); the log and the keyed /models have them whole. ``ready`` (the
        status code) is as before; ``problems`` lists what is degraded meanwhile."""
        failure = state.store_guard.failure
        why = failure or public_reason(state.startup_error or state.holder.last_error)
        if not state.ready and why is None:
            why = "loading event histories and models"
        problems = self.check(state.keys, state.store_guard, state.holder, state.drift,
                              state.startup_error)
        return {
            "ready": state.ready and failure is None,
            "models": state.versions(),
            "customers": state.history.n_customers if state.history else 0,
            "last_load_error": public_reason(state.holder.last_error or state.startup_error),
            "message": "ready" if state.ready and why is None else why,
            "problems": [p.to_dict() for p in problems],
        }

    def check(self, keys: KeyRing, guard: StoreGuard, holder: ModelHolder, drift: DriftMonitor,
              startup_error: str | None) -> list[Problem]:
        """Each degraded function now; also sets the gauges."""
        found = (_keys(keys), _store(guard, startup_error), _models(holder), _drift(drift))
        out = [p for p in found if p is not None]
        self.metrics.sync([p.function for p in out])
        return out


def _keys(keys: KeyRing) -> Problem | None:
    try:
        keys.check()  # reads a changed file again, at most once a second
    except KeyFileError as exc:
        return Problem("api_keys", f"every keyed route answers 503 key_file_unreadable: "
                       f"{public_reason(str(exc))}")
    return None


def _store(guard: StoreGuard, startup_error: str | None) -> Problem | None:
    if startup_error is not None:
        return Problem("event_store", str(public_reason(startup_error)))
    if guard.failure is not None:
        return Problem("event_ingest", guard.failure)
    refused = guard.refused
    if refused is not None:
        since = iso_z(refused.since.replace(microsecond=0))
        return Problem("event_ingest", f"POST /v1/events answers 503 store_unavailable: "
                       f"the event store could not write {refused.count} request(s)' "
                       f"events since {since} ({refused.cause}); listed until a write "
                       "is stored again")
    return None


def _models(holder: ModelHolder) -> Problem | None:
    error = holder.last_error
    if error is None:
        return None
    current = holder.current
    serving = (f"still serving {current.versions()}" if current is not None
               else "no models served")
    return Problem("model_reload", f"the last model load failed ({serving}): "
                   f"{public_reason(error)}")


def _drift(drift: DriftMonitor) -> Problem | None:
    failure = drift.failure
    if failure is None:
        return None
    return Problem("drift_monitoring", f"the last drift evaluation failed "
                   f"({public_reason(failure)}): the drift gauges keep the values of an "
                   "earlier one (journey_drift_last_evaluation_timestamp_seconds)")
