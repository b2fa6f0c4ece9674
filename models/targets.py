"""What each model predicts: the label column it learns from and the shape of its output.

- next_stage: multiclass over the taxonomy's stages plus ``inactive`` (the furthest stage the
  customer's events reach in [T, T+H));
- churn: binary; by default ``churned_inactive`` (no customer event in [T, T+H)); the
  ``churned_no_purchase`` definition only labels customers who bought before T, so the others
  are left out of that model's rows;
- conversion: binary purchase within [T, T+H);
- time_to_churn: survival (``churn_days`` right-censored at its own horizon, ``churn_observed``
  the event flag); not among ``TARGETS``, which are the classifiers every service loads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd  # only labels' type: the CLI's help lists TARGETS without pandas

INACTIVE = "inactive"
TARGETS = ("next_stage", "churn", "conversion")
SURVIVAL = "time_to_churn"
ALL_TARGETS = (*TARGETS, SURVIVAL)
CHURN_LABELS = ("churned_inactive", "churned_no_purchase")
# The holdout metric that ranks models and decides promotions, per target.
PRIMARY_METRIC = {"next_stage": "log_loss", "churn": "roc_auc", "conversion": "roc_auc",
                  SURVIVAL: "c_index"}


@dataclass(frozen=True)
class Target:
    name: str
    label: str  # column of the labels snapshot
    kind: Literal["binary", "multiclass", "survival"]
    classes: tuple[str, ...]  # multiclass: in probability-column order; binary: ("0", "1")

    @property
    def registered_name(self) -> str:
        """The model's name in the MLflow registry."""
        return "journey-" + self.name.replace("_", "-")

    @property
    def primary_metric(self) -> str:
        """The holdout metric that ranks models and decides promotions."""
        return PRIMARY_METRIC[self.name]

    @property
    def higher_is_better(self) -> bool:
        return self.primary_metric != "log_loss"

    def encode(self, labels: pd.DataFrame) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
        """Integer labels (class index, or 0/1) and the mask of rows that have a label."""
        if self.kind == "survival":
            raise ValueError(f"{self.name} has durations, not classes: see training.survival")
        if self.label not in labels.columns:
            raise ValueError(f"labels have no column {self.label!r} (target {self.name})")
        col = labels[self.label]
        known = col.notna().to_numpy()
        if self.kind == "binary":
            return col.fillna(False).astype(bool).to_numpy().astype(np.int64), known
        index = {c: i for i, c in enumerate(self.classes)}
        unknown = set(col.dropna().unique()) - set(index)
        if unknown:
            raise ValueError(f"{self.label}: values {sorted(unknown)} are not among {self.classes}")
        return col.map(index).fillna(-1).to_numpy().astype(np.int64), known


def target(
    name: str, stages: Sequence[str], churn_label: str = "churned_inactive"
) -> Target:
    if name == "next_stage":
        return Target(name, "next_stage", "multiclass", (*stages, INACTIVE))
    if name == "churn":
        if churn_label not in CHURN_LABELS:
            raise ValueError(f"churn label must be one of {CHURN_LABELS}, not {churn_label!r}")
        return Target(name, churn_label, "binary", ("0", "1"))
    if name == "conversion":
        return Target(name, "converted", "binary", ("0", "1"))
    if name == SURVIVAL:
        return Target(name, "churn_days", "survival", ())
    raise ValueError(f"unknown target {name!r}; one of {ALL_TARGETS}")
