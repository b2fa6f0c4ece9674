"""The real service: `journey serve --detach` starts `bentoml serve` on a free port, the API
answers over HTTP as it does in-process, `journey stop` ends it by its PID; and `bentoml build`
packages the service from bentofile.yaml."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.keys import Role
from tests.serving.conftest import AS_OF, Served

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def call(url: str, body: dict[str, object] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, headers={
        "Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def serve_detached(served: Served, folder: Path, port: int, **settings: str
                   ) -> tuple[Path, dict[str, str], subprocess.CompletedProcess[str]]:
    """`journey serve --detach` of the served models and keys, on a copy of the store, with a
    new home in ``folder`` (JOURNEY_* ``settings`` added): the home, the environment a
    `journey stop` needs, and the finished start."""
    home = folder / "home"
    env = {**os.environ, "JOURNEY_HOME": str(home),
           "JOURNEY_STORE": str(served.store_copy(folder / "store")),
           "JOURNEY_MLFLOW_TRACKING_URI": served.tracking_uri,
           "JOURNEY_API_KEYS": str(served.home / "api_keys.yaml"),
           "JOURNEY_AS_OF": AS_OF.isoformat(), **settings}
    started = subprocess.run([str(BIN / "journey"), "serve", "--detach", "--port", str(port)],
                             env=env, capture_output=True, text=True, timeout=240)
    assert started.returncode == 0, started.stderr + started.stdout
    return home, env, started


@pytest.mark.slow
def test_journey_serve_runs_bentoml(served: Served, app_client: TestClient,
                                    tmp_path: Path) -> None:
    port = free_port()
    home, env, started = serve_detached(served, tmp_path, port)
    pid = json.loads((home / "serve.pid").read_text())["pid"]
    try:
        base = f"http://127.0.0.1:{port}"
        assert f"PID {pid}" in started.stdout
        assert call(f"{base}/readyz")[0] == 200  # BentoML's probe asks the service
        status, body = call(f"{base}/v1/predict", {"customer_id": "C0000001"},
                            served.headers(Role.predict))
        assert status == 200, body
        over_http = json.loads(body)
        in_process = app_client.post("/predict", json={"customer_id": "C0000001"},
                                     headers=served.headers(Role.predict)).json()
        assert over_http == in_process
        status, body = call(f"{base}/v1/predict", {"customer_id": "C0000001"})
        assert status == 401 and json.loads(body)["code"] == "missing_key"
        assert call(f"{base}/metrics")[0] == 404  # BentoML's unauthenticated metrics: off
        status, body = call(f"{base}/v1/metrics", headers=served.headers(Role.admin))
        assert status == 200 and b"journey_requests_total" in body
        assert call(f"{base}/v1/docs")[0] == 200
        # The service's own records reach serve.log (BentoML's logging config dropped them).
        log = (home / "serve.log").read_text(errors="replace")
        assert "journey.serving: loaded" in log and "journey.serving: serving models" in log
        again = subprocess.run([str(BIN / "journey"), "serve", "--detach", "--port",
                                str(port)], env=env, capture_output=True, text=True)
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        stopped = subprocess.run([str(BIN / "journey"), "stop"], env=env,
                                 capture_output=True, text=True, timeout=60)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert not (home / "serve.pid").exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert not _listening(port)  # the worker went with it


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_serve_refuses_several_workers(tmp_path: Path) -> None:
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path)}
    r = subprocess.run([str(BIN / "journey"), "serve", "--workers", "2"], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 2 and "one writer" in r.stderr
    r = subprocess.run([str(BIN / "journey"), "stop"], env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "no running service" in r.stderr


def test_service_requirements_follow_pyproject() -> None:
    """bentofile.yaml installs serving/requirements.txt: pyproject's pins (Spark is an extra)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    assert not any(d.startswith("pyspark") for d in wanted)
    lines = (ROOT / "serving" / "requirements.txt").read_text().splitlines()
    assert {ln for ln in lines if ln and not ln.startswith("#")} == wanted


@pytest.mark.slow
def test_bentoml_build(tmp_path: Path) -> None:
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"),
           "BENTOML_DO_NOT_TRACK": "true"}
    r = subprocess.run([str(BIN / "bentoml"), "build", str(ROOT)], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr + r.stdout
    tag = re.search(r"journey:(\w+)", r.stdout + r.stderr)
    assert tag, r.stdout
    bento = tmp_path / "bentoml" / "bentos" / "journey" / tag.group(1)
    assert (bento / "src" / "serving" / "service.py").exists()
    # What the service reads at run time: configuration and the dashboard's assets.
    for part in ("features/config/features.yaml", "models/config/actions.yaml",
                 "models/config/journey_map.yaml", "serving/config/segments.yaml",
                 "serving/static/dashboard.html", "serving/static/dashboard.js"):
        assert (bento / "src" / part).exists(), part
    assert not (bento / "src" / "tests").exists() and not (bento / "src" / "var").exists()
    reqs = (bento / "env" / "python" / "requirements.txt").read_text()
    assert "bentoml==1.4.39" in reqs and "lightgbm" in reqs
