"""`journey serve`, `journey stop` and `journey keys`: run the prediction service and manage
its API keys. The service itself lives in ``serving/`` (the only layer that imports BentoML
and FastAPI); these commands start it as ``bentoml serve`` in its own process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Annotated

import typer

from features.errors import ConfigError
from journey.common import app, friendly_errors
from journey.settings import Settings
from serving.keys import KeyRing, Role, create_key, revoke_key

SERVICE = "serving.service:Journey"
keys_app = typer.Typer(help="API keys of the prediction service (stored hashed).",
                       no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def service_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    env.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    env.setdefault("DO_NOT_TRACK", "true")
    env.setdefault("BENTOML_HOME", str((settings.home / "bentoml").resolve()))
    return env


def _command(host: str, port: int) -> list[str]:
    return [str(Path(sys.executable).parent / "bentoml"), "serve", SERVICE,
            "--host", host, "--port", str(port)]


def wait_ready(url: str, proc: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    """Poll ``url`` until it answers 200; False on timeout or when ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.25)
    return False


@app.command()
@friendly_errors
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 3000,
    workers: Annotated[int, typer.Option(min=1, help="Service processes (see below).")] = 1,
    detach: Annotated[bool, typer.Option(help="Run in the background; `journey stop` ends "
                                              "it. Returns once the service is ready.")] = False,
    ready_timeout: Annotated[float, typer.Option(help="Seconds to wait for readiness "
                                                      "(--detach).")] = 180.0,
) -> None:
    """Start the prediction service: the API at http://HOST:PORT/v1 (docs at /v1/docs).

    It serves the champion models from the MLflow registry and every customer's history
    from the event store.

    The embedded DuckDB event store has a single writer, this process, so the service runs one
    worker; scale out with replicas, each with its own store."""
    settings = Settings()
    if workers != 1:
        raise ConfigError(
            f"--workers {workers}: the embedded event store ({settings.store_path}) has one "
            "writer, so one service process serves it; run replicas behind a load balancer")
    env = service_env(settings)
    cmd = _command(host, port)
    if not detach:
        os.execve(cmd[0], cmd, env)  # the service keeps this PID: stop it with Ctrl-C or kill
    pid_file, log_file = settings.home / "serve.pid", settings.home / "serve.log"
    if pid_file.exists() and _alive(int(pid_file.read_text())):
        raise ConfigError(f"a service is already running (PID {pid_file.read_text().strip()}, "
                          f"{pid_file}); stop it with `journey stop`")
    settings.home.mkdir(parents=True, exist_ok=True)
    with log_file.open("ab") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    pid_file.write_text(str(proc.pid))
    base = f"http://{host}:{port}"
    if not wait_ready(f"{base}/v1/readyz", proc, ready_timeout):
        _terminate(proc.pid)
        pid_file.unlink(missing_ok=True)
        tail = log_file.read_text(errors="replace").splitlines()[-15:]
        raise ConfigError(f"the service did not become ready within {ready_timeout:.0f}s; "
                          f"{log_file} ends with:\n" + "\n".join(tail))
    typer.echo(f"serving {base}/v1 (docs {base}/v1/docs), PID {proc.pid}, log {log_file}; "
               "stop it with `journey stop`")


@app.command()
@friendly_errors
def stop(
    timeout: Annotated[float, typer.Option(help="Seconds to wait before killing.")] = 20.0,
) -> None:
    """Stop a service started with `journey serve --detach`."""
    pid_file = Settings().home / "serve.pid"
    if not pid_file.exists():
        raise ConfigError(f"no running service recorded ({pid_file} does not exist)")
    pid = int(pid_file.read_text())
    how = _terminate(pid, timeout) if _alive(pid) else "was not running"
    pid_file.unlink(missing_ok=True)
    typer.echo(f"service PID {pid} {how}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _terminate(pid: int, timeout: float = 20.0) -> str:
    """SIGTERM (BentoML stops its workers), then SIGKILL to the whole session if needed."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return "was not running"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child: poll for its end
            done = 0 if _alive(pid) else pid
        if done == pid or not _alive(pid):
            return "stopped"
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        os.kill(pid, signal.SIGKILL)
    return "killed (it did not stop within the timeout)"


KeysFile = Annotated[Path | None, typer.Option(
    "--file", help="Key file (env JOURNEY_API_KEYS; default $JOURNEY_HOME/api_keys.yaml).")]


def _keys_file(file: Path | None) -> Path:
    from serving.settings import ServeSettings

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
