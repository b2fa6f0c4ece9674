"""`journey serve`, `journey stop` and `journey keys`: run the prediction service and manage
its API keys. The service itself lives in ``serving/`` (the only layer that imports BentoML
and FastAPI); these commands start it as ``bentoml serve`` in its own process."""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import typer

from features.errors import ConfigError
from features.spec import FeatureSpec
from features.store_lock import store_holder
from features.store_messages import held_by
from journey.common import app, friendly_errors
from journey.import_shadow import check_working_folder
from journey.service_process import (
    GRACE_NAME,
    SERVICE,
    Tls,
    check_port_free,
    check_tls,
    read_pid_file,
    stop_spawned,
    stop_timeout,
    terminate,
    wait_ready,
    write_pid_file,
)
from journey.settings import Settings
from models.registry import RegistryError, client_for
from serving.keys import KeyRing, Role, create_key, revoke_key
from serving.settings import ServeSettings
from training.stale_runs import start_time

# For a service started without JOURNEY_STOP_GRACE_SECONDS in its environment.
GRACE_DEFAULT: float = ServeSettings.model_fields["stop_grace_seconds"].default
keys_app = typer.Typer(help="API keys of the prediction service (stored hashed).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def service_env(settings: ServeSettings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("DO_NOT_TRACK", "true")
    env.setdefault("BENTOML_HOME", str((settings.home / "bentoml").resolve()))
    # Spelled out (not left to .env or the default) so `journey stop` can tell this home's
    # service from another's by the process's environment, and wait as long as it drains.
    env["JOURNEY_HOME"] = str(settings.home.resolve())
    env[GRACE_NAME.decode()] = f"{settings.stop_grace_seconds:g}"
    return env


def _command(host: str, port: int, tls: Tls | None) -> list[str]:
    return [str(Path(sys.executable).parent / "bentoml"), "serve", SERVICE,
            "--host", host, "--port", str(port), *(tls.args() if tls else [])]


def _home_origin(home: Path) -> str:
    """Which setting named ``home``, for a message about a wrong one."""
    # A blank value is no setting (features/settings_sources.py): the default is in force.
    if any(name.upper() == "JOURNEY_HOME" and value.strip()
           for name, value in os.environ.items()):
        return f"JOURNEY_HOME={home}, set in the environment"
    try:
        dotenv = Path(".env").read_text(errors="replace")
    except OSError:
        dotenv = ""
    if re.search(r"^\s*(export\s+)?JOURNEY_HOME\s*=[ \t]*\S", dotenv,
                 re.MULTILINE | re.IGNORECASE):
        return f"JOURNEY_HOME={home}, set in {Path('.env').resolve()}"
    return f"the default {home}: JOURNEY_HOME is not set"


def check_deployment(settings: ServeSettings) -> None:
    """Refuse a home or store that is not there: the service would create an empty store and
    registry there and wait for a champion forever (a mistyped JOURNEY_HOME)."""
    home = settings.home
    defaulted = [what for what, given in (("event store", settings.store),
                                          ("MLflow registry", settings.mlflow_tracking_uri),
                                          ("API keys", settings.api_keys)) if given is None]
    if home.exists() and not home.is_dir():
        raise ConfigError(f"home {home.resolve()} ({_home_origin(home)}) is not a directory")
    if not home.exists() and defaulted:
        raise ConfigError(
            f"home {home.resolve()} ({_home_origin(home)}) does not exist; it would hold the "
            f"{', '.join(defaulted)} this service uses: check the path (`journey ingest` "
            "starts a new home)")
    if not settings.store_path.is_file():
        raise ConfigError(f"event store not found: {settings.store_path}; run `journey ingest`")


def check_keys(settings: ServeSettings) -> None:
    """Refuse to start a service that would answer 401 to every request."""
    path = settings.keys_path
    if len(KeyRing.load(path)):
        return
    origin = "JOURNEY_API_KEYS" if settings.api_keys else "default: $JOURNEY_HOME/api_keys.yaml"
    state = "does not exist" if not path.exists() else "holds no keys"
    raise ConfigError(f"{path} ({origin}) {state}: the service would refuse every request; "
                      "create a key with `journey keys create NAME --role admin`")


def check_alias(settings: ServeSettings, spec: FeatureSpec) -> None:
    """Refuse a JOURNEY_MODEL_ALIAS that no model has while others have aliases (misspelt:
    `serve --detach` waited its whole ready timeout for it). The default alias is not
    refused: before the first `journey promote` the service serves ingest meanwhile."""
    from serving.champions import registry_aliases  # scikit-learn and LightGBM: not for stop

    alias = settings.model_alias
    if "model_alias" not in settings.model_fields_set:
        return
    try:
        known = registry_aliases(client_for(settings.tracking_uri), spec)
    except RegistryError as exc:  # the service says so on /readyz; nothing to compare with
        typer.echo(f"warning: {exc}: JOURNEY_MODEL_ALIAS={alias!r} not checked", err=True)
        return
    if not known or alias in known:
        return
    close = difflib.get_close_matches(alias, sorted(known), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"setting JOURNEY_MODEL_ALIAS={alias!r}: no model in the registry "
                      f"({settings.tracking_uri}) has this alias; its aliases are "
                      f"{', '.join(sorted(known))}{hint}")


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 3000,
    workers: Annotated[int, typer.Option(
        min=1, help="Service processes: only 1 (the event store has one writer; see below).")
    ] = 1,
    detach: Annotated[bool, typer.Option(help="Run in the background; `journey stop` ends "
                                              "it. Returns once the service is ready.")] = False,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness "
                                                      "(--detach).")] = 180.0,
    ssl_certfile: Annotated[Path | None, typer.Option(
        "--ssl-certfile", help="Serve HTTPS with this PEM certificate (and its chain); "
        "with --ssl-keyfile.")] = None,
    ssl_keyfile: Annotated[Path | None, typer.Option(
        "--ssl-keyfile", help="The certificate's private key (PEM, not encrypted).")] = None,
) -> None:
    """Start the prediction service: the API at http://HOST:PORT/v1 (docs at /v1/docs).

    It serves the champion models from the MLflow registry and every customer's history
    from the event store; over HTTPS with --ssl-certfile and --ssl-keyfile (or behind a
    TLS-terminating reverse proxy: README, "Serving").

    The embedded DuckDB event store has a single writer, this process, so the service runs one
    worker; scale out with replicas, each with its own store."""
    from serving.service_files import load_service_files  # imports scikit-learn, as stop must not

    settings = ServeSettings()  # every service setting checked here, not in the service's log
    if workers != 1:
        raise ConfigError(
            f"--workers {workers}: the embedded event store ({settings.store_path}) has one "
            "writer, so one service process serves it; run replicas behind a load balancer")
    tls = check_tls(ssl_certfile, ssl_keyfile)
    if tls is not None and tls.key_exposed:
        typer.echo(f"warning: --ssl-keyfile {tls.keyfile} may be read by other users; "
                   f"`chmod 600 {tls.keyfile}`", err=True)
    check_working_folder()
    check_deployment(settings)
    check_keys(settings)
    # The files the service loads (trigger rules, catalog, ...): as it loads them, so a bad one
    # is its loader's one line here, not a traceback in serve.log.
    spec = load_service_files(settings).spec
    check_alias(settings, spec)
    # Foreground or not, before the port (a running service of this home holds it): a second
    # service could not open the store and would answer 503 for good.
    pid_file = settings.home / "serve.pid"
    _refuse_running(pid_file, settings.home)
    check_store_free(settings.store_path)
    check_port_free(host, port)
    env = service_env(settings)
    cmd = _command(host, port, tls)
    reads = {"scores": settings.scores_path, "store": settings.store_path}
    if not detach:
        # The service keeps this PID (and its start time) through the exec: recorded, `journey
        # score` sees which snapshots it shows, `journey relocate` that it runs, and `journey
        # stop` ends it as Ctrl-C does. Left behind when it ends, the record reads as stale.
        _write_pid_file(pid_file, os.getpid(), reads, "nothing was started")
        os.execve(cmd[0], cmd, env)
    _detached(cmd, env, settings.home, f"{'https' if tls else 'http'}://{host}:{port}",
              ready_timeout, tls, reads)


def _detached(cmd: list[str], env: dict[str, str], home: Path, base: str,
              ready_timeout: float, tls: Tls | None,
              reads: Mapping[str, Path] | None = None) -> None:
    """Start the service in the background and return once it is ready (or has no champion
    yet); stopped again when it cannot become ready. ``reads``: the folders it reads, for
    its PID file (``write_pid_file``)."""
    pid_file, log_file = home / "serve.pid", home / "serve.log"
    home.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        _write_pid_file(pid_file, proc.pid, reads, "the service was stopped again")
    except ConfigError:
        stop_spawned(proc)
        raise
    try:
        no_models = wait_ready(f"{base}/v1/readyz", proc, ready_timeout, log_file,
                               lambda why: typer.echo(f"waiting for the service: {why}",
                                                      err=True),
                               tls.probe_context() if tls else None)
    except ConfigError:
        stop_spawned(proc)
        pid_file.unlink(missing_ok=True)
        raise
    if no_models is not None:
        typer.echo(f"warning: the service takes events (POST /v1/events) but cannot predict "
                   f"yet: {no_models}. Once promoted, `POST {base}/v1/admin/reload` (admin "
                   "key) loads the champions; until then predictions answer 503", err=True)
    typer.echo(f"serving {base}/v1 (docs {base}/v1/docs), PID {proc.pid}, log {log_file}; "
               "stop it with `journey stop`")


def _write_pid_file(pid_file: Path, pid: int, reads: Mapping[str, Path] | None, then: str
                    ) -> None:
    try:
        write_pid_file(pid_file, pid, reads)
    except OSError as exc:  # a full or read-only home: `journey stop` could not find it
        raise ConfigError(f"cannot write {pid_file} ({exc.strerror or exc}): {then}; free "
                          "space in (or make writable) the home, then run again") from exc


def _refuse_running(pid_file: Path, home: Path) -> None:
    recorded = read_pid_file(pid_file, home)
    if recorded is None:
        return
    if recorded.stale is None:
        raise ConfigError(f"a service is already running (PID {recorded.pid}, {pid_file}); "
                          "stop it with `journey stop`")
    typer.echo(f"{pid_file} is stale ({recorded.stale}); replacing it", err=True)


def check_store_free(path: Path) -> None:
    """Refuse a store another process holds (another home's service on the same store, an
    ingest, a training run): the service could never open it."""
    held = store_holder(path)
    if held is not None:
        raise ConfigError(held_by(path, held.pid, held.writes))


@app.command()
@friendly_errors
def stop(
    timeout: Annotated[float | None, typer.Option(
        help="Seconds to wait before killing [default: the service's "
             "JOURNEY_STOP_GRACE_SECONDS + 10].")] = None,
) -> None:
    """Stop the home's service (`journey serve`, detached or not), draining its requests first.

    It refuses new connections, answers the requests it has received (within
    JOURNEY_STOP_GRACE_SECONDS), then closes its store."""
    home = Settings().home
    pid_file = home / "serve.pid"
    recorded = read_pid_file(pid_file, home)
    if recorded is None:
        raise ConfigError(f"no running service recorded ({pid_file} does not exist)")
    if recorded.pid is None or recorded.stale is not None:
        pid_file.unlink(missing_ok=True)
        typer.echo(f"{pid_file} was stale ({recorded.stale}): removed it; no process signalled")
        return
    if timeout is None:
        timeout = stop_timeout(recorded.pid, GRACE_DEFAULT)
    how = terminate(recorded.pid, start_time(recorded.pid), home, timeout)
    pid_file.unlink(missing_ok=True)
    typer.echo(f"service PID {recorded.pid} {how}")


KeysFile = Annotated[Path | None, typer.Option(
    "--file", help="Key file (env JOURNEY_API_KEYS; default $JOURNEY_HOME/api_keys.yaml).")]


def _keys_file(file: Path | None) -> Path:
    return file or ServeSettings().keys_path


@keys_app.command("create")
@friendly_errors
def keys_create(
    name: Annotated[str, typer.Argument(help="Who or what uses the key.")],
    role: Annotated[Role, typer.Option(help="What the key may do.")],
    file: KeysFile = None,
) -> None:
    """Create a key and print it: the only time it is shown (only its hash is stored)."""
    path = _keys_file(file)
    typer.echo(create_key(path, name, role))
    typer.echo(f"key {name!r} ({role.value}) added to {path}; a running service accepts it "
               "within a second", err=True)


@keys_app.command("list")
@friendly_errors
def keys_list(file: KeysFile = None) -> None:
    """Names and roles of the keys (never the keys)."""
    path = _keys_file(file)
    ring = KeyRing.load(path)
    if not len(ring):
        typer.echo(f"no keys in {path}")
    for name, role in ring.names():
        typer.echo(f"{name}\t{role.value}")


@keys_app.command("revoke")
@friendly_errors
def keys_revoke(name: str, file: KeysFile = None) -> None:
    """Remove a key (a running service refuses it within a second)."""
    path = _keys_file(file)
    if not revoke_key(path, name):
        raise ConfigError(f"{path}: no key named {name!r}")
    typer.echo(f"revoked {name!r}")
