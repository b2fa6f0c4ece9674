"""The predict path run once on a made-up customer while models load, before they are served.

numba compiles the feature kernel and the models' routing on their first call, for the argument
types it sees: 7-12 s when its cache is empty, as in every new container. /readyz says ready
once models are served, and a load balancer routes to a ready instance at once: the first
/predict, made in a page's request path with a short timeout, paid for the compilation. Other
first calls on that path (numba's thread pool, each model's column plan, LightGBM's first
survival prediction) are paid here too.

The customer is made up: the store may be empty, and a real one's history is none of this
code's business. Nothing is recorded (no metrics, no drift-window rows, no events): the path
is ``ServiceState.predict``'s without ``_record``. Compilation cannot be interrupted, so it
runs in a thread the load waits for at most ``WARM_UP_SECONDS``; a warm-up that fails or takes
longer is logged and the service carries on (its first predictions are slow, as before).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from features.batch import micros
from features.online import OnlineFeatures
from features.spec import FeatureSpec
from serving.champions import ModelSet
from serving.predictor import Predictor

log = logging.getLogger("journey.serving")
WARM_UP_SECONDS = 60.0  # well within `journey serve --detach`'s 180 s wait for readiness
CUSTOMER = "journey-warm-up"  # never stored, never answered


def made_up_events(spec: FeatureSpec, cutoff: datetime) -> list[dict[str, Any]]:
    """A short history in the form /predict's inline events take (numba compiles for argument
    types, not values: any valid events do)."""
    channel = spec.channel_vocab[0] if spec.channel_vocab else None
    return [{"ts": cutoff - timedelta(days=d + 1), "event_type": event_type, "channel": channel,
             "value": None, "action": None, "properties": None}
            for d, event_type in enumerate(spec.event_types[:3])]


def predict_made_up(online: OnlineFeatures, predictor: Predictor, models: ModelSet) -> None:
    """What ``ServiceState.predict`` computes for a customer, reasons included, unrecorded."""
    when = datetime.now(UTC)
    t = micros(when)
    arrays = online.enc.one_customer(CUSTOMER, made_up_events(online.spec, when), t)
    vectors = online.vectors(arrays, t, [{}])
    predictor.score(models, vectors, when)


def warm_up(online: OnlineFeatures, predictor: Predictor, models: ModelSet,
            timeout: float = WARM_UP_SECONDS) -> bool:
    """Run the predict path once; True when it finished in time without error."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            predict_made_up(online, predictor, models)
        except Exception as exc:  # any: a failed warm-up must not fail the load
            failed.append(exc)

    started = time.perf_counter()
    thread = threading.Thread(target=run, name="journey-warm-up", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        log.warning("the predict path was not compiled within %.0fs: serving anyway, the "
                    "first predictions wait for the compilation", timeout)
        return False
    if failed:
        log.warning("the predict path's warm-up failed (the first prediction may take "
                    "seconds): %s: %s", type(failed[0]).__name__, failed[0])
        return False
    log.debug("predict path warmed up in %.2fs", time.perf_counter() - started)
    return True
