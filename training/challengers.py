"""Which training run's model is a target's challenger when runs overlap, and when it moves.

Each run used to alias its own best model as it finished a target, so overlapping runs left
the registry with one target's challenger from one run and another's from another, while
each run printed its own: the next `journey promote` judged models nobody had printed. Now a
challenger never goes back to an older run's model: a run that started before the current
challenger's run leaves it and says so. Every target thus ends with the challenger of the
latest-started run that trained it, and a run whose printed challenger was replaced while it
ran says so before it ends.

A run still decides (and prints) each target's challenger as that target finishes, but inside
``challengers_at_end`` it moves none until the last target is done: a promotion in between
would otherwise judge this run's challengers for some targets beside the previous run's for
the others, a set nobody trained together. The moves are made in one hold of the registry's
lock, each checked again then against a later-started run's challenger; a run that fails
part-way moves none, as a promotion that fails moves no champion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from models.registry import alias_version
from models.targets import Target
from training.registry_lock import registry_lock
from training.tracking import same_store
from training.train import (
    CHALLENGER,
    Context,
    Log,
    ModelResult,
    best_model,
    pick_challenger,
    say_challenger,
    set_challenger,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.tracking import MlflowClient

TRAIN = "journey train"


@dataclass(frozen=True)
class _Move:
    registered: str
    version: str | None  # None: this run has none to offer, an earlier one's is removed
    run_id: str  # a run of this training: the newer-run check compares when it started


@dataclass
class _Batch:
    tracking_uri: str
    command: str  # the run's command, as its lines name it
    named: dict[str, str | None] = field(default_factory=dict)  # each target's, printed last
    moves: list[_Move] = field(default_factory=list)


# The run whose challenger moves wait for its end, in this thread (threads start with none).
_OPEN: ContextVar[_Batch | None] = ContextVar("journey_open_challengers", default=None)


@contextmanager
def challengers_at_end(client: MlflowClient, command: str, log: Log, warn: Log
                       ) -> Iterator[None]:
    """Queue the challenger moves decided in the block and make them when it ends without
    error, in one hold of the registry's lock, leaving each target whose challenger now
    comes from a run started after this one; then say which printed challenger is not the
    registry's. ``command`` ("journey train") names the run in its lines; ``warn``: where a
    wait for the lock and the moves held back by a failure are said."""
    batch = _Batch(client.tracking_uri, command)
    token = _OPEN.set(batch)
    try:
        yield
    except BaseException:
        if batch.moves:
            warn(f"no challenger moved: this {command} stopped before it ended (held back: "
                 f"{_listed(batch.moves)}); each target keeps the challenger it had")
        raise
    finally:
        _OPEN.reset(token)
    with registry_lock(client.tracking_uri, f"{command} moving its challengers", warn):
        for move in batch.moves:
            if later_challenger(client, move.registered, move.run_id) is None:
                set_challenger(client, move.registered, move.version)
        confirm_challengers(client, batch.named, log, command)


def choose_challenger(client: MlflowClient, t: Target, done: list[ModelResult], ctx: Context
                      ) -> str | None:
    """The target's challenger once this `journey train` trained it: the best of ``done``
    (``say_challenger``), unless the current challenger comes from a run that started after
    this one: it stays. Inside ``challengers_at_end`` the move waits for the block's end;
    outside, it is made now under the registry's lock. The challenger named (None: none)."""
    best = best_model(t, done)
    mine = (f"this run's v{best.version} ({best.family}) is not made the challenger"
            if best else "this run has none to offer, every model scores everyone alike")
    batch = _open(client)
    if batch is not None:
        return _offer(client, batch, t.registered_name, done[0].run_id, mine, ctx.log,
                      lambda: _version(say_challenger(client, t, done, ctx)))
    with registry_lock(client.tracking_uri, f"{TRAIN} picking its challenger", ctx.warn):
        return _offer(client, None, t.registered_name, done[0].run_id, mine, ctx.log,
                      lambda: pick_challenger(client, t, done, ctx), TRAIN)


def offer_challenger(client: MlflowClient, registered: str, version: str, family: str,
                     run_id: str, log: Log, warn: Log) -> str | None:
    """``version`` (of ``family``) as ``registered``'s challenger, unless the current one
    comes from a run that started after the one ``run_id`` belongs to: it stays. Moved at the
    end of the open ``challengers_at_end``, else now under the registry's lock. The
    challenger named."""
    def say() -> str:
        log(f"  {registered} v{version} ({family}) is the challenger")
        return version

    def now() -> str:
        set_challenger(client, registered, say())
        return version

    mine = f"this run's v{version} ({family}) is not made the challenger"
    batch = _open(client)
    if batch is not None:
        return _offer(client, batch, registered, run_id, mine, log, say)
    with registry_lock(client.tracking_uri, "run picking its challenger", warn):
        return _offer(client, None, registered, run_id, mine, log, now, "run")


def _offer(client: MlflowClient, batch: _Batch | None, registered: str, run_id: str,
           mine: str, log: Log, choose: Callable[[], str | None], command: str = ""
           ) -> str | None:
    """A later-started run's challenger if there is one (said, with ``mine``: what this run
    leaves), else what ``choose`` says: queued in ``batch``, or moved by ``choose`` itself
    outside one (``command``: what the run is called there)."""
    later = later_challenger(client, registered, run_id)
    if later is not None:
        newer, run = later
        command = batch.command if batch is not None else command
        log(f"  {registered} v{newer.version} stays the challenger: it comes from a {command} "
            f"that started after this one (run {run}); {mine}")
        chosen: str | None = str(newer.version)
    else:
        chosen = choose()
        if batch is not None:
            batch.moves.append(_Move(registered, chosen, run_id))
    if batch is not None:
        batch.named[registered] = chosen
    return chosen


def _open(client: MlflowClient) -> _Batch | None:
    batch = _OPEN.get()
    return batch if batch is not None and same_store(batch.tracking_uri,
                                                      client.tracking_uri) else None


def _version(best: ModelResult | None) -> str | None:
    return None if best is None else best.version


def _listed(moves: list[_Move]) -> str:
    return ", ".join(f"{m.registered} v{m.version}" if m.version is not None
                     else f"removing {m.registered}'s" for m in moves)


def later_challenger(client: MlflowClient, registered: str, run_id: str
                     ) -> tuple[ModelVersion, str] | None:
    """The current challenger and its training's run id when that training started after
    the one ``run_id`` (a model run, or the training's own) belongs to, else None."""
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


def confirm_challengers(client: MlflowClient, named: dict[str, str | None], log: Log,
                        command: str = TRAIN) -> None:
    """One line for each target whose challenger is no longer the one this run named (a
    later run moved it meanwhile), so the last line printed for a target is the registry's."""
    for registered, version in named.items():
        now = alias_version(client, registered, CHALLENGER)
        if (None if now is None else str(now.version)) == version:
            continue
        was = f", not v{version}" if version else ""
        log(f"  {registered} has no challenger now{was}: another {command} removed it "
            "while this one ran" if now is None else
            f"  {registered} v{now.version} is the challenger now{was}: another {command} "
            "moved it while this one ran")
