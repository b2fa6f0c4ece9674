"""`journey retrain`: one scheduled retraining cycle with the champion gate.

A cycle moves an experiment spec's cutoffs forward so its test window is the newest horizon
the event store has fully observed (train and validation keep their spacing), builds the
snapshots that are missing, trains challengers, and runs the promotion gate against each
target's champion on that newest holdout. The decisions, promoted or kept and why, are logged
in MLflow (a parent run per cycle in ``journey-retrain``, the gate's own runs nested in it)
and recorded in ``<home>/retrain/cycles.json``, which the cadence reads: a cycle is due
``every_days`` after the last one, at once with ``--force``, or when a drift check says so.

```yaml
experiment: default.yaml   # the spec whose cutoffs move (relative to this file)
every_days: 14
margin: 0.005              # the gate's required improvement; default JOURNEY_PROMOTE_MARGIN
metric: {churn: log_loss}  # per target, instead of its primary metric (optional)
```
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from features.errors import ConfigError
from features.spec import FeatureSpec
from models.targets import TARGETS
from training.dataset import SnapshotSource, load_dataset
from training.experiment import Experiment, _Strict, load_experiment, load_model_file
from training.promote import Decision, decide, log_decision
from training.tracking import KIND_TAG, RETRAIN_EXPERIMENT, Tracking
from training.train import Context, train_experiment

Log = Callable[[str], None]
# A drift check: the reason retraining is needed now, or None when nothing drifted.
DriftCheck = Callable[[], str | None]
CYCLES_FILE = "cycles.json"
GATE_METRICS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece")


class RetrainSpec(_Strict):
    name: str = ""  # defaults to the file's name
    experiment: Path
    every_days: int = Field(ge=1)
    margin: float | None = Field(default=None, ge=0)
    metric: dict[Literal[TARGETS], Literal[GATE_METRICS]] = Field(  # type: ignore[valid-type]
        default_factory=dict)


@dataclass(frozen=True)
class Cycle:
    ran_at: str
    trigger: str
    data_until: str
    experiment: str
    cutoffs: dict[str, Any]
    training_run: str
    decisions: list[dict[str, Any]]


def load_retrain(path: str | Path) -> tuple[RetrainSpec, Experiment]:
    """The retraining spec and the experiment it names (a relative path is read from the
    retraining spec's folder)."""
    spec = load_model_file(path, RetrainSpec, "retraining spec")
    exp_path = spec.experiment if spec.experiment.is_absolute() else (
        Path(path).parent / spec.experiment)
    return spec, load_experiment(exp_path)


def moved(exp: Experiment, data_until: datetime) -> Experiment:
    """``exp`` with every cutoff moved by the same number of days, so its test window
    (T, T+H] is the newest one that ends by ``data_until`` (the survival section's cutoffs
    move the same way on its own horizon)."""
    raw = exp.model_dump()
    raw["cutoffs"] = _moved(raw["cutoffs"], exp.horizon_days, data_until)
    if raw.get("survival"):
        section = raw["survival"]
        section["cutoffs"] = _moved(section["cutoffs"], section["horizon_days"], data_until)
    raw["name"] = f"{exp.name}-retrain-{raw['cutoffs']['test']}"
    return Experiment.model_validate(raw)


def _moved(cutoffs: dict[str, Any], horizon_days: int, data_until: datetime) -> dict[str, Any]:
    shift = (data_until - timedelta(days=horizon_days)).date() - cutoffs["test"]
    return {"train": [d + shift for d in cutoffs["train"]], "valid": cutoffs["valid"] + shift,
            "test": cutoffs["test"] + shift}


def due(cycles: list[dict[str, Any]], now: datetime, every_days: int, force: bool,
        drift: DriftCheck | None) -> str | None:
    """Why a cycle runs now (None: it is not due)."""
    if force:
        return "forced"
    if drift is not None:
        reason = drift()
        if reason:
            return f"drift: {reason}"
    if not cycles:
        return "first cycle"
    last = datetime.fromisoformat(cycles[-1]["ran_at"].replace("Z", "+00:00"))
    if now - last >= timedelta(days=every_days):
        return f"{(now - last).days} days since the last cycle (every {every_days})"
    return None


def load_cycles(folder: Path) -> list[dict[str, Any]]:
    path = folder / CYCLES_FILE
    if not path.exists():
        return []
    try:
        cycles = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable retraining log ({exc})") from exc
    if not isinstance(cycles, list):
        raise ConfigError(f"{path}: expected a list of cycles")
    return cycles


def record_cycle(folder: Path, cycle: Cycle) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CYCLES_FILE
    tmp = folder / f".{CYCLES_FILE}.tmp"
    tmp.write_text(json.dumps([*load_cycles(folder), asdict(cycle)], indent=1), encoding="utf-8")
    os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class RetrainRun:
    """Where a cycle reads and writes: the store (through ``source``), MLflow, the log."""

    source: SnapshotSource
    tracking: Tracking
    spec: FeatureSpec
    folder: Path  # <home>/retrain
    margin: float  # the gate's margin when the retraining spec sets none
    log: Log = print


@dataclass(frozen=True)
class Outcome:
    cycle: Cycle | None  # None: not due
    why: str  # the trigger, or why no cycle ran


def retrain(rs: RetrainSpec, exp: Experiment, run: RetrainRun, now: datetime,
            force: bool = False, drift: DriftCheck | None = None,
            spec_file: Path | None = None) -> Outcome:
    """Run a cycle when one is due (cadence, ``force``, or the optional ``drift`` check)."""
    cycles = load_cycles(run.folder)
    trigger = due(cycles, now, rs.every_days, force, drift)
    if trigger is None:
        last = cycles[-1]["ran_at"]
        return Outcome(None, f"not due: the last cycle ran at {last}, every {rs.every_days} "
                             "days (use --force to run now)")
    return Outcome(run_cycle(rs, exp, run, now, trigger, spec_file), trigger)


def run_cycle(rs: RetrainSpec, exp: Experiment, run: RetrainRun, now: datetime,
              trigger: str, spec_file: Path | None = None) -> Cycle:
    """Train challengers on moved cutoffs, gate them against the champions, record it all."""
    import mlflow

    latest = run.source.latest_event()
    fresh = moved(exp, latest)
    c = fresh.cutoffs
    run.log(f"retraining {fresh.name}: train {[str(d) for d in c.train]}, valid {c.valid}, "
            f"test {c.test} (events until {latest:%Y-%m-%d %H:%M})")
    ds = load_dataset(fresh, run.source)
    train_experiment(fresh, ds, Context(run.tracking, run.spec, spec_file, run.log))
    parent = mlflow.last_active_run()  # train_experiment's parent run, ended last
    training_run = parent.info.run_id if parent is not None else ""
    margin = run.margin if rs.margin is None else rs.margin
    client = run.tracking.client()
    exp_id = run.tracking.experiment_id(client, RETRAIN_EXPERIMENT)
    decisions: list[Decision] = []
    with mlflow.start_run(experiment_id=exp_id, run_name=f"retrain {c.test}"):
        mlflow.set_tags({KIND_TAG: "retrain", "journey.trigger": trigger,
                         "journey.experiment": fresh.name, "journey.training_run": training_run})
        mlflow.log_params({"train_cutoffs": ",".join(str(d) for d in c.train),
                           "valid_cutoff": str(c.valid), "test_cutoff": str(c.test),
                           "data_until": latest.isoformat(), "margin": margin,
                           "every_days": rs.every_days})
        for name in fresh.targets:
            d = decide(name, client, run.source, margin, metric=rs.metric.get(name))
            log_decision(run.tracking, client, d)
            mlflow.set_tag(f"journey.decision.{name}",
                           f"{'promoted' if d.promoted else 'kept'}: {d.reason}")
            mlflow.log_metric(f"{name}_promoted", float(d.promoted))
            run.log(f"{name}: {'PROMOTED' if d.promoted else 'kept'} — {d.reason}")
            decisions.append(d)
    cycle = Cycle(_iso(now), trigger, _iso(latest), fresh.name, c.model_dump(mode="json"),
                  training_run, [asdict(d) for d in decisions])
    record_cycle(run.folder, cycle)
    return cycle


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")

