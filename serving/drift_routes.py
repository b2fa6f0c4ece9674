"""The drift route (marketer role, read-only): the live window against the champions'
training profiles, per feature and score, with the thresholds it was judged by."""

from __future__ import annotations

from typing import Literal

import anyio
from pydantic import BaseModel, Field

from serving.deps import Watcher
from serving.http import FastJSON
from serving.route_table import RouteTable


class DriftRowOut(BaseModel):
    name: str
    kind: Literal["feature", "score"]
    psi: float | None = Field(description="Population stability index (None: empty window).")
    test: Literal["ks", "chi2"]
    statistic: float | None
    p_value: float | None
    status: Literal["ok", "warn", "alarm", "too_few"]
    n: int
    bins: list[str] = Field(description="The reference's bins, missing values last.")
    reference: list[float] = Field(description="Share of the training profile in each bin.")
    live: list[float] = Field(description="Share of the live window in each bin.")


class DriftSettingsOut(BaseModel):
    bins: int
    max_levels: int
    sample_size: int
    max_rows: int
    psi_warn: float
    psi_alarm: float
    p_value: float
    min_samples: int
    exclude: list[str]


class DriftReportOut(BaseModel):
    rows: list[DriftRowOut]
    alarm: bool
    window_size: int
    start: str | None = Field(description="When the window's oldest row was scored.")
    end: str | None
    reference_size: int
    settings: DriftSettingsOut
    missing_columns: list[str]


class DriftOut(BaseModel):
    available: bool
    reason: str | None = Field(description="Why drift is unavailable (no profile, no models).")
    evaluated_at: str
    versions: dict[str, str] = Field(description="Model versions whose training profiles are "
                                     "the reference.")
    without_profile: list[str] = Field(description="Served models trained before drift "
                                       "profiles existed (not in the reference).")
    report: DriftReportOut | None


api = RouteTable()


@api.get("/drift", tags=["monitoring"], response_model=DriftOut)
async def drift(state: Watcher) -> FastJSON:
    """Population stability index and a distribution test (KS or chi-square) per feature
    and score, live window vs the served champions' training profiles, with each column's
    status (ok, warn, alarm, too_few) and the thresholds. Evaluated now when the last
    evaluation is older than ``drift_eval_seconds``."""
    status = await anyio.to_thread.run_sync(state.drift_status)
    return FastJSON(status.to_dict())
