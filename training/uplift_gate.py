"""The champion/challenger gate for uplift models (`journey promote --target uplift-convert`).

As for the predictive models: both are scored on the same rows, the challenger's test window
of decisions (rebuilt from the store with the window, horizon, control rate and seed its run
recorded), on the mean inverse-propensity weighted Qini coefficient over actions; `champion`
moves only when the challenger wins by more than the margin.

Qini judges the ranking; what a marketer gets is the policy. So the value of targeting by each
model is also estimated off-policy (doubly robust, ``training.uplift_ope``) on the same rows,
and a challenger whose policy does significantly worse (95 %) than the champion's, or than the
logging policy's when there is no champion yet, is held back even when its Qini wins. The
figures go into the decision's reason and the promotion run's metrics.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from features.decisions import DecisionWindow, decision_frame
from features.history import HistoryIndex
from features.memory_errors import memory_errors
from features.spec import FeatureSpec
from features.store import EventStore
from models.registry import alias_version, load_native
from models.uplift_model import JourneyUplift, registered_name
from training.champions import promotion
from training.dataset import midnight
from training.promote import (
    Decision,
    Judge,
    check_margin,
    gate,
    log_decision,
    other_definition,
)
from training.tracking import Tracking
from training.train import CHALLENGER
from training.uplift import qini_scores
from training.uplift_ope import describe, paired, policy_value, significantly_below

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

UPLIFT_TARGETS = ("uplift-convert", "uplift-churn")
METRIC = "qini_mean"


def _holdout(store_path: Path, spec: FeatureSpec, tags: dict[str, str],
             memory_limit: str | None) -> pd.DataFrame:
    start, end = (date.fromisoformat(d) for d in tags["journey.test_window"].split(".."))
    window = DecisionWindow(midnight(start), midnight(end), float(tags["journey.control_rate"]),
                            int(tags["journey.seed"]) + 2)  # the test window's seed in training
    with memory_errors(f"rebuilding the uplift test window {tags['journey.test_window']} from "
                       f"{store_path}", memory_limit), \
            EventStore(store_path, read_only=True, memory_limit=memory_limit) as store:
        index = HistoryIndex.load(store, spec)
        return decision_frame(store, index, spec, window, int(tags["journey.horizon_days"]))


def decide_uplift(name: str, client: MlflowClient, store_path: Path, spec: FeatureSpec,
                  margin: float, force: bool = False, memory_limit: str | None = None
                  ) -> Decision:
    check_margin(margin)
    outcome = name.removeprefix("uplift-")
    registered = registered_name(outcome)
    ch = alias_version(client, registered, CHALLENGER)
    if ch is None:
        return Decision(name, False, "no challenger: run `journey uplift` first", margin=margin)
    tags = dict(ch.tags)
    other = other_definition(registered, ch, spec.hash)
    if other:  # kept, and the other targets are still decided
        return Decision(name, False, other, margin=margin, challenger_version=str(ch.version))
    d = Decision(name, False, "", METRIC, margin, str(ch.version),
                 holdout=f"decisions {tags['journey.test_window']} "
                         f"+{tags['journey.horizon_days']}d")
    holdout = _Holdout(store_path, spec, tags, memory_limit)
    d = gate(client, registered, d, ch, force,
             lambda v: qini_scores(holdout.model(v), holdout.frame())[METRIC],
             lambda a, b: a > b + margin, holdout.judge(ch))
    return replace(d, figures=holdout.figures)


class _Holdout:
    """The challenger's test window, rebuilt once and only when a score needs it, with the
    models judged on it and the off-policy figures the judge measured."""

    def __init__(self, store_path: Path, spec: FeatureSpec, tags: dict[str, str],
                 memory_limit: str | None) -> None:
        self.store_path, self.spec, self.tags = store_path, spec, tags
        self.memory_limit = memory_limit
        self.figures: dict[str, float] = {}
        self._frame: pd.DataFrame | None = None
        self._models: dict[str, JourneyUplift] = {}

    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = _holdout(self.store_path, self.spec, self.tags, self.memory_limit)
        return self._frame

    def model(self, version: ModelVersion) -> JourneyUplift:
        key = str(version.version)
        if key not in self._models:
            model = load_native(version, JourneyUplift)
            assert isinstance(model, JourneyUplift)
            self._models[key] = model
        return self._models[key]

    def judge(self, ch: ModelVersion) -> Judge:
        """Hold back a challenger whose targeting is estimated off-policy to do significantly
        worse than the champion's (or, with no champion, than the logging policy's)."""
        rate = float(self.tags["journey.control_rate"])

        def judge(champ: ModelVersion | None) -> tuple[bool, str]:
            mine = policy_value(self.model(ch), self.frame(), rate)
            self.figures.update(mine.metrics("challenger_"))
            said = describe(mine, str(ch.version))
            if champ is None:
                ok = not significantly_below(mine.lift)
                return ok, said + ("" if ok else "; significantly worse than the logged policy")
            theirs = policy_value(self.model(champ), self.frame(), rate)
            self.figures.update(theirs.metrics("champion_"))
            gap = paired(mine, theirs)
            self.figures.update(dr_vs_champion=gap.value, dr_vs_champion_se=gap.se)
            lo, hi = gap.interval()
            ok = not significantly_below(gap)
            return ok, (f"{said}; vs champion v{champ.version}'s targeting {gap.value:+.2%} "
                        f"(95 % CI {lo:+.2%} .. {hi:+.2%})"
                        + ("" if ok else ", significantly worse"))

        return judge


def promote_uplift(names: list[str], tracking: Tracking, store_path: Path, spec: FeatureSpec,
                   margin: float, force: bool = False, only_trained: bool = False,
                   memory_limit: str | None = None) -> list[Decision]:
    """Gate each named uplift model (``only_trained``: skip those never trained, for a
    default `journey promote` in a project that does not use uplift; ``memory_limit``: what
    DuckDB may hold rebuilding a test window, JOURNEY_STORE_MEMORY)."""
    client = tracking.client()
    decisions = []
    # Under the registry's lock, champions moved together at the end (training/champions.py);
    # inside `journey promote`'s own promotion, with the other targets'.
    with promotion(tracking.tracking_uri):
        for name in names:
            registered = registered_name(name.removeprefix("uplift-"))
            if only_trained and alias_version(client, registered, CHALLENGER) is None:
                continue
            d = decide_uplift(name, client, store_path, spec, margin, force, memory_limit)
            log_decision(tracking, client, d)
            decisions.append(d)
    return decisions
