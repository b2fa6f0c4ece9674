"""`journey promote`: the champion/challenger gate.

The challenger and the champion are scored on the same rows: the challenger's holdout (its
experiment's test cutoff and horizon, read from the feature and label snapshots). `champion`
moves only when the challenger beats it on the target's primary metric by more than the
margin; every decision, promoted or not, is logged to MLflow with its reason.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import TYPE_CHECKING

from features.errors import ConfigError
from models.registry import Loaded, alias_version, load_version
from models.targets import SURVIVAL, Target, target
from training import evaluate
from training.dataset import SnapshotSource, midnight
from training.survival import holdout_score
from training.tracking import KIND_TAG, PROMOTION_EXPERIMENT, Tracking
from training.train import CHALLENGER, CHAMPION

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

# Tags that must agree for two models to be judged on one holdout.
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


def _score(t: Target, loaded: Loaded, source: SnapshotSource, tags: dict[str, str],
           metric: str) -> float:
    frame = source.frame(
        midnight(date.fromisoformat(tags["journey.test_cutoff"])),
        int(tags["journey.horizon_days"]),
        int(tags["journey.churn_gap_days"]),
    )
    y, known = t.encode(frame)
    proba = loaded.model.predict_proba(frame[known])
    return float(evaluate.metrics(t, y[known], proba)[metric])


def decide(name: str, client: MlflowClient, source: SnapshotSource, margin: float,
           force: bool = False, metric: str | None = None) -> Decision:
    """Compare the challenger with the champion; move `champion` if the challenger wins
    (on ``metric``, by default the target's primary metric)."""
    check_margin(margin)
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
    return gate(client, registered, d, ch, force,
                lambda v: (holdout_score(v, source, tags, on) if t.kind == "survival"
                           else _score(t, load_version(client, v), source, tags, on)),
                lambda a, b: (evaluate.better(t, a, b, margin) if metric is None
                              else evaluate.better_on(on, a, b, margin)))


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
        ok, said = judge(None) if judge else (True, "")
        why = "no champion yet: the challenger becomes champion" if ok else "no champion yet"
        why += f"; {said}" if said else ""
        return apply_decision(client, registered, d, ok or force,
                              why + ("; promoted by --force" if force and not ok else ""))
    d = replace(d, champion_version=str(champ.version))
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
        why += f"; {said}"
    return apply_decision(client, registered, d, won or force,
                          why + ("; promoted by --force" if force and not won else ""))


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
    """Record the decision's reason on the challenger; move `champion` when promoted."""
    d = replace(d, promoted=promote, reason=reason)
    if promote and d.challenger_version is not None:
        client.set_registered_model_alias(registered, CHAMPION, d.challenger_version)
    if d.challenger_version is not None:
        client.set_model_version_tag(registered, d.challenger_version, "journey.promotion",
                                     reason)
    return d


def log_decision(tracking: Tracking, client: MlflowClient, d: Decision) -> None:
    import mlflow

    from training.tracking import own_run  # a run of its own, even under `mlflow run`

    exp_id = tracking.experiment_id(client, PROMOTION_EXPERIMENT)
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
                force: bool = False) -> list[Decision]:
    client = tracking.client()
    decisions = []
    for name in names:
        d = decide(name, client, source, margin, force)
        log_decision(tracking, client, d)
        decisions.append(d)
    return decisions
