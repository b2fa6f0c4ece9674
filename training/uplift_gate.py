"""The champion/challenger gate for uplift models (`journey promote --target uplift-convert`).

As for the predictive models: both are scored on the same rows, the challenger's test window
of decisions (rebuilt from the store with the window, horizon, control rate and seed its run
recorded), on the mean inverse-propensity weighted Qini coefficient over actions; `champion`
moves only when the challenger wins by more than the margin.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from features.decisions import DecisionWindow, decision_frame
from features.errors import ConfigError
from features.history import HistoryIndex
from features.spec import FeatureSpec
from features.store import EventStore
from models.registry import alias_version, load_native
from models.uplift_model import JourneyUplift, registered_name
from training.dataset import midnight
from training.promote import Decision, check_margin, gate, log_decision
from training.tracking import Tracking
from training.train import CHALLENGER
from training.uplift import qini_scores

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

UPLIFT_TARGETS = ("uplift-convert", "uplift-churn")
METRIC = "qini_mean"


def _holdout(store_path: Path, spec: FeatureSpec, tags: dict[str, str]) -> pd.DataFrame:
    start, end = (date.fromisoformat(d) for d in tags["journey.test_window"].split(".."))
    window = DecisionWindow(midnight(start), midnight(end), float(tags["journey.control_rate"]),
                            int(tags["journey.seed"]) + 2)  # the test window's seed in training
    with EventStore(store_path, read_only=True) as store:
        index = HistoryIndex.load(store, spec)
        return decision_frame(store, index, spec, window, int(tags["journey.horizon_days"]))


def decide_uplift(name: str, client: MlflowClient, store_path: Path, spec: FeatureSpec,
                  margin: float, force: bool = False) -> Decision:
    check_margin(margin)
    outcome = name.removeprefix("uplift-")
    registered = registered_name(outcome)
    ch = alias_version(client, registered, CHALLENGER)
    if ch is None:
        return Decision(name, False, "no challenger: run `journey uplift` first")
    tags = dict(ch.tags)
    if tags.get("journey.definition_hash") != spec.hash:
        raise ConfigError(f"{registered} v{ch.version} was trained on feature definition "
                          f"{tags.get('journey.definition_hash')}; the current spec is "
                          f"{spec.hash}")
    d = Decision(name, False, "", METRIC, margin, str(ch.version),
                 holdout=f"decisions {tags['journey.test_window']} "
                         f"+{tags['journey.horizon_days']}d")
    frame: pd.DataFrame | None = None

    def score(version: ModelVersion) -> float:
        nonlocal frame
        if frame is None:  # rebuilt once, only when a score is needed
            frame = _holdout(store_path, spec, tags)
        model = load_native(version, JourneyUplift)
        assert isinstance(model, JourneyUplift)
        return qini_scores(model, frame)[METRIC]

    return gate(client, registered, d, ch, force, score, lambda a, b: a > b + margin)


def promote_uplift(names: list[str], tracking: Tracking, store_path: Path, spec: FeatureSpec,
                   margin: float, force: bool = False, only_trained: bool = False
                   ) -> list[Decision]:
    """Gate each named uplift model (``only_trained``: skip those never trained, for a
    default `journey promote` in a project that does not use uplift)."""
    client = tracking.client()
    decisions = []
    for name in names:
        registered = registered_name(name.removeprefix("uplift-"))
        if only_trained and alias_version(client, registered, CHALLENGER) is None:
            continue
        d = decide_uplift(name, client, store_path, spec, margin, force)
        log_decision(tracking, client, d)
        decisions.append(d)
    return decisions
