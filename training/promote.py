"""`journey promote`: the champion/challenger gate.

The challenger and the champion are scored on the same rows: the challenger's holdout (its
experiment's test cutoff and horizon, read from the feature and label snapshots). `champion`
moves only when the challenger beats it on the target's primary metric by more than the
margin; every decision, promoted or not, is logged to MLflow with its reason.

With no champion yet, the bar is the trivial predictor on the same rows: a binary challenger
needs a ROC-AUC above 0.5 and a log loss below that of giving everyone the training base rate
(the class shares for next stage; a time-to-churn model, a c-index above 0.5). Versions
trained before the rates were recorded are held to the holdout's own rates instead.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from features.errors import ConfigError
from models.registry import alias_version, load_version
from models.targets import SURVIVAL, Target, target
from training import evaluate
from training.champions import move_champion, promotion
from training.dataset import SnapshotSource, midnight
from training.registry_lock import Note, settled
from training.survival import holdout_score
from training.tracking import KIND_TAG, PROMOTION_EXPERIMENT, Tracking
from training.train import CHALLENGER, CHAMPION, TRAIN_RATES_TAG

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

# Tags that must agree for two models to be judged on one holdout (the feature definitions
# too, though a champion on others never reaches that check: ``_unservable``).
COMPARABLE = ("journey.definition_hash", "journey.label", "journey.horizon_days")


@dataclass(frozen=True)
class Decision:
    target: str
    promoted: bool
    reason: str
    metric: str = ""
    margin: float = 0.0
    challenger_version: str | None = None
    champion_version: str | None = None
    challenger_score: float | None = None
    champion_score: float | None = None
    holdout: str = ""
    figures: dict[str, float] = field(default_factory=dict)  # further figures, as metrics


class _Holdout:
    """The challenger's holdout, read once and only when a score needs it, with each version's
    metrics on it and the figures the first-promotion floor measured."""

    def __init__(self, t: Target, client: MlflowClient, source: SnapshotSource,
                 tags: dict[str, str]) -> None:
        self.t, self.client, self.source, self.tags = t, client, source, tags
        self.figures: dict[str, float] = {}
        self._rows: tuple[pd.DataFrame, np.ndarray] | None = None
        self._scores: dict[tuple[str, str], float] = {}

    def rows(self) -> tuple[pd.DataFrame, np.ndarray]:
        if self._rows is None:
            tags = self.tags
            frame = self.source.frame(midnight(date.fromisoformat(tags["journey.test_cutoff"])),
                                      int(tags["journey.horizon_days"]),
                                      int(tags["journey.churn_gap_days"]))
            y, known = self.t.encode(frame)
            self._rows = frame[known], y[known]
        return self._rows

    def score(self, version: ModelVersion, metric: str) -> float:
        key = (str(version.version), metric)
        if key in self._scores:
            return self._scores[key]
        if self.t.kind == "survival":
            self._scores[key] = holdout_score(version, self.source, self.tags, metric)
            return self._scores[key]
        x, y = self.rows()
        proba = load_version(self.client, version).model.predict_proba(x)
        for name, value in evaluate.metrics(self.t, y, proba).items():
            self._scores[(key[0], name)] = float(value)
        return self._scores[key]

    def judge(self, ch: ModelVersion, holdout: str) -> Judge:
        """With a champion, the champion is the bar; without, the trivial predictor."""
        def judge(champ: ModelVersion | None) -> tuple[bool, str]:
            if champ is not None:
                return True, ""
            failed = self.below_trivial(ch)
            return not failed, (f"challenger v{ch.version} does not beat {failed} on {holdout}"
                                if failed else "")
        return judge

    def below_trivial(self, ch: ModelVersion) -> str:
        """How the challenger fails to beat the trivial predictor ('' when it beats it)."""
        if self.t.kind == "survival":
            c = self.score(ch, "c_index")
            return "" if c > 0.5 else f"a constant prediction: c_index {c:.4f} is not above 0.5"
        rates, whose = self.prior(ch)
        y = self.rows()[1]
        trivial = evaluate.metrics(self.t, y, np.tile(rates, (len(y), 1)))["log_loss"]
        loss = self.score(ch, "log_loss")
        self.figures.update(trivial_log_loss=trivial, challenger_log_loss=loss)
        failed = [] if loss < trivial else [f"log_loss {loss:.4f} is not below its {trivial:.4f}"]
        if self.t.kind == "binary":
            auc = self.score(ch, "roc_auc")
            self.figures.update(trivial_base_rate=float(rates[1]), challenger_roc_auc=auc)
            if not auc > 0.5:  # NaN too: a holdout that cannot rank is no evidence
                failed.insert(0, f"roc_auc {auc:.4f} is not above 0.5")
            shown = f"{whose} base rate ({rates[1]:.4f})"
        else:
            shown = f"{whose} class shares"
        return f"predicting the {shown} for everyone: {'; '.join(failed)}" if failed else ""

    def prior(self, ch: ModelVersion) -> tuple[np.ndarray, str]:
        """The class rates the trivial predictor gives everyone, and whose they are."""
        recorded = json.loads(dict(ch.tags).get(TRAIN_RATES_TAG, "{}"))
        if set(recorded) == set(self.t.classes):
            return np.array([float(recorded[c]) for c in self.t.classes]), "training"
        y = self.rows()[1]  # trained before the rates were recorded: the holdout's own
        counts = np.bincount(y, minlength=len(self.t.classes)).astype(np.float64)
        return counts / max(len(y), 1), "holdout's"


def decide(name: str, client: MlflowClient, source: SnapshotSource, margin: float,
           force: bool = False, metric: str | None = None) -> Decision:
    """Compare the challenger with the champion; move `champion` if the challenger wins
    (on ``metric``, by default the target's primary metric).

    Under the registry's lock (a promotion of its own unless one is open): the aliases it
    reads are still there when its decision is applied."""
    check_margin(margin)
    with promotion(client.tracking_uri):
        return _decide(name, client, source, margin, force, metric)


def _decide(name: str, client: MlflowClient, source: SnapshotSource, margin: float,
            force: bool, metric: str | None) -> Decision:
    registered = target(name, source.spec.stages).registered_name
    ch = alias_version(client, registered, CHALLENGER)
    if ch is None:
        return Decision(name, False, "no challenger: run `journey train` first", margin=margin)
    tags = dict(ch.tags)
    t = target(name, source.spec.stages, tags.get("journey.label", "churned_inactive"))
    other = other_definition(registered, ch, source.spec.hash)
    if other:  # kept, and the other targets are still decided
        return Decision(name, False, other, margin=margin, challenger_version=str(ch.version))
    on = metric or t.primary_metric
    d = Decision(name, False, "", on, margin, str(ch.version),
                 holdout=f"{tags['journey.test_cutoff']} +{tags['journey.horizon_days']}d")
    holdout = _Holdout(t, client, source, tags)
    d = gate(client, registered, d, ch, force, lambda v: holdout.score(v, on),
             lambda a, b: (evaluate.better(t, a, b, margin) if metric is None
                           else evaluate.better_on(on, a, b, margin)),
             holdout.judge(ch, d.holdout))
    return replace(d, figures=holdout.figures)


def other_definition(registered: str, ch: ModelVersion, current: str) -> str:
    """Why a challenger cannot be scored with the current feature spec ('' when it can)."""
    trained = dict(ch.tags).get("journey.definition_hash")
    if trained == current:
        return ""
    return (f"not scored: {registered} v{ch.version} was trained on feature definition "
            f"{trained}, the current spec is {current}; promote it with the spec it was trained "
            "on (--spec), or train a challenger on this one")


# A second opinion the gate may need besides the score: given the champion (None when there is
# none), whether the challenger may be promoted and a sentence saying why.
Judge = Callable[["ModelVersion | None"], tuple[bool, str]]


def gate(client: MlflowClient, registered: str, d: Decision, ch: ModelVersion, force: bool,
         score: Callable[[ModelVersion], float], wins: Callable[[float, float], bool],
         judge: Judge | None = None) -> Decision:
    """The gate itself, for any model kind: ``score`` judges a version on the challenger's
    holdout, ``wins`` says whether a challenger's score beats a champion's by the margin, and
    ``judge`` (optional) can hold back a challenger the score would promote."""
    d = replace(d, challenger_score=score(ch))
    champ = alias_version(client, registered, CHAMPION)
    if champ is not None and str(champ.version) == d.challenger_version:
        return replace(d, champion_version=d.challenger_version,
                       reason="the challenger is already the champion")
    if champ is None:
        return _first(client, registered, d, force, judge, "no champion yet")
    d = replace(d, champion_version=str(champ.version))
    stale = _unservable(dict(champ.tags), dict(ch.tags), d.champion_version)
    if stale:
        return _first(client, registered, d, force, judge, stale)
    why = _not_comparable(dict(champ.tags), dict(ch.tags), d.champion_version)
    if why:
        return apply_decision(client, registered, d, force,
                              why + ("; promoted by --force" if force else ""))
    d = replace(d, champion_score=score(champ))
    assert d.challenger_score is not None and d.champion_score is not None
    won = wins(d.challenger_score, d.champion_score)
    why = (f"challenger v{d.challenger_version} {d.metric} {d.challenger_score:.4f} "
           f"{'beats' if won else 'does not beat'} champion v{d.champion_version} "
           f"{d.champion_score:.4f} by more than {d.margin} on {d.holdout}")
    if judge is not None:
        ok, said = judge(champ)
        won = won and ok
        why += f"; {said}" if said else ""
    return apply_decision(client, registered, d, won or force,
                          why + ("; promoted by --force" if force and not won else ""))


def _first(client: MlflowClient, registered: str, d: Decision, force: bool,
           judge: Judge | None, situation: str) -> Decision:
    """The decision with no champion to beat (``situation`` says why): the challenger
    becomes champion when the judge (the trivial predictor's bar) lets it."""
    ok, said = judge(None) if judge else (True, "")
    why = f"{situation}: the challenger becomes champion" if ok else situation
    why += f"; {said}" if said else ""
    return apply_decision(client, registered, d, ok or force,
                          why + ("; promoted by --force" if force and not ok else ""))


def _unservable(champ: dict[str, str], ch: dict[str, str], version: str | None) -> str:
    """Why the champion cannot be served any more ('' when it can). The challenger reaching
    the gate was trained on the current feature definitions (``other_definition``), so a
    champion trained on others, as every champion is after an upgrade that changes how
    features are computed, is one the service refuses to load. Keeping it would keep the
    service down with no way out but --force; it is judged as if there were none."""
    key = "journey.definition_hash"
    if champ.get(key) == ch.get(key):
        return ""
    return (f"champion v{version} was trained on feature definitions {champ.get(key)}, which "
            f"the current spec ({ch.get(key)}) does not compute, so it cannot be served: "
            "judged as if there were no champion")


def _not_comparable(champ: dict[str, str], ch: dict[str, str], version: str | None) -> str:
    """Why one holdout cannot judge both ('' when it can): other features, label or horizon,
    or a holdout that starts before the champion's last fitted or calibrated window ends,
    where the champion would be scored on outcomes it was fitted to."""
    # Time to churn dates churn by the inactivity gap: another gap is another label.
    keys = (*COMPARABLE, "journey.churn_gap_days") if ch.get("journey.target") == SURVIVAL \
        else COMPARABLE
    differs = [k for k in keys if champ.get(k) != ch.get(k)]
    if differs:
        return f"not comparable on one holdout (they differ in {', '.join(differs)})"
    seen, start = fitted_until(champ), holdout_start(ch)
    if seen is not None and start is not None and start < seen:
        return (f"not comparable on one holdout: champion v{version} was fitted or calibrated "
                f"on outcomes up to {seen}, after this holdout starts ({start}), so its score "
                "there would be in-sample; train the challenger with a later test cutoff")
    return ""


def fitted_until(tags: dict[str, str]) -> date | None:
    """The end of the last window whose outcomes the model saw (validation: calibration and
    early stopping); None when its tags do not say."""
    if "journey.horizon_days" not in tags:
        return None
    if "journey.valid_cutoff" in tags:
        last = date.fromisoformat(tags["journey.valid_cutoff"])
    elif "journey.valid_window" in tags:  # uplift: decisions in a window, outcomes after
        last = date.fromisoformat(tags["journey.valid_window"].split("..")[1])
    else:
        return None
    return last + timedelta(days=int(tags["journey.horizon_days"]))


def holdout_start(tags: dict[str, str]) -> date | None:
    if "journey.test_cutoff" in tags:
        return date.fromisoformat(tags["journey.test_cutoff"])
    if "journey.test_window" in tags:
        return date.fromisoformat(tags["journey.test_window"].split("..")[0])
    return None


def check_margin(margin: float) -> float:
    """A margin the gate can honour: a negative one would promote a worse model, NaN none."""
    if not math.isfinite(margin) or margin < 0:
        raise ConfigError(f"the promotion margin must be a finite number >= 0, not {margin}")
    return margin


def apply_decision(client: MlflowClient, registered: str, d: Decision, promote: bool,
                   reason: str) -> Decision:
    """Record the decision's reason on the challenger, then move `champion` when promoted
    (at the end of the open promotion): a failure in between leaves a record, never an alias
    moved without one."""
    d = replace(d, promoted=promote, reason=reason)
    version = d.challenger_version
    if version is None:
        return d
    settled(lambda: client.set_model_version_tag(registered, version, "journey.promotion",
                                                 reason))
    if promote:
        move_champion(client, registered, version)
    return d


def log_decision(tracking: Tracking, client: MlflowClient, d: Decision) -> None:
    import mlflow

    from training.tracking import own_run  # a run of its own, even under `mlflow run`

    # The first decisions on a new store may create the experiment side by side.
    exp_id = settled(lambda: tracking.experiment_id(client, PROMOTION_EXPERIMENT))
    with own_run(exp_id, f"promote-{d.target}"):
        mlflow.set_tags({KIND_TAG: "promotion", "journey.target": d.target,
                         "journey.decision": "promoted" if d.promoted else "kept",
                         "journey.reason": d.reason})
        mlflow.log_params({"metric": d.metric, "margin": d.margin, "holdout": d.holdout,
                           "challenger_version": d.challenger_version,
                           "champion_version": d.champion_version})
        mlflow.log_metric("promoted", float(d.promoted))
        for key in ("challenger_score", "champion_score"):
            value = getattr(d, key)
            if value is not None:
                mlflow.log_metric(key, value)
        mlflow.log_metrics({k: v for k, v in d.figures.items() if math.isfinite(v)})


def promote_all(names: list[str], tracking: Tracking, source: SnapshotSource, margin: float,
                force: bool = False, only_trained: bool = False,
                note: Note | None = None) -> list[Decision]:
    """Gate each named target (``only_trained``: skip time to churn when it was never trained,
    for a default `journey promote` in a project without it; the others are all needed).

    One promotion: every target decided and logged under the registry's lock (``note`` says
    when it waits for another), then the champions it promotes moved together."""
    client = tracking.client()
    decisions = []
    with promotion(tracking.tracking_uri, note):
        for name in names:
            if only_trained and name == SURVIVAL and alias_version(
                    client, target(name, source.spec.stages).registered_name,
                    CHALLENGER) is None:
                continue
            d = decide(name, client, source, margin, force)
            log_decision(tracking, client, d)
            decisions.append(d)
    return decisions
