"""The personalization systems' routes (ingest, predict, recommend), health, and model admin.
The hot ones come first in ``serving.app``'s route order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import anyio
from fastapi import Response
from pydantic import BaseModel, Field

from serving.answers import predict_answer, prediction, recommendation, unknown_customer
from serving.deps import Admin, Ingester, Reader, Scorer, StateDep, Watcher, not_found
from serving.errors import TooLargeError
from serving.event_checks import after_clock, conflict_warnings, contact_warnings, duplicate_ids
from serving.http import FastJSON
from serving.route_table import RouteTable
from serving.schemas import (
    BatchIn,
    BatchOut,
    EventsIn,
    EventsOut,
    Health,
    ModelsOut,
    PredictIn,
    PredictOut,
    Readiness,
    RecommendIn,
    RecommendOut,
    ReloadOut,
)
from serving.utc import iso_z

api = RouteTable()


class DegradedOut(BaseModel):
    function: Literal["api_keys", "event_ingest", "event_store", "model_reload",
                      "drift_monitoring"] = Field(
        description="api_keys: every keyed route answers 503 key_file_unreadable; "
        "event_ingest: POST /v1/events answers 503 store_unavailable; event_store: the store "
        "was not opened; model_reload: the last model load failed (the last good models "
        "are served); drift_monitoring: the last drift evaluation failed.")
    reason: str = Field(description="Why, in words, without the server's paths.")


class ReadinessOut(Readiness):
    problems: list[DegradedOut] = Field(
        default_factory=list, description="Functions that do not work now while the service "
        "answers (readiness and its status code do not change for them): an operator's "
        "alert, also journey_degraded{function} in /v1/metrics.")


@api.get("/healthz", tags=["health"])
async def healthz() -> Health:
    """The process is up (no key needed)."""
    return Health(status="ok")


@api.get("/readyz", tags=["health"], responses={503: {"model": ReadinessOut}})
async def readyz(state: StateDep, response: Response) -> ReadinessOut:
    """200 once histories and models are loaded; 503 before, with the reason. ``problems``
    lists what is degraded meanwhile (a broken key file, refused event writes)."""
    body = ReadinessOut(**state.readiness())
    response.status_code = 200 if body.ready else 503
    return body


@api.get("/metrics", tags=["health"], response_class=Response,
         responses={200: {"content": {"text/plain": {}}}})
async def metrics(state: Watcher) -> Response:
    """Prometheus text format."""
    state.metrics.sync_models(state.holder, state.ready)
    state.readiness()  # sets journey_degraded{function}
    state.metrics.sync_store(await anyio.to_thread.run_sync(state.store_memory))
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4")


@api.post("/events", tags=["ingest"])
async def events(body: EventsIn, state: Ingester) -> EventsOut:
    """Append touchpoints; acknowledged once durable. Re-sent event_ids are ignored."""
    limit = state.settings.max_events
    if len(body.events) > limit:
        raise TooLargeError(
            f"{len(body.events):,} events in one request; the limit is {limit:,}", "events")
    rows = [e.model_dump() for e in body.events]
    done = await anyio.to_thread.run_sync(state.ingest, rows)
    ignored = duplicate_ids(rows, done)
    # Only when something was ignored: telling a changed event from a re-send reads the store.
    conflicts = (await anyio.to_thread.run_sync(state.resent_conflicts, rows, ignored)
                 if ignored else [])
    return EventsOut(received=done.received, inserted=done.inserted,
                     duplicates=done.duplicates, duplicate_event_ids=ignored,
                     conflicting_event_ids=[event_id for event_id, _ in conflicts],
                     warnings=after_clock(rows, state.settings.as_of)
                     + contact_warnings(rows, state.recommender.catalog.ids)
                     + conflict_warnings(conflicts))


@api.post("/predict", tags=["predict"], response_model=PredictOut,
          responses=not_found("No stored events for the customer."))
async def predict(body: PredictIn, state: Scorer) -> FastJSON:
    """Stage, next-stage, churn and conversion probabilities with reason codes, for one
    customer from the stored history, or from an inline one."""
    return FastJSON(predict_answer(state, body))


@api.post("/predict/batch", tags=["predict"], response_model=BatchOut)
async def predict_batch(body: BatchIn, state: Scorer) -> FastJSON:
    """Many stored customers at once; unknown ids are listed, not fatal."""
    limit = state.settings.max_batch
    if len(body.customer_ids) > limit:
        raise TooLargeError(f"{len(body.customer_ids):,} customers in one batch; the limit is "
                            f"{limit:,}", "customer_ids")
    scored, unknown = await anyio.to_thread.run_sync(
        state.predict_batch, body.customer_ids, body.as_of)
    return FastJSON({"predictions": [prediction(s) for s in scored],
                     "unknown_customers": unknown, "model_versions": state.versions(),
                     "feature_definition_hash": state.spec.hash})


@api.post("/recommend", tags=["recommend"], response_model=RecommendOut,
          responses=not_found("No stored events for `customer_id`."))
async def recommend(body: RecommendIn, state: Scorer) -> FastJSON:
    """Next-best-actions for one stored customer or a batch: eligible actions ranked by
    expected incremental value under the contact policy, with reasons; deliver one and
    report it back with its ``report_as`` event."""
    ids = [body.customer_id] if body.customer_id is not None else body.customer_ids or []
    limit = state.settings.max_batch
    if len(ids) > limit:
        raise TooLargeError(f"{len(ids):,} customers in one batch; the limit is {limit:,}",
                            "customer_ids")
    if len(ids) == 1:  # one customer: scoring on the event loop beats a thread hop
        done, unknown = state.recommend(ids, body.as_of, body.top_k, body.explore)
    else:
        done, unknown = await anyio.to_thread.run_sync(
            state.recommend, ids, body.as_of, body.top_k, body.explore)
    if body.customer_id is not None and unknown:
        raise unknown_customer(body.customer_id, state.asked(body.as_of))
    return FastJSON({"recommendations": [recommendation(r) for r in done],
                     "unknown_customers": unknown, "model_versions": state.versions(),
                     "feature_definition_hash": state.spec.hash})


@api.get("/models", tags=["models"])
async def models(state: Reader) -> ModelsOut:
    """The served model versions and the last load outcome."""
    current = state.holder.current
    return ModelsOut(alias=state.settings.model_alias, models=state.versions(),
                     feature_definition_hash=state.spec.hash,
                     loaded_at=current.loaded_at if current else None,
                     loaded_at_iso=iso_z(datetime.fromtimestamp(current.loaded_at, UTC))
                     if current else None,
                     last_load_error=state.holder.last_error)


@api.post("/admin/reload", tags=["admin"])
async def reload(state: Admin) -> ReloadOut:
    """Load the alias's versions again; a failure keeps the models being served."""
    changed = await anyio.to_thread.run_sync(state.reload)
    return ReloadOut(changed=changed, models=state.versions(),
                     error=state.holder.last_error)
