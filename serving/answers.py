"""The JSON answers of the scoring routes, as data orjson writes (``FastJSON``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal

from serving.errors import TooLargeError, UnknownCustomerError
from serving.predictor import Scored
from serving.recommender import Recommended
from serving.schemas import PredictIn
from serving.state import ServiceState
from serving.utc import iso_z


def predict_answer(state: ServiceState, body: PredictIn,
                   later: list[Callable[[], None]] | None = None) -> dict[str, Any]:
    """POST /predict's answer (a ``PredictOut``), from the stored history or the inline one;
    ``later``: see ``ServiceState.predict``."""
    if body.events is None:
        source: Literal["store", "inline"] = "store"
        scored = state.predict(body.customer_id, body.as_of, later)
    else:
        if len(body.events) > state.settings.max_events:
            raise TooLargeError(f"{len(body.events):,} inline events; the limit is "
                                f"{state.settings.max_events:,}", "events")
        rows = [e.model_dump() for e in body.events]
        scored = state.predict_inline(body.customer_id, rows, body.as_of, body.attributes,
                                      later)
        source = "inline"
    return {**prediction(scored), "history": source, "model_versions": state.versions(),
            "feature_definition_hash": state.spec.hash}


def unknown_customer(customer_id: str, when: datetime) -> UnknownCustomerError:
    """The 404 of a customer with no stored event before ``when``."""
    return UnknownCustomerError(f"no events for customer {customer_id!r} before "
                                f"{iso_z(when)}", "customer_id")


def prediction(s: Scored) -> dict[str, Any]:
    """A ``PredictionOut`` as data orjson writes. Scoring routes answer with it directly: FastAPI
    would otherwise validate the whole response model again, which costs more than the
    prediction for a batch (tests check every answer against the models)."""
    return {
        "customer_id": s.customer_id, "as_of": iso_z(s.as_of), "current_stage": s.current_stage,
        "next_stage": s.next_stage, "churn": s.churn, "conversion": s.conversion,
        "risk_tier": s.risk_tier, "events": s.events,
        "reasons": s.reasons,  # Reason dataclasses: orjson writes their fields
        "time_to_churn": s.time_to_churn,
    }


def recommendation(r: Recommended) -> dict[str, Any]:
    """A ``RecommendationOut`` as data orjson writes (see ``prediction``)."""
    d, s = r.decision, r.scored
    actions = []
    for a in d.actions:
        props: dict[str, Any] = {"recommendation_id": r.recommendation_id, "rank": a.rank}
        if a.rank == 1:
            props["propensity"] = d.propensity
        actions.append({
            "action": a.action, "channel": a.channel, "rank": a.rank,
            "expected_value": a.value, "expected_value_unweighted": a.value_unweighted,
            "uplift": dict(a.uplift), "outcome_values": dict(a.outcome_values),
            "giveaway": a.giveaway, "cost": a.cost,
            "weight": a.weight, "reasons": list(a.reasons),
            "report_as": {"event_type": "action_sent", "action": a.action,
                          "channel": a.channel, "properties": props},
        })
    return {
        "recommendation_id": r.recommendation_id, "customer_id": r.customer_id,
        "as_of": iso_z(r.as_of), "current_stage": s.current_stage, "churn": s.churn,
        "conversion": s.conversion, "actions": actions, "no_action_reason": d.no_action_reason,
        "explored": d.explored, "propensity": d.propensity,
        "suppressed": [{"action": x.action, "stage": x.stage, "reason": x.reason}
                       for x in d.suppressed],
    }
