"""The dashboard browser tests' server process, Chromium's settings and a tab's record."""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from serving.keys import Role

if TYPE_CHECKING:  # no run-time import: Playwright may be missing, and the conftest imports this
    from playwright.sync_api import Page

    from tests.serving.conftest import Served

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[3]  # the project
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 20_000


@dataclass
class Server:
    url: str  # the app's root, no trailing slash
    served: Served
    log: Path
    client: httpx.Client = field(repr=False)

    def get(self, path: str, role: Role = Role.marketer,
            params: list[tuple[str, str]] | dict[str, str] | None = None) -> httpx.Response:
        pairs = tuple(params.items() if isinstance(params, dict) else params or ())
        r = self.client.get(f"{self.url}/{path}", params=pairs,
                            headers=self.served.headers(role))
        assert r.status_code == 200, r.text
        return r

    def key(self, role: Role = Role.marketer) -> str:
        return self.served.keys[role]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_ready(proc: subprocess.Popen[bytes], client: httpx.Client, url: str, log: Path,
               timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the server exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if client.get(f"{url}/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    pytest.fail(f"the server was not ready after {timeout:.0f} s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@dataclass
class Tab:
    page: Page
    errors: list[str]
    offsite: list[str]
