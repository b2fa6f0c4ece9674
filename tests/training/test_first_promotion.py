"""The first promotion's floor: with no champion, a challenger must still beat the trivial
predictor on its holdout (binary: ROC-AUC above 0.5 and a log loss below giving everyone the
training base rate; next stage: below the training class shares). On the real Shapees log a
baseline with test AUC 0.4738 became champion and was served.

The unit tests give the gate's holdout its labels and the challenger's scores directly; the
last test trains, on the shared world, a LightGBM that cannot split next to the baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import numpy as np
import pandas as pd
import pytest

from models.targets import target
from tests.training.world import FAST_LGBM, SMALL, World, experiment, source, write_spec
from training.dataset import load_dataset
from training.promote import _Holdout, promote_all
from training.tracking import KIND_TAG, PROMOTION_EXPERIMENT, Tracking
from training.train import CHALLENGER, CHAMPION, TRAIN_RATES_TAG, Context, train_experiment

STAGES = ("awareness", "purchase")
Y = np.array([0, 0, 0, 1], dtype=np.int64)
# Giving everyone the training base rate 0.25 on Y.
BASE_LOSS = -(3 * math.log(0.75) + math.log(0.25)) / 4


def _holdout(name: str, y: np.ndarray, scores: dict[str, float]) -> _Holdout:
    h = _Holdout(target(name, STAGES), cast(Any, None), cast(Any, None), {})
    h._rows = (pd.DataFrame(index=range(len(y))), y)
    h._scores = {("7", k): v for k, v in scores.items()}
    return h


def _version(rates: dict[str, float] | None) -> Any:
    tags = {} if rates is None else {TRAIN_RATES_TAG: json.dumps(rates)}
    return SimpleNamespace(version="7", tags=tags)


def test_a_challenger_below_chance_is_refused_with_both_reasons() -> None:
    h = _holdout("churn", Y, {"roc_auc": 0.4738, "log_loss": 0.7})
    said = h.below_trivial(_version({"0": 0.75, "1": 0.25}))
    assert said == ("predicting the training base rate (0.2500) for everyone: roc_auc 0.4738 "
                    f"is not above 0.5; log_loss 0.7000 is not below its {BASE_LOSS:.4f}")
    assert h.figures["trivial_log_loss"] == pytest.approx(BASE_LOSS)
    assert h.figures["trivial_base_rate"] == 0.25 and h.figures["challenger_roc_auc"] == 0.4738


def test_a_ranking_model_worse_than_the_base_rate_is_refused() -> None:
    """Ranks above chance, but its probabilities lose to one number for everyone."""
    h = _holdout("conversion", Y, {"roc_auc": 0.8, "log_loss": BASE_LOSS + 0.01})
    said = h.below_trivial(_version({"0": 0.75, "1": 0.25}))
    assert said.endswith(f"for everyone: log_loss {BASE_LOSS + 0.01:.4f} is not below its "
                         f"{BASE_LOSS:.4f}")
    assert "roc_auc" not in said


def test_a_model_above_the_floor_passes() -> None:
    h = _holdout("churn", Y, {"roc_auc": 0.8, "log_loss": BASE_LOSS - 0.05})
    assert h.below_trivial(_version({"0": 0.75, "1": 0.25})) == ""
    assert h.figures["challenger_log_loss"] < h.figures["trivial_log_loss"]


def test_without_recorded_rates_the_holdout_base_rate_is_the_bar() -> None:
    """Versions trained before the rates were tagged: the holdout's own rate (here 0.5, whose
    log loss is ln 2), said as such."""
    y = np.array([0, 1, 0, 1], dtype=np.int64)
    h = _holdout("churn", y, {"roc_auc": 0.6, "log_loss": 0.7})
    said = h.below_trivial(_version(None))
    assert said.startswith("predicting the holdout's base rate (0.5000) for everyone: "
                           f"log_loss 0.7000 is not below its {math.log(2):.4f}")


def test_next_stage_is_held_to_the_class_shares() -> None:
    y = np.array([0, 1, 2, 2], dtype=np.int64)  # awareness, purchase, inactive
    shares = {"awareness": 0.25, "purchase": 0.25, "inactive": 0.5}
    prior_loss = -(2 * math.log(0.25) + 2 * math.log(0.5)) / 4
    worse = _holdout("next_stage", y, {"log_loss": prior_loss + 0.1, "macro_auc": 0.9})
    assert worse.below_trivial(_version(shares)) == (
        "predicting the training class shares for everyone: log_loss "
        f"{prior_loss + 0.1:.4f} is not below its {prior_loss:.4f}")
    better = _holdout("next_stage", y, {"log_loss": prior_loss - 0.1, "macro_auc": 0.9})
    assert better.below_trivial(_version(shares)) == ""


NO_SPLIT = {
    **SMALL,
    "name": "no-split",
    "targets": ["churn"],
    "models": [{"family": "baseline", "features": ["rfm"], "params": {"C": 1.0}},
               {"family": "lightgbm", "params": {**FAST_LGBM, "min_data_in_leaf": 1_000_000}}],
}


@pytest.mark.slow
def test_a_model_that_cannot_split_is_flagged_and_the_floor_holds(world: World,
                                                                   tmp_path: Path) -> None:
    exp = experiment(tmp_path / "spec", NO_SPLIT)
    src = source(world)
    try:
        ds = load_dataset(exp, src)
        tracking = Tracking.local(tmp_path / "home")
        log: list[str] = []
        warn: list[str] = []
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(tmp_path)
            baseline, lgbm = train_experiment(exp, ds, Context(
                tracking, world.spec, write_spec(tmp_path / "spec", NO_SPLIT), log.append,
                warn=warn.append))
        rows = len(ds.train)
        assert lgbm.degenerate == ("the booster made no split (min_data_in_leaf 1000000 with "
                                   f"{rows:,} training rows): every customer gets the same "
                                   "score")
        assert warn == [f"warning: journey-churn lightgbm: {lgbm.degenerate}; registered as "
                        "v2 (tagged journey.degenerate) but not made the challenger"]
        assert lgbm.test["roc_auc"] == 0.5 and not baseline.degenerate
        client = tracking.client()
        assert client.get_run(lgbm.run_id).data.tags["journey.degenerate"] == "true"
        assert client.get_model_version("journey-churn", "2").tags["journey.degenerate"] == "true"
        assert "journey.degenerate" not in client.get_run(baseline.run_id).data.tags
        assert "  journey-churn v1 (baseline) is the challenger" in log

        # Made challenger by hand, it still cannot be the first champion: AUC 0.5 is chance.
        client.set_registered_model_alias("journey-churn", CHALLENGER, "2")
        [kept] = promote_all(["churn"], tracking, src, margin=0.001)
        assert not kept.promoted and kept.challenger_score == 0.5
        assert kept.reason.startswith("no champion yet; challenger v2 does not beat predicting "
                                      "the training base rate (")
        assert "roc_auc 0.5000 is not above 0.5" in kept.reason
        assert kept.reason.endswith("on 2025-10-01 +30d")
        assert client.get_registered_model("journey-churn").aliases.get(CHAMPION) is None
        [forced] = promote_all(["churn"], tracking, src, margin=0.001, force=True)
        assert forced.promoted and forced.reason == kept.reason + "; promoted by --force"

        # The baseline is far above chance: promoted as before, the bar logged beside it.
        client.delete_registered_model_alias("journey-churn", CHAMPION)
        client.set_registered_model_alias("journey-churn", CHALLENGER, "1")
        [first] = promote_all(["churn"], tracking, src, margin=0.001)
        assert first.promoted
        assert first.reason == "no champion yet: the challenger becomes champion"
    finally:
        src.close()
    promotions = client.get_experiment_by_name(PROMOTION_EXPERIMENT)
    assert promotions is not None
    runs = client.search_runs([promotions.experiment_id],
                              order_by=["attributes.start_time ASC"])
    assert [r.data.tags["journey.decision"] for r in runs] == ["kept", "promoted", "promoted"]
    assert all(r.data.tags[KIND_TAG] == "promotion" for r in runs)
    assert runs[0].data.tags["journey.reason"] == kept.reason
    metrics = runs[2].data.metrics
    assert metrics["challenger_log_loss"] < metrics["trivial_log_loss"]
    assert metrics["challenger_roc_auc"] > 0.5
    rate = json.loads(client.get_model_version("journey-churn", "1").tags[TRAIN_RATES_TAG])["1"]
    assert metrics["trivial_base_rate"] == pytest.approx(rate)
