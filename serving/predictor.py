"""Scoring: feature vectors in, calibrated probabilities, risk tier and reason codes out.

One customer or a batch, the same path: the kernel's vectors (one pass for all customers) go
column by column into each model's matrix, LightGBM gives each row's leaves once, and both the
probabilities and the reason codes follow from them. The numbers are the offline model's
(tests/serving/test_parity.py).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from features.online import Vectors
from models.lgbm import LightGBMClassifier
from models.reasons import Reason, top_reasons
from models.survival import LightGBMSurvival, curve_at, median_from, restricted_mean
from serving.champions import ModelSet, ServedSurvival

TIERS = ("low", "medium", "high")


@dataclass(frozen=True)
class Scored:
    customer_id: str
    as_of: datetime
    current_stage: str | None
    next_stage: dict[str, float]
    churn: float
    conversion: float
    risk_tier: str
    reasons: dict[str, list[Reason]]
    events: int  # events in the history scored (before as_of)
    # expected_days, median_days, survival by day, horizon_days; None without a survival model
    time_to_churn: dict[str, Any] | None = None


def risk_tier(churn: float, bands: tuple[float, float]) -> str:
    """low below the first band edge, high from the second (an edge belongs to the tier above)."""
    return TIERS[bisect.bisect_right(bands, churn)]


class Predictor:
    def __init__(self, stages: Sequence[str], reasons: int, bands: tuple[float, float],
                 survival_days: Sequence[int] = (7, 30, 90)) -> None:
        self.stages = tuple(stages)
        self.k = reasons
        self.bands = bands
        self.survival_days = tuple(survival_days)

    def time_to_churn(self, served: ServedSurvival, vectors: Vectors) -> list[dict[str, Any]]:
        """Each customer's survival outlook: one LightGBM call for all their intervals."""
        model = served.model
        status: list[str | None] = [None] * len(vectors)
        if isinstance(model, LightGBMSurvival):
            matrix = model.vectors_matrix(vectors)
            edge = model.edge_survival_matrix(matrix)
            if model.recency_index_ is not None:
                recency = matrix[:, model.recency_index_]
                status = np.where(np.isnan(recency), "no_activity", np.where(
                    recency >= model.churn_gap_days, "churned", "active")).tolist()
        else:  # a Kaplan-Meier champion: one curve for everyone, no features read
            edge = model.edge_survival(pd.DataFrame(index=range(len(vectors))))
        edges = model.edges_
        days = [d for d in self.survival_days if d <= edges[-1]]
        curves = curve_at(edge, edges, days).tolist()
        expected = restricted_mean(edge, edges).tolist()
        median = median_from(edge, edges).tolist()
        return [{"expected_days": expected[i],
                 "median_days": median[i] if np.isfinite(median[i]) else None,
                 "survival": {str(d): curves[i][j] for j, d in enumerate(days)},
                 "horizon_days": int(edges[-1]), "status": status[i]}
                for i in range(len(vectors))]

    def _stage(self, code: object) -> str | None:
        """``stage_current`` is the stage's index in the taxonomy (missing: no stage yet)."""
        if _missing(code):
            return None
        i = int(float(code))  # type: ignore[arg-type]
        return self.stages[i] if 0 <= i < len(self.stages) else None

    def score(self, models: ModelSet, vectors: Vectors, as_of: datetime,
              explain: bool = True) -> list[Scored]:
        """Probabilities for every customer of ``vectors``; reason codes when ``explain``."""
        n = len(vectors)
        proba: dict[str, npt.NDArray[np.float64]] = {}
        reasons: dict[str, list[list[Reason]]] = {}
        for name, served in models.models.items():
            model = served.loaded.model
            if isinstance(model, LightGBMClassifier):
                matrix = model.vectors_matrix(vectors)  # encoded once per input signature
                leaves = model.leaves(matrix)
                p = model.proba_from_leaves(leaves)
                cls = np.argmax(p, axis=1) if model.multiclass else None
                reasons[name] = (top_reasons(model, vectors, self.stages, self.k, cls, matrix,
                                             leaves=leaves) if explain
                                 else [[] for _ in range(n)])
            else:  # a baseline champion: probabilities, no tree contributions to explain
                p = model.predict_proba(vectors.frame())
                reasons[name] = [[] for _ in range(n)]
            proba[name] = p
        classes = models.models["next_stage"].target.classes
        churns = proba["churn"][:, 1].tolist()
        conversions = proba["conversion"][:, 1].tolist()
        stages = proba["next_stage"].tolist()
        counts = vectors.events if vectors.events is not None else [0] * n
        outlook = (self.time_to_churn(models.survival, vectors) if models.survival is not None
                   else [None] * n)
        out = []
        for i in range(n):
            churn = churns[i]
            out.append(Scored(
                customer_id=vectors.matrix.customer_ids[i],
                as_of=as_of,
                current_stage=self._stage(vectors.value(i, "stage_current")[1]),
                next_stage=dict(zip(classes, stages[i], strict=True)),
                churn=churn,
                conversion=conversions[i],
                risk_tier=risk_tier(churn, self.bands),
                reasons={name: r[i] for name, r in reasons.items()},
                events=int(counts[i]),
                time_to_churn=outlook[i],
            ))
        return out


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA
