"""Request and response models of the marketer's routes (segments, journey map, dashboard)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from serving.schema_fields import AsOfTime
from serving.utc import utc_text

# A snapshot's as-of as every answer gives it: in UTC with Z, though older snapshots kept the
# offset of the clock they were scored by (a dashboard reading "-05:00" named another day).
AsOfText = Annotated[str, AfterValidator(utc_text)]


def _map_as_of(journey_map: dict[str, Any] | None) -> dict[str, Any] | None:
    """The journey map's own as_of (models.journey_map writes it +00:00) said as the
    snapshot's is."""
    if journey_map is not None and isinstance(journey_map.get("as_of"), str):
        return {**journey_map, "as_of": utc_text(journey_map["as_of"])}
    return journey_map


JourneyMap = Annotated[dict[str, Any] | None, AfterValidator(_map_as_of)]


class SnapshotOut(BaseModel):
    id: str
    as_of: AsOfText = Field(description="The time scored as of, in UTC.")
    scored_at: str
    customers: int
    previous: str | None = Field(description="The snapshot changes are measured against.")
    previous_as_of: AsOfText | None = Field(None, description="The time that one was scored "
                                            "as of.")
    models: dict[str, str]
    risk_bands: list[float]
    dimensions: list[str]
    actions: bool = Field(description="Whether top actions were scored.")


def _none_if_nan(v: float | None) -> float | None:
    """The segment book's NaN mean (no customers) as JSON null."""
    return None if v is None or math.isnan(v) else v


class ChangeOut(BaseModel):
    customers: int
    mean_risk: float | None = Field(description="None when either snapshot has no customers "
                                    "in the segment.")
    revenue_at_risk: float | None = Field(description="None when either snapshot knows no "
                                          "value (no conversion carried one).")

    _none = field_validator("mean_risk", "revenue_at_risk")(_none_if_nan)


class SegmentOut(BaseModel):
    key: dict[str, str] = Field(description="The segment's value of each `by` dimension.")
    customers: int
    share: float = Field(description="Of the customers matching the filters.")
    mean_risk: float | None = Field(description="Mean calibrated churn probability (None: no "
                                    "customers).")
    expected_value: float | None = Field(description="Summed over the segment's customers "
                                         "(None: no conversion in the store carries a value).")
    revenue_at_risk: float | None = Field(description="Sum of expected value x churn "
                                          "probability (None as expected_value).")
    top_action: str | None = Field(description="The most recommended next-best-action.")
    top_action_share: float
    change: ChangeOut | None = Field(description="Since the previous snapshot.")

    _none = field_validator("mean_risk", "expected_value", "revenue_at_risk")(_none_if_nan)


class SegmentsOut(BaseModel):
    snapshot: SnapshotOut
    by: list[str]
    filters: dict[str, list[str]]
    segments: list[SegmentOut]
    total: SegmentOut


class CustomerScoreOut(BaseModel):
    model_config = ConfigDict(extra="allow")  # customer attributes are columns of their own
    customer_id: str
    stage: str | None
    tier: str
    churn: float
    conversion: float
    next_stage: str
    next_stage_probability: float
    expected_value: float | None  # None: no conversion in the store carries a value
    revenue_at_risk: float | None
    recency_days: float | None
    events: int
    top_action: str | None
    top_action_value: float | None


class CustomersOut(BaseModel):
    snapshot: SnapshotOut
    filters: dict[str, list[str]]
    sort: str
    total: int = Field(description="Customers matching the filters.")
    offset: int
    limit: int
    customers: list[CustomerScoreOut]


class JourneyMapOut(BaseModel):
    snapshot: SnapshotOut
    journey_map: JourneyMap = Field(
        description="Funnel, flows, KPIs and touchpoint attribution as of the snapshot.")


class DashboardOut(BaseModel):
    snapshot: SnapshotOut
    dimensions: dict[str, list[str]] = Field(description="Each dimension's values that some "
                                             "customer has.")
    tiers: list[SegmentOut]
    stage_tiers: list[SegmentOut]
    journey_map: JourneyMap


class ScoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    as_of: AsOfTime | None = Field(None, description="Default: the service's clock (a date "
                                   "alone is its midnight UTC).")


class ScoreOut(BaseModel):
    snapshot: SnapshotOut
    seconds: float


class RateOut(BaseModel):
    value: float | None
    count: int
    of: int
    ci95: list[float] | None = Field(description="Wilson 95 % interval (None when of = 0).")


class ClvOut(BaseModel):
    value: float | None = Field(description="What an active buyer is expected to spend over "
                                "the rest of their lifetime: revenue per active buyer-year x "
                                "an active buyer's expected lifetime.")
    annual_revenue_per_customer: float | None = Field(
        description="Revenue per active buyer-year: the period's revenue over the time its "
                    "buyers were active (as the retention rate counts them).")
    expected_lifetime_years: float | None


class CsatOut(BaseModel):
    mean: float | None
    mean_ci95: list[float] | None = Field(description="Normal approximation, 95 %.")
    count: int = Field(description="Scored support tickets.")
    satisfied: RateOut


class NpsOut(BaseModel):
    score: float | None = Field(description="100 x (promoters - detractors) / answers.")
    ci95: list[float] | None = Field(description="Normal approximation, 95 %.")
    count: int = Field(description="Customers with an answer (their latest counts).")
    promoters: int
    passives: int
    detractors: int


class StageKpiOut(BaseModel):
    stage: str
    reached: int = Field(description="Customers reaching this stage or a later one.")
    conversion_from_previous: RateOut | None


class KpiGroupOut(BaseModel):
    group: str = Field(description="The group's value; a persona under its current name.")
    id: int | None = Field(None, description="Persona groups: the persona's id (-1: the "
                           "unassigned customers), which a rename does not change.")
    partial: bool | None = Field(None, description="Months only: the month is not over.")
    customers: int
    conversion_rate: RateOut
    retention_rate: RateOut
    repeat_purchase_rate: RateOut
    clv: ClvOut
    csat: CsatOut | None = Field(description="None when no score is named csat.")
    nps: NpsOut | None = Field(description="None when no score is named nps.")
    funnel: list[StageKpiOut]


class KpisOut(BaseModel):
    snapshot: SnapshotOut
    by: str
    available: list[str] = Field(description="What else the snapshot's KPIs are grouped by.")
    definitions: dict[str, str]
    params: dict[str, Any]
    overall: KpiGroupOut
    groups: list[KpiGroupOut]


class PersonaFeatureOut(BaseModel):
    feature: str
    value: float | None = Field(description="The persona's mean (winsorised).")
    average: float | None = Field(description="The population's mean.")
    z: float | None = Field(description="Distance from the average in population SDs.")


class TypicalStageOut(BaseModel):
    stage: str
    share: float


class ChannelShareOut(BaseModel):
    channel: str
    share: float


class PersonaOut(BaseModel):
    id: int
    name: str = Field(description="The marketer's name (journey personas --rename), else the "
                      "model's.")
    customers: int = Field(description="Customers in the persona when it was fitted.")
    share: float | None
    summary: list[str] = Field(description="The description in plain words, one line each.")
    traits: list[str]
    top_features: list[PersonaFeatureOut]
    typical_stage: TypicalStageOut | None
    channels: list[ChannelShareOut]
    revenue_mean: float | None = Field(description="Revenue in the window, mean per customer "
                                       "(at fitting time).")
    churn_mean: float | None = Field(description="Mean churn probability, from the newest "
                                     "score snapshot when it was scored with this persona "
                                     "model (matched by id: a rename keeps it; else at fitting "
                                     "time, usually None).")
    expected_value_mean: float | None = Field(description="Expected value, mean per customer; "
                                              "from the newest snapshot like churn_mean.")


class PersonasOut(BaseModel):
    version: str = Field(description="Version of the served journey-personas model.")
    k: int
    criterion: dict[str, Any] = Field(description="How the number of personas was chosen.")
    customers: int
    assigned: int = Field(description="Customers with enough recent events to be assigned.")
    window_days: int
    min_events: int
    unassigned_name: str
    scores_as_of: AsOfText | None = Field(
        None, description="As-of time (UTC) of the score snapshot the churn and expected value "
        "means come from (None: none scored by this persona model).")
    personas: list[PersonaOut]
