"""Request and response bodies of every route (they are the OpenAPI schema at /v1/docs)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from serving.schema_fields import (
    Action,
    AsOfTime,
    BodyId,
    Channel,
    EventTime,
    EventType,
    Properties,
    Value,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Event(Strict):
    """One touchpoint (DESIGN.md, "Data contract"), within the file loader's bounds."""

    event_id: BodyId = Field(description="Unique; a re-sent event_id is ignored "
                             "(idempotent).")
    customer_id: BodyId
    ts: EventTime = Field(description="When it happened, with a time zone (stored as UTC).")
    event_type: EventType
    channel: Channel = "unknown"
    value: Value = Field(None, description="Revenue for purchases: 0 to 1,000,000,000,000.")
    action: Action = Field(None, description="A marketing action applied at that moment "
                           "(trimmed; blank is none).")
    properties: Properties = Field(None, description="A JSON object of at most 65,536 "
                                   "characters.")


class HistoryEvent(Strict):
    """An event of an inline history (no id needed: it is not stored)."""

    ts: EventTime
    event_type: EventType
    channel: Channel = "unknown"
    value: Value = None
    action: Action = None
    properties: Properties = None


class EventsIn(Strict):
    events: list[Event] = Field(min_length=1)


class EventsOut(BaseModel):
    received: int
    inserted: int
    duplicates: int = Field(description="Already stored (same event_id): ignored.")
    duplicate_event_ids: list[str] = Field(
        default_factory=list, description="The ignored event_ids, in request order (the first "
        "100): a sender whose ids collide sees which events were not stored.")
    conflicting_event_ids: list[str] = Field(
        default_factory=list, description="Of the ignored ids, those the store holds for a "
        "different event (another customer, time, type, value...): a changed event re-sent "
        "under its old id, which was not stored.")
    warnings: list[str] = Field(default_factory=list, description="Stored, but worth knowing: "
                                "e.g. events after the service's pinned clock.")


class PredictIn(Strict):
    customer_id: BodyId
    as_of: AsOfTime | None = Field(
        None, description="Score as of this time (events strictly before it; a date alone is "
                          "its midnight UTC); default: now.")
    events: list[HistoryEvent] | None = Field(
        None, description="An inline history to score instead of the stored one.")
    attributes: dict[str, str | None] | None = Field(
        None, description="Customer attributes for an inline history (default: stored ones).")


class BatchIn(Strict):
    customer_ids: list[BodyId] = Field(
        min_length=1, description="Answered once each, in the order first given.")
    as_of: AsOfTime | None = None


class ReasonOut(BaseModel):
    feature: str
    value: float | str | None
    direction: Literal["raises", "lowers"]
    contribution: float = Field(description="Log-odds contribution to the explained class.")
    text: str


class TimeToChurnOut(BaseModel):
    expected_days: float = Field(description="Expected days to churn within the horizon (the "
                                 "restricted mean: the area under the survival curve up to "
                                 "horizon_days); 0 for a customer already churned.")
    median_days: float | None = Field(description="Days until the survival probability falls "
                                      "to 0.5; null when it stays above 0.5 through the "
                                      "horizon.")
    survival: dict[str, float] = Field(description="Probability of not having churned yet, "
                                       "by day after as_of (e.g. \"7\", \"30\", \"90\").")
    horizon_days: int = Field(description="The survival model's horizon.")
    status: Literal["active", "churned", "no_activity"] | None = Field(
        None, description="Why the curve is what it is: \"churned\" when the inactivity gap "
        "that defines churn has already been reached at as_of, \"no_activity\" when there is "
        "no activity before as_of to count a gap from (both: survival 0, whatever the churn "
        "probability of the next horizon says); null for a Kaplan-Meier champion, one curve "
        "for everyone.")


class PredictionOut(BaseModel):
    customer_id: str
    as_of: AwareDatetime
    current_stage: str | None
    next_stage: dict[str, float] = Field(description="Probability of each furthest stage "
                                                     "reached within the horizon, or inactive.")
    churn: float
    conversion: float
    risk_tier: Literal["low", "medium", "high"]
    events: int = Field(description="Events in the history scored (those before as_of).")
    reasons: dict[str, list[ReasonOut]] = Field(description="Per model, strongest first.")
    time_to_churn: TimeToChurnOut | None = Field(
        None, description="Time to churn (churn: an inactivity gap of churn_gap_days); null "
        "when no survival model is served.")


class PredictOut(PredictionOut):
    history: Literal["store", "inline"]
    model_versions: dict[str, str]
    feature_definition_hash: str


class BatchOut(BaseModel):
    predictions: list[PredictionOut]
    unknown_customers: list[str]
    model_versions: dict[str, str]
    feature_definition_hash: str


class ModelsOut(BaseModel):
    alias: str
    models: dict[str, str]
    feature_definition_hash: str
    loaded_at: float | None = Field(description="When the served set was loaded (Unix time).")
    loaded_at_iso: str | None = Field(None, description="The same, as ISO 8601 UTC text.")
    last_load_error: str | None


class ReloadOut(BaseModel):
    changed: bool
    models: dict[str, str]
    error: str | None


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    ready: bool
    models: dict[str, str]
    customers: int
    last_load_error: str | None
    message: str


class Problem(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    code: str
    message: str = Field(description="The first problem, and how many more there are.")
    field: str | None = None
    errors: list[Problem] | None = Field(None, description="Every problem of a refused request "
                                         "(the first 100); on every 422, even of one problem.")
    request_id: str | None = Field(None, description="The request's id, as in its X-Request-ID "
                                   "header and in the service log's lines about it.")


class RecommendIn(Strict):
    customer_id: BodyId | None = None
    customer_ids: list[BodyId] | None = Field(None, min_length=1, description="A batch instead.")
    as_of: AsOfTime | None = Field(None, description="Decide as of this time (a date alone is "
                                   "its midnight UTC); default: now.")
    # Strict: "explore": "no" or "top_k": true are a client's mistakes, not false and 1.
    top_k: StrictInt | None = Field(None, ge=1, le=20,
                                    description="Default: the catalog's policy.")
    explore: StrictBool = Field(True, description="Apply the catalog's exploration share (turn "
                                "off for previews that will not be delivered).")

    @model_validator(mode="after")
    def _one_of(self) -> RecommendIn:
        if (self.customer_id is None) == (self.customer_ids is None):
            raise ValueError("give exactly one of customer_id and customer_ids")
        return self


class ReportEvent(BaseModel):
    """Send this to POST /v1/events (with an event_id, customer_id and ts) once the action is
    delivered: the propensity lets later uplift training and off-policy evaluation reweight."""

    event_type: Literal["action_sent"]
    action: str
    channel: str
    properties: dict[str, Any]


class RankedOut(BaseModel):
    action: str
    channel: str
    rank: int
    expected_value: float = Field(description="(sum of uplift * outcome value - giveaway - "
                                              "cost) * weight.")
    expected_value_unweighted: float
    uplift: dict[str, float] = Field(description="Estimated change in each outcome's "
                                                 "probability if the action is sent now.")
    outcome_values: dict[str, float]
    giveaway: float = Field(description="Value a discount gives away on outcomes expected "
                                        "without the action (probability x value x discount).")
    cost: float
    weight: float
    reasons: list[str]
    report_as: ReportEvent


class SuppressedOut(BaseModel):
    action: str
    stage: Literal["eligibility", "value", "contact_policy", "exclusion"]
    reason: str


class RecommendationOut(BaseModel):
    recommendation_id: str
    customer_id: str
    as_of: AwareDatetime
    current_stage: str | None
    churn: float
    conversion: float
    actions: list[RankedOut] = Field(description="Best first; empty means no action.")
    no_action_reason: str | None
    explored: bool = Field(description="The first action was drawn by exploration.")
    propensity: float = Field(description="Probability this policy gave the first answer.")
    suppressed: list[SuppressedOut]


class RecommendOut(BaseModel):
    recommendations: list[RecommendationOut]
    unknown_customers: list[str]
    model_versions: dict[str, str]
    feature_definition_hash: str
