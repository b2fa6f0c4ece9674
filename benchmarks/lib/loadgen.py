"""A minimal HTTP/1.1 keep-alive client and a paced load generator for latency benchmarks.

Generic Python clients (httpx, requests) spend 0.3-1 ms of their own per request, as much as
the service being measured; this one writes the request bytes and reads the response by its
Content-Length (or chunks), so the figures are the server's. Paced runs are open-loop: latency
counts from each request's scheduled time, so a stalled server cannot hide its backlog
(no coordinated omission).
"""

from __future__ import annotations

import gc
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


class HttpError(RuntimeError):
    pass


class Connection:
    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def request(self, method: str, path: str, body: object = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        payload = b"" if body is None else (
            body if isinstance(body, bytes) else json.dumps(body).encode())
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}",
                 f"Content-Length: {len(payload)}"]
        if payload:
            lines.append("Content-Type: application/json")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        return self._response()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise HttpError("connection closed by the server")
        self.buf += chunk

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _response(self) -> tuple[int, bytes]:
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, v in
                (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        if "content-length" in hdrs:
            return status, self._take(int(hdrs["content-length"]))
        if hdrs.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while (size := int(self._line().split(b";")[0], 16)) > 0:
                parts.append(self._take(size))
                self._take(2)
            self._take(2)
            return status, b"".join(parts)
        raise HttpError("response without a length")


Request = tuple[str, str, object]  # method, path, JSON body


@dataclass
class Run:
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    def pct(self, q: float) -> float:
        return float(np.percentile(self.latencies_ms, q)) if self.latencies_ms else float("nan")

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds if self.seconds else 0.0


def paced(host: str, port: int, rate: float, seconds: float, make: Callable[[int], Request],
          headers: dict[str, str]) -> Run:
    """``rate`` requests a second for ``seconds`` on one keep-alive connection; latency from
    each request's scheduled start."""
    conn, run = Connection(host, port), Run()
    n = int(rate * seconds)
    quiet = _no_gc()
    start = time.perf_counter() + 0.05
    try:
        for i in range(n):
            due = start + i / rate
            # Sleep until just before the due time, spin the rest: accurate to ~0.05 ms
            # without the generator taking a core away from the server it measures.
            if (ahead := due - time.perf_counter()) > 0.0004:
                time.sleep(ahead - 0.0003)
            while time.perf_counter() < due:
                pass
            method, path, body = make(i)
            status, _ = conn.request(method, path, body, headers)
            run.latencies_ms.append((time.perf_counter() - due) * 1000)
            run.errors += status >= 400
    finally:
        conn.close()
        quiet()
    run.seconds = time.perf_counter() - start
    return run


def saturate(host: str, port: int, clients: int, seconds: float, make: Callable[[int], Request],
             headers: dict[str, str]) -> Run:
    """``clients`` connections, each sending its next request as soon as the last answered."""
    run, lock = Run(), threading.Lock()
    stop = time.perf_counter() + seconds

    def worker(w: int) -> None:
        conn, i = Connection(host, port), w
        mine: list[float] = []
        errors = 0
        try:
            while (t0 := time.perf_counter()) < stop:
                method, path, body = make(i)
                status, _ = conn.request(method, path, body, headers)
                mine.append((time.perf_counter() - t0) * 1000)
                errors += status >= 400
                i += clients
        finally:
            conn.close()
        with lock:
            run.latencies_ms += mine
            run.errors += errors

    quiet = _no_gc()
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(w,)) for w in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    run.seconds = time.perf_counter() - started
    quiet()
    return run


@dataclass(frozen=True)
class Sample:
    due_s: float  # when it was due, seconds from the run's start
    kind: str
    latency_ms: float  # from when it was due to the end of the answer
    status: int  # 0: the connection failed


def open_loop(host: str, port: int, rate: float, seconds: float,
              make: Callable[[int], tuple[str, Request]], headers: dict[str, str],
              connections: int = 8) -> list[Sample]:
    """Request ``i`` is due at start + i / ``rate`` whatever the earlier ones are doing, on
    one of ``connections`` keep-alive connections. Bounded: at most ``connections`` requests
    are in flight; a later one waits for a free connection and its latency still counts from
    when it was due, so a stalled server shows as latency, not as a lower rate."""
    n, lock = int(rate * seconds), threading.Lock()
    samples: list[Sample] = []
    counter = iter(range(n))
    start = time.perf_counter() + 0.05

    def worker() -> None:
        conn: Connection | None = None
        mine: list[Sample] = []
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                break
            due = start + i / rate
            if (ahead := due - time.perf_counter()) > 0:
                time.sleep(ahead)
            kind, (method, path, body) = make(i)
            try:
                conn = conn or Connection(host, port)
                status, _ = conn.request(method, path, body, headers)
            except (OSError, HttpError):  # a reset or refused connection: an error, reconnect
                if conn is not None:
                    conn.close()
                status, conn = 0, None
            mine.append(Sample(due - start, kind, (time.perf_counter() - due) * 1000, status))
        if conn is not None:
            conn.close()
        with lock:
            samples.extend(mine)

    quiet = _no_gc()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(connections)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        quiet()
    return sorted(samples, key=lambda s: s.due_s)


def _no_gc() -> Callable[[], None]:
    """The generator's own collector off for a run: a full collection of a benchmark process
    that has loaded pandas and MLflow pauses ~100 ms, which would be charged to the server."""
    gc.collect()
    gc.freeze()
    gc.disable()

    def restore() -> None:
        gc.enable()
        gc.unfreeze()

    return restore
