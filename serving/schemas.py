"""Request and response bodies of every route (they are the OpenAPI schema at /v1/docs)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    model_validator,
)

from features.normalize import normal_action, normal_channel, normal_event_type
from features.schema import (
    MAX_ID_CHARS,
    MAX_LABEL_CHARS,
    MAX_PROPERTIES_CHARS,
    MAX_TS,
    MAX_VALUE,
    MIN_TS,
)

Id = Field(min_length=1, max_length=MAX_ID_CHARS)
ID_TRIMMED = " \t\n\r"  # what the loader's clean_text trims


def _clean_id(text: str) -> str:
    """An id as the file loader reads it: surrounding spaces, tabs and line breaks trimmed
    (" C1 " is customer C1, not another one), blank refused, NUL refused (C strings end there)."""
    out = text.strip(ID_TRIMMED)
    if not out:
        raise ValueError("must not be blank")
    if "\x00" in out:
        raise ValueError("must not contain a NUL character")
    return out


CleanId = Annotated[str, Id, AfterValidator(_clean_id)]


def _text(value: object) -> object:
    """ISO 8601 text only (or a datetime, from Python): pydantic also reads a number, or a
    string of digits, as Unix seconds or milliseconds by its size (803 became
    1970-01-01T00:13:23Z), which the schema does not offer and a sender never means."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return value
    raise ValueError("expected a date-time as ISO 8601 text with a time zone")


def _utc(when: datetime) -> datetime:
    try:
        return when.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00+01:00: before year 1 in UTC
        raise ValueError("outside the years 1 to 9999 once converted to UTC") from None


# A request time, converted to UTC as it is read: a time that has no UTC equivalent is a bad
# field (422), not an overflow in the scoring clock or the store later (500).
UtcTime = Annotated[AwareDatetime, BeforeValidator(_text), AfterValidator(_utc)]
DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _as_of_text(value: object) -> object:
    """A date alone is its midnight UTC, as every `journey` command reads one; a time without
    a zone is refused saying how to write it (the service cannot guess the sender's zone)."""
    if isinstance(value, str) and DATE_ONLY.fullmatch(value.strip()):
        return f"{value.strip()}T00:00:00Z"
    if isinstance(value, str):
        try:
            naive = datetime.fromisoformat(value).tzinfo is None
        except ValueError:
            naive = False
        if naive:
            raise ValueError(f"{value!r} has no time zone: add one (e.g. {value}Z for UTC), or "
                             "give a date alone (midnight UTC)")
    return value


# An `as_of`: a UtcTime, or a date (its midnight UTC).
AsOfTime = Annotated[UtcTime, BeforeValidator(_as_of_text)]
_FIRST, _END = (datetime.fromisoformat(d).replace(tzinfo=UTC) for d in (MIN_TS, MAX_TS))


def _storable(when: datetime) -> datetime:
    """The file loader's range (features/normalize.py): an event dated year 1 would pass as
    a valid time, then turn every gap and rate of its customer's features into nonsense."""
    if not _FIRST <= when < _END:
        raise ValueError(f"outside the years {MIN_TS[:4]}-{MAX_TS[:4]} the store accepts")
    return when


EventTime = Annotated[UtcTime, AfterValidator(_storable)]


def _not_bool(v: Any) -> Any:
    """JSON true is not a number: pydantic would read it as 1.0 revenue."""
    if isinstance(v, bool):
        raise ValueError("must be a number, not true or false")
    return v


def _event_value(v: float | None) -> float | None:
    if v is None:
        return v
    if not math.isfinite(v):
        raise ValueError("value must be a finite number")
    if not 0 <= v <= MAX_VALUE:
        raise ValueError(f"value must be between 0 and {MAX_VALUE:,.0f}")
    return v


def _event_properties(props: dict[str, Any] | None) -> dict[str, Any] | None:
    if props is not None:
        try:  # NaN and Infinity parse from a request body but are not JSON: never stored
            size = len(json.dumps(props, separators=(",", ":"), allow_nan=False))
        except ValueError:
            raise ValueError("properties hold a number that is not finite (NaN or Infinity), "
                             "which JSON cannot carry; send null or leave the key out") from None
        if size > MAX_PROPERTIES_CHARS:
            raise ValueError(f"properties take {size:,} characters as JSON; the limit is "
                             f"{MAX_PROPERTIES_CHARS:,}")
    return props


def _spelled(normal: Callable[[str], str]) -> Callable[[str], str]:
    def check(text: str) -> str:
        out = normal(text)
        if not out:
            raise ValueError("must not be blank")
        return out
    return check


# Spelled as the file loader spells them: "Add to Cart" is add_to_cart, "Email" is email.
EventType = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS,
                                 examples=["page_view", "add_to_cart", "purchase"]),
                      AfterValidator(_spelled(normal_event_type))]
Channel = Annotated[str, Field(min_length=1, max_length=MAX_LABEL_CHARS),
                    AfterValidator(_spelled(normal_channel))]
Value = Annotated[float | None, BeforeValidator(_not_bool), AfterValidator(_event_value)]


def _clean_action(value: object) -> object:
    """As the file loader stores an action (features.normalize.normal_action): trimmed, and
    blank is none. Before the length check, which the loader makes on the trimmed text."""
    return normal_action(value) if isinstance(value, str) else value


Action = Annotated[Annotated[str, Field(max_length=MAX_LABEL_CHARS)] | None,
                   BeforeValidator(_clean_action)]
Properties = Annotated[dict[str, Any] | None, AfterValidator(_event_properties)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Event(Strict):
    """One touchpoint (DESIGN.md, "Data contract"), within the file loader's bounds."""

    event_id: CleanId = Field(min_length=1, max_length=MAX_ID_CHARS,
                          description="Unique; a re-sent event_id is ignored (idempotent).")
    customer_id: CleanId
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
    customer_id: CleanId
    as_of: AsOfTime | None = Field(
        None, description="Score as of this time (events strictly before it; a date alone is "
                          "its midnight UTC); default: now.")
    events: list[HistoryEvent] | None = Field(
        None, description="An inline history to score instead of the stored one.")
    attributes: dict[str, str | None] | None = Field(
        None, description="Customer attributes for an inline history (default: stored ones).")


class BatchIn(Strict):
    customer_ids: list[CleanId] = Field(
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
    loaded_at: float | None
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


class RecommendIn(Strict):
    customer_id: CleanId | None = None
    customer_ids: list[CleanId] | None = Field(None, min_length=1, description="A batch instead.")
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
