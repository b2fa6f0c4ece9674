"""The detached service process of `journey serve --detach`: its PID file, the checks made
before it is started (the port is free) and while it starts (its readiness), and stopping it.

A PID file can outlive its process and the PID be reused by any other program, so the file
records the process's start time too, and a PID is signalled only when /proc shows it is still
that process, running this service (`bentoml serve serving.service:Journey`) for this home.
"""

from __future__ import annotations

import errno
import json
import math
import os
import signal
import socket
import ssl
import stat
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from features.errors import ConfigError
from training.stale_runs import start_time  # one reader of /proc/PID/stat for both

SERVICE = "serving.service:Journey"
# Load errors a retry will not fix: the store is opened only at start (serving/state.py
# prefixes its error with this), and a registered artifact that is missing or corrupt stays
# so (models/registry.py's load_native). A missing champion is not here: promoting one and
# reloading fixes it while the service runs.
PERMANENT_ERRORS = ("event store not loaded:", "RegistryError: cannot load ")
# No champion yet (serving/champions.py's wording), or one trained on feature definitions the
# current spec does not compute (every champion after an upgrade that changed them): models
# load after the histories, so the service already takes events. Training and promoting fix
# the rest while it runs (the gate judges a challenger against such a champion as against
# none); waiting for them would only time out and stop a service that works.
NO_CHAMPION = " no version with alias "
OTHER_DEFINITIONS = " was trained on feature definitions "


@dataclass(frozen=True)
class Recorded:
    """What a PID file says: the PID (None when the file holds none), why the file does not
    name this home's running service (None: it does), and the score snapshots folder and event
    store the service reads (None: not recorded, by a `journey serve` from before it did)."""

    pid: int | None
    stale: str | None
    scores: Path | None = None
    store: Path | None = None


def _proc(pid: int, name: str) -> bytes | None:
    try:
        return (Path("/proc") / str(pid) / name).read_bytes()
    except OSError:  # gone, or another user's: either way not ours to signal
        return None


def _environ(pid: int) -> dict[bytes, bytes] | None:
    raw = _proc(pid, "environ")
    if raw is None:
        return None
    return dict(item.split(b"=", 1) for item in raw.split(b"\0") if b"=" in item)


def _home_of(pid: int) -> Path | None:
    """The home a service process serves: its JOURNEY_HOME (`journey serve` always sets it),
    else the folder holding its BENTOML_HOME (services started before it did), relative to
    the process's working folder."""
    env = _environ(pid)
    if env is None:
        return None
    home = env.get(b"JOURNEY_HOME")
    if home is None and b"BENTOML_HOME" in env:
        home = os.fsencode(Path(os.fsdecode(env[b"BENTOML_HOME"])).parent)
    if home is None:
        return None
    try:
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    return (cwd / os.fsdecode(home)).resolve()


def why_not_ours(pid: int, started: str | None, home: Path) -> str | None:
    """None when ``pid`` is this home's service (and, when ``started`` is known, the very
    process recorded); else what it is instead."""
    now = start_time(pid)
    if now is None:
        return f"PID {pid} is not running"
    if started is not None and now != started:
        return f"PID {pid} is now another process (started after the service recorded)"
    argv = [a.decode(errors="replace") for a in (_proc(pid, "cmdline") or b"").split(b"\0") if a]
    if "serve" not in argv or SERVICE not in argv:
        return f"PID {pid} runs `{' '.join(argv)[:120]}`, not a Journey service"
    theirs = _home_of(pid)
    if theirs != home.resolve():
        where = f"home {theirs}" if theirs else "an unknown home"
        return f"PID {pid} is the Journey service of {where}, not of {home.resolve()}"
    return None


def read_pid_file(path: Path, home: Path) -> Recorded | None:
    """The file's record checked against /proc; None when there is no file."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the service's PID file: {exc}") from exc
    try:  # a bare PID: written by `journey serve` before it recorded the start time
        record: Any = json.loads(text)
        if isinstance(record, int):
            record = {"pid": record}
        pid, started = int(record["pid"]), record.get("start")
        reads = {k: Path(v) for k in ("scores", "store") if isinstance(v := record.get(k), str)}
    except (ValueError, TypeError, KeyError, AttributeError):
        return Recorded(None, f"it holds no PID record ({text.strip()[:40]!r})")
    return Recorded(pid, why_not_ours(pid, None if started is None else str(started), home),
                    **reads)


def write_pid_file(path: Path, pid: int, reads: Mapping[str, Path] | None = None) -> None:
    """The service's PID and start time; ``reads``: the folders it reads (``scores``,
    ``store``), so `journey score` knows which snapshots a running service shows."""
    record: dict[str, Any] = {"pid": pid, "start": start_time(pid)}
    record.update({k: str(v.resolve()) for k, v in (reads or {}).items()})
    tmp = path.with_suffix(".pid.tmp")
    try:
        tmp.write_text(json.dumps(record))
        tmp.replace(path)
    except OSError:
        tmp.unlink(missing_ok=True)  # an empty one was left on a full disk
        raise


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on: the service would die on it, and whatever
    answers there (another home's service) would look like this one."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port,
                                                             type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: cannot be resolved ({exc.strerror})") from exc
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds it
        try:
            s.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use by another process (another "
                                  "service?); choose another --port or stop that one") from exc
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


@dataclass(frozen=True)
class Tls:
    """The certificate and key `journey serve --ssl-certfile/--ssl-keyfile` passes to the
    server (BentoML's own, hidden, options of the same names, on to uvicorn)."""

    certfile: Path
    keyfile: Path

    def args(self) -> list[str]:
        return ["--ssl-certfile", str(self.certfile), "--ssl-keyfile", str(self.keyfile)]

    def probe_context(self) -> ssl.SSLContext:
        """What the readiness probe trusts: exactly the configured certificate. Not the
        system's CAs (a self-signed certificate, an internal CA), and not nothing: whatever
        else answers on the port (another service) is not taken for this one. The name is
        not checked: the probe calls --host (127.0.0.1, 0.0.0.0), not the certificate's
        name."""
        context = ssl.create_default_context(cafile=str(self.certfile))
        context.check_hostname = False
        # The server's own certificate as the trust anchor, also when a CA issued it.
        context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
        return context

    @property
    def key_exposed(self) -> bool:
        """Others than its owner may read the private key."""
        return bool(stat.S_IMODE(self.keyfile.stat().st_mode) & 0o077)


def _no_password() -> bytes:
    return b""  # an encrypted key fails to load instead of OpenSSL prompting on the terminal


def check_tls(certfile: Path | None, keyfile: Path | None) -> Tls | None:
    """The TLS files, checked as the server will load them (None: plain HTTP); ConfigError
    naming the file and what is wrong, before anything starts."""
    if certfile is None and keyfile is None:
        return None
    if certfile is None or keyfile is None:
        given = "--ssl-certfile" if keyfile is None else "--ssl-keyfile"
        raise ConfigError(f"{given} needs its pair: HTTPS takes --ssl-certfile (the PEM "
                          "certificate, with its chain) and --ssl-keyfile (its private key)")
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if not path.is_file():
            raise ConfigError(f"{flag} {path}: no such file")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(certfile, keyfile,
                                                                 password=_no_password)
    except ssl.SSLError as exc:
        raise ConfigError(f"--ssl-certfile {certfile} with --ssl-keyfile {keyfile}: not a PEM "
                          "certificate and its unencrypted private key "
                          f"({exc.reason or exc}); an encrypted key must be decrypted first "
                          "(the service cannot ask for its password)") from exc
    except OSError as exc:
        raise ConfigError(f"--ssl-certfile {certfile} or --ssl-keyfile {keyfile} cannot be "
                          f"read: {exc.strerror or exc}") from exc
    return Tls(certfile.resolve(), keyfile.resolve())


def _probe(url: str, context: ssl.SSLContext | None = None
           ) -> tuple[int, dict[str, Any]] | None:
    """readyz's status and JSON body; None while nothing answers (nor anything that shows
    the configured certificate, over HTTPS)."""
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as r:
            status, raw = r.status, r.read()
    except urllib.error.HTTPError as exc:  # 503 while loading, with the reason
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return None
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    return status, body if isinstance(body, dict) else {}


def log_tail(log_file: Path, lines: int = 15) -> str:
    try:
        tail = log_file.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"{log_file} cannot be read"
    return f"{log_file} ends with:\n" + "\n".join(tail)


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float, log_file: Path,
               say: Callable[[str], None], context: ssl.SSLContext | None = None
               ) -> str | None:
    """Return once ``url`` (the service's /v1/readyz) says ready (None), or says it has no
    champion it can serve yet (its load error: it takes events meanwhile); ConfigError as
    soon as the process exits or readyz reports a load error a retry will not fix, else at
    ``timeout``.
    Each new reason readyz gives is passed to ``say``; ``context``: an https URL's
    (``Tls.probe_context``)."""
    deadline = time.monotonic() + timeout
    last: str | None = None
    while True:
        code = proc.poll()
        if code is not None:
            said = f"; /v1/readyz last said: {last}" if last else ""
            raise ConfigError(f"the service exited with code {code} before it was ready"
                              f"{said}; {log_tail(log_file)}")
        got = _probe(url, context)
        if got is not None:
            status, body = got
            if status == 200 and body.get("ready") is True:
                return None
            message = str(body.get("message") or f"HTTP {status}")
            error = str(body.get("last_load_error") or "")
            if NO_CHAMPION in error or OTHER_DEFINITIONS in error:
                return error
            if error.startswith(PERMANENT_ERRORS):
                raise ConfigError(f"the service cannot load: {error}; a retry will not fix "
                                  f"this, so it was stopped; {log_tail(log_file, 5)}")
            if message != last:
                say(message)
                last = message
        if time.monotonic() >= deadline:
            said = last or "nothing (it never answered)"
            # A large store's histories take minutes to load (~4 min for 87M events).
            raise ConfigError(f"the service did not become ready within {timeout:.0f}s "
                              f"(--ready-timeout; a large store loads for minutes); "
                              f"/v1/readyz last said: {said}; {log_tail(log_file)}")
        time.sleep(0.25)


def stop_spawned(proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """End a service this command started (its PID cannot have been reused: it is our
    unreaped child); its workers go with its session when it has to be killed."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # started with start_new_session: its own group
        proc.wait()


def _ended_unreaped_child(pid: int) -> bool:
    """A child of this process that has ended: it stays a zombie, as the same start time,
    until this process reaps it, which it will not do while it waits here (`journey stop` run
    in the process that started the service, as tests do)."""
    fields = (_proc(pid, "stat") or b"").rsplit(b")", 1)[-1].split()
    return fields[:2] == [b"Z", str(os.getpid()).encode()]


# What `journey stop` waits beyond the service's stop grace period before killing it: the
# store's close and the rest of the shutdown (well under a second on an idle service).
STOP_MARGIN_SECONDS = 10.0
GRACE_NAME = b"JOURNEY_STOP_GRACE_SECONDS"


def stop_timeout(pid: int, default_grace: float) -> float:
    """How long `journey stop` waits for the service before killing it: the stop grace period
    it runs with (``journey serve`` spells it out in its environment; ``default_grace`` for
    one started without it) and ``STOP_MARGIN_SECONDS``."""
    raw = (_environ(pid) or {}).get(GRACE_NAME, b"")
    try:
        grace = float(raw)
    except ValueError:
        grace = default_grace
    if not 0 <= grace < math.inf:  # nan too
        grace = default_grace
    return grace + STOP_MARGIN_SECONDS


def terminate(pid: int, started: str | None, home: Path, timeout: float = 20.0) -> str:
    """SIGTERM (BentoML stops its workers; the service answers what it has received within its
    stop grace period), then SIGKILL to its session if needed; each signal only after
    checking the PID is still this home's service."""
    if why_not_ours(pid, started, home) is not None:
        return "was not running"
    started = started or start_time(pid)
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if start_time(pid) != started or _ended_unreaped_child(pid):
            return "stopped"
        time.sleep(0.2)
    if why_not_ours(pid, started, home) is not None:
        return "stopped"
    # Its own session (start_new_session), so the group is its workers and nothing else.
    if os.getpgid(pid) == pid:
        os.killpg(pid, signal.SIGKILL)
    else:
        os.kill(pid, signal.SIGKILL)
    return "killed (it did not stop within the timeout)"
