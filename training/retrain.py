"""`journey retrain`: one scheduled retraining cycle with the champion gate.

A cycle moves an experiment spec's cutoffs forward so its test window is the newest horizon
closed by the cycle's clock and observed by the event store (train and validation keep their
spacing), builds the snapshots that are missing, trains challengers, and runs the promotion
gate against each target's champion on that newest holdout. A clock before the store's
newest event replays the past: no window reaches past the clock, so the cycle sees only the
events it would have seen then. Cycles go forward: a clock before the last cycle's is refused.
The decisions, promoted or kept and why, are logged in MLflow (a parent run per cycle in
``journey-retrain``, the gate's own runs nested in it; the moved experiment and this spec
with the training run) and recorded in ``<home>/retrain/cycles.json``, which the cadence
reads: a cycle is due ``every_days`` after the last one, at once with ``--force``, or when a
drift check says so and events arrived since the last cycle (each cycle records the number of
events its clock could see and the newest one's time).

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
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from features.errors import ConfigError
from features.snapshot import data_fingerprint
from features.spec import FeatureSpec
from features.store import EventStore
from models.targets import TARGETS
from training.champions import promotion
from training.dataset import SnapshotSource, load_dataset
from training.experiment import Experiment, _Strict, load_experiment, load_model_file
from training.promote import Decision, decide, log_decision
from training.tracking import KIND_TAG, RETRAIN_EXPERIMENT, Tracking, own_run
from training.train import Context, log_experiment, train_experiment

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
    # The events the cycle's clock could see ({"events", "newest"}): a drift trigger on the
    # same events would train on the same data again.
    data: dict[str, Any] = field(default_factory=dict)


def load_retrain(path: str | Path) -> tuple[RetrainSpec, Experiment]:
    """The retraining spec and the experiment it names (a relative path is read from the
    retraining spec's folder)."""
    spec = load_model_file(path, RetrainSpec, "retraining spec")
    where = experiment_path(spec, Path(path))
    if not where.is_file():
        raise ConfigError(f"{path}: experiment: {spec.experiment} not found (read as {where}: "
                          "a relative path is read from the retraining spec's folder)")
    exp = load_experiment(where)
    untrained = [t for t in spec.metric if t not in exp.targets]
    if untrained:  # the gate would never look at it: a typo or the wrong experiment
        raise ConfigError(f"{path}: metric: {', '.join(untrained)} is not a target of "
                          f"{where} ({', '.join(exp.targets)})")
    return spec, exp


def experiment_path(rs: RetrainSpec, config_file: Path) -> Path:
    return rs.experiment if rs.experiment.is_absolute() else config_file.parent / rs.experiment


def moved(exp: Experiment, data_until: datetime) -> Experiment:
    """``exp`` with every cutoff moved by the same number of days, so its test window
    [T, T+H) is the newest one that ends by ``data_until`` (the survival section's cutoffs
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


def check_forward(cycles: list[dict[str, Any]], now: datetime, folder: Path) -> None:
    """Refuse a clock before the last cycle's: its cycle would sit after one it precedes in
    cycles.json, and the cadence would measure from the wrong one."""
    if not cycles:
        return
    last = _parse(cycles[-1]["ran_at"])
    if now < last:
        raise ConfigError(
            f"--now {_iso(now)} is before the last recorded cycle, run at {_iso(last)} "
            f"({folder / CYCLES_FILE}): replays go forward; give --now {_iso(last)} or later, "
            "or replay from the start in another JOURNEY_HOME")


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
    last = _parse(cycles[-1]["ran_at"])
    if now - last >= timedelta(days=every_days):
        return f"{(now - last).days} days since the last cycle (every {every_days})"
    return None


def data_seen(store: Path, now: datetime) -> dict[str, Any]:
    """The events before the clock ``now``: their number and the newest one's time."""
    with EventStore(store, read_only=True) as es:
        return data_fingerprint(es, now)


def nothing_new(cycles: list[dict[str, Any]], seen: dict[str, Any], data_until: datetime
                ) -> str | None:
    """Why no event arrived since the last cycle (None: some did, or there is no cycle yet).
    ``seen``: :func:`data_seen` on this cycle's clock; ``data_until``: its data end."""
    if not cycles:
        return None
    last = cycles[-1]
    # A cycle recorded before the event counts were: its data end is all there is to compare.
    same = (_same_data(last["data"], seen) if last.get("data")
            else last.get("data_until") == _iso(data_until))
    if not same:
        return None
    return (f"no new events since the last cycle at {last['ran_at']} ({seen['events']:,} "
            f"events, the newest at {seen['newest']})")


def _same_data(recorded: dict[str, Any], seen: dict[str, Any]) -> bool:
    """The same events, judged on what both records hold: a cycle logged before the content
    hash was recorded is compared on its count, newest time and attributes alone, rather
    than taken for other data once after an upgrade."""
    keys = recorded.keys() | seen.keys()
    if "content" not in recorded or "content" not in seen:
        keys -= {"content"}
    return all(recorded.get(k) == seen.get(k) for k in keys)


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
            config_file: Path | None = None) -> Outcome:
    """Run a cycle when one is due (cadence, ``force``, or the optional ``drift`` check).
    ``config_file``: the retraining spec's file, logged with the cycle's runs."""
    cycles = load_cycles(run.folder)
    check_forward(cycles, now, run.folder)
    stale = None
    if drift is not None and not force and cycles:
        stale = nothing_new(cycles, data_seen(run.source.store, now),
                            min(now, run.source.latest_event()))
    trigger = due(cycles, now, rs.every_days, force, None if stale else drift)
    skipped = f"; drift not checked: {stale}" if stale else ""
    if trigger is None:
        last = cycles[-1]["ran_at"]
        return Outcome(None, f"not due: the last cycle ran at {last}, every {rs.every_days} "
                             f"days{skipped} (use --force to run now)")
    if stale:
        run.log(f"drift not checked: {stale}")
    return Outcome(run_cycle(rs, exp, run, now, trigger, config_file), trigger)


def run_cycle(rs: RetrainSpec, exp: Experiment, run: RetrainRun, now: datetime,
              trigger: str, config_file: Path | None = None) -> Cycle:
    """Train challengers on moved cutoffs, gate them against the champions, record it all."""
    import mlflow

    latest = run.source.latest_event()
    data_until = min(now, latest)  # a replay: nothing after its clock
    seen = data_seen(run.source.store, now)
    fresh = moved(exp, data_until)
    c = fresh.cutoffs
    left_out = (f"; newer events, to {latest:%Y-%m-%d %H:%M}, left out as after --now"
                if latest > now else "")
    run.log(f"retraining {fresh.name}: train {[str(d) for d in c.train]}, valid {c.valid}, "
            f"test {c.test} (events until {data_until:%Y-%m-%d %H:%M}{left_out})")
    ds = load_dataset(fresh, run.source)
    # Under `mlflow run` training logs into the entry point's run, after which MLflow forgets
    # its id: kept here so that the cycle's own run can still nest under it.
    entry_run = os.environ.get("MLFLOW_RUN_ID")
    # No experiment file: the moved experiment itself is what the training run logs.
    train_experiment(fresh, ds, Context(run.tracking, run.spec, None, run.log,
                                        store=run.source.store))
    parent = mlflow.last_active_run()  # train_experiment's parent run, ended last
    training_run = parent.info.run_id if parent is not None else ""
    client = run.tracking.client()
    if training_run and config_file is not None:
        for f in (config_file, experiment_path(rs, config_file)):
            client.log_artifact(training_run, str(f), "retrain")
    with own_run(run.tracking.experiment_id(client, RETRAIN_EXPERIMENT), f"retrain {c.test}",
                 parent_run_id=entry_run):
        mlflow.set_tags({KIND_TAG: "retrain", "journey.trigger": trigger,
                         "journey.experiment": fresh.name, "journey.training_run": training_run,
                         "journey.replay": str(latest > now).lower()})
        margin = run.margin if rs.margin is None else rs.margin
        mlflow.log_params({"train_cutoffs": ",".join(str(d) for d in c.train),
                           "valid_cutoff": str(c.valid), "test_cutoff": str(c.test),
                           "ran_at": _iso(now), "data_until": data_until.isoformat(),
                           "store_newest_event": latest.isoformat(), "margin": margin,
                           "events_seen": seen["events"],
                           "every_days": rs.every_days})
        log_experiment(fresh, None)
        if config_file is not None:
            mlflow.log_artifact(str(config_file), "retrain")
        decisions = _gate(rs, run, fresh, margin)
    cycle = Cycle(_iso(now), trigger, _iso(data_until), fresh.name, c.model_dump(mode="json"),
                  training_run, [asdict(d) for d in decisions], seen)
    record_cycle(run.folder, cycle)
    return cycle


def _gate(rs: RetrainSpec, run: RetrainRun, fresh: Experiment, margin: float) -> list[Decision]:
    """Each target's decision, logged in the cycle's run (active)."""
    import mlflow

    client = run.tracking.client()
    decisions = []
    # One promotion: the cycle's champions move together once every target is decided.
    with promotion(run.tracking.tracking_uri, run.log):
        for name in fresh.targets:
            d = decide(name, client, run.source, margin, metric=rs.metric.get(name))
            log_decision(run.tracking, client, d)
            mlflow.set_tag(f"journey.decision.{name}",
                           f"{'promoted' if d.promoted else 'kept'}: {d.reason}")
            mlflow.log_metric(f"{name}_promoted", float(d.promoted))
            run.log(f"{name}: {'PROMOTED' if d.promoted else 'kept'} — {d.reason}")
            decisions.append(d)
    return decisions


def _parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")
