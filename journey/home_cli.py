"""`journey relocate`: make a moved, copied or restored ``JOURNEY_HOME`` use its own models."""

from __future__ import annotations

from typing import Annotated

import typer

from features.errors import ConfigError
from features.memory_errors import memory_errors
from journey.common import app, friendly_errors
from journey.service_process import read_pid_file
from journey.settings import Settings
from training.tracking import Tracking, local_path, same_store


@app.command()
@friendly_errors
def relocate(
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Say what would change, change nothing.")] = False,
) -> None:
    """Point this home's MLflow store at this home's artifacts after the home moved.

    MLflow records absolute artifact paths: a home moved or restored elsewhere cannot load
    its models, and a copy keeps using the original's. Run with the service stopped; the
    database is copied aside (mlflow.db.before-relocate-TIME) before it changes."""
    from training.relocate import ARTIFACTS
    from training.relocate import relocate as rewrite

    settings = Settings()
    tracking, local = settings.tracking(check_home=False), Tracking.local(settings.home)
    if not same_store(tracking.tracking_uri, local.tracking_uri) or \
            settings.mlflow_artifacts is not None:
        raise ConfigError(
            f"the MLflow store is {tracking.tracking_uri} with artifacts at "
            f"{tracking.artifact_root}, not the embedded one under JOURNEY_HOME "
            f"({settings.home.resolve()}): only that one moves with the home")
    recorded = read_pid_file(settings.home / "serve.pid", settings.home)
    if recorded is not None and recorded.stale is None:
        raise ConfigError(f"this home's service is running (PID {recorded.pid}); stop it with "
                          "`journey stop` first: it holds the models it loaded")
    db_file = local_path(local.tracking_uri)
    assert db_file is not None and local.artifact_root is not None  # local() sets both
    found = rewrite(db_file, local.artifact_root, dry_run=dry_run)
    if not found.others:
        typer.echo(f"every artifact location already is under {found.root}: nothing to do")
        return
    for root, n in sorted(found.others.items()):
        typer.echo(f"{n:,} artifact locations under {root}")
    if dry_run:
        typer.echo(f"would point them at {found.root} (the models' files are all there); nothing "
                   "changed")
        return
    typer.echo(f"now under {found.root}: {found.rewritten:,} rows rewritten; the database "
               f"before is {found.backup}")
    _rehome_rejects(settings, [root.removesuffix(ARTIFACTS) for root in found.others])


def _rehome_rejects(settings: Settings, old_homes: list[str]) -> None:
    """The ingest log names each load's rejects file by its absolute path: those under an
    old home are pointed at this one, when the store lives in this home."""
    from features.store import EventStore
    from features.store_log import rehome

    store, home = settings.store_path.resolve(), settings.home.resolve()
    if not store.exists() or not store.is_relative_to(home):
        return
    memory = settings.store_memory
    with memory_errors(f"pointing the ingest log of {store} at {home}", memory), \
            EventStore(store, memory_limit=memory) as es:
        moved = sum(rehome(es.con, old, str(home)) for old in old_homes)
    if moved:
        typer.echo(f"ingest log: {moved:,} rejects file paths now under {home}")
