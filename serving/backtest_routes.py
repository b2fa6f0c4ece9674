"""The live backtest route (marketer role): realized metrics of past predictions per model
version and prediction time, read from what `journey backtest` stored (the service computes
nothing here: the labels need the event store, which the command line reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Query
from pydantic import BaseModel, Field

from features.errors import ConfigError
from models.backtest import SCORED_COLUMNS, load_results
from serving.deps import Watcher
from serving.errors import BadRequestError, ServiceError
from serving.route_table import RouteTable


class ReliabilityBinOut(BaseModel):
    bin: int = Field(description="Predicted-probability decile, 1 = lowest.")
    mean_predicted: float
    observed_rate: float
    n: int


class BacktestPointOut(BaseModel):
    target: str
    model_version: str
    as_of: str = Field(description="When the predictions were made.")
    horizon_days: int
    label: str
    snapshot: str = Field(description="The score snapshot the predictions come from.")
    evaluated_at: str
    metrics: dict[str, float | None] = Field(
        description="roc_auc, log_loss, brier, ece, base_rate, mean_predicted, n.")
    reliability: list[ReliabilityBinOut]


class BacktestOut(BaseModel):
    results: list[BacktestPointOut] = Field(description="By target, then prediction time.")


def read_points(folder: Path, target: str | None, version: str | None) -> list[dict[str, Any]]:
    try:
        results = load_results(folder)
    except ConfigError as exc:
        raise ServiceError(str(exc)) from exc
    return [r for r in results
            if (target is None or r["target"] == target)
            and (version is None or str(r["model_version"]) == version)]


api = RouteTable()


@api.get("/backtest", tags=["segments"], response_model=BacktestOut)
async def backtest(
    state: Watcher,
    target: Annotated[str | None, Query(description="churn or conversion.")] = None,
    version: Annotated[str | None, Query(description="One model version.")] = None,
) -> dict[str, Any]:
    """How past predictions fared once their horizon closed: realized AUC, log loss,
    Brier, calibration error and the decile reliability table, per model version and
    prediction time (empty until `journey backtest` has scored a closed horizon)."""
    if target is not None and target not in SCORED_COLUMNS:
        raise BadRequestError(f"target must be one of {sorted(SCORED_COLUMNS)}, "
                              f"not {target!r}", "target")
    points = await anyio.to_thread.run_sync(
        read_points, state.settings.backtests_path, target, version)
    return {"results": points}
