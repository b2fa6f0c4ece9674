"""Which `journey train` run's model is a target's challenger when runs overlap.

Each run used to alias its own best model as it finished a target, so overlapping runs left
the registry with one target's challenger from one run and another's from another, while
each run printed its own: the next `journey promote` judged models nobody had printed. Now
the pick is made under the registry's lock, and a challenger never goes back to an older
run's model: a run that started before the current challenger's run leaves it and says so.
Every target thus ends with the challenger of the latest-started run that trained it, and a
run whose printed challenger was replaced while it ran says so before it ends.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.registry import alias_version
from models.targets import Target
from training.registry_lock import registry_lock
from training.train import CHALLENGER, Context, Log, ModelResult, best_model, pick_challenger

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient


def choose_challenger(client: MlflowClient, t: Target, done: list[ModelResult], ctx: Context
                      ) -> str | None:
    """``pick_challenger`` under the registry's lock, unless the current challenger comes
    from a run that started after this one: it stays. The challenger left (None: none)."""
    with registry_lock(client.tracking_uri, "journey train picking its challenger", ctx.warn):
        later = later_challenger(client, t.registered_name, done[0].run_id)
        if later is None:
            return pick_challenger(client, t, done, ctx)
        newer, run = later
        best = best_model(t, done)
        mine = (f"this run's v{best.version} ({best.family}) is not made the challenger"
                if best else "this run has none to offer, every model scores everyone alike")
        ctx.log(f"  {t.registered_name} v{newer.version} stays the challenger: it comes from a "
                f"journey train that started after this one (run {run}); {mine}")
        return str(newer.version)


def later_challenger(client: MlflowClient, registered: str, run_id: str
                     ) -> tuple[ModelVersion, str] | None:
    """The current challenger and its training's run id when that training started after
    the one ``run_id`` (a model run) belongs to, else None."""
    from mlflow.exceptions import MlflowException

    current = alias_version(client, registered, CHALLENGER)
    if current is None or not current.run_id:
        return None
    try:
        theirs = started(client, current.run_id)
    except MlflowException:  # its run deleted: nothing says it is newer
        return None
    return (current, theirs[1]) if theirs > started(client, run_id) else None


def started(client: MlflowClient, run_id: str) -> tuple[int, str]:
    """When the training a model run belongs to started (its parent run, the `journey train`
    or `mlflow run` one), and that run's id, which orders two started in one millisecond."""
    run = client.get_run(run_id)
    parent = run.data.tags.get("mlflow.parentRunId")
    if parent:
        run = client.get_run(parent)
    return int(run.info.start_time or 0), str(run.info.run_id)


def confirm_challengers(client: MlflowClient, named: dict[str, str | None], log: Log) -> None:
    """One line for each target whose challenger is no longer the one this run named (a
    later run moved it meanwhile), so the last line printed for a target is the registry's."""
    for registered, version in named.items():
        now = alias_version(client, registered, CHALLENGER)
        if (None if now is None else str(now.version)) == version:
            continue
        was = f", not v{version}" if version else ""
        log(f"  {registered} has no challenger now{was}: another journey train removed it "
            "while this one ran" if now is None else
            f"  {registered} v{now.version} is the challenger now{was}: another journey "
            "train moved it while this one ran")
