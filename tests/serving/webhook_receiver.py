"""A local webhook receiver for the trigger tests: ``http.server`` on 127.0.0.1 (a free port) in
a thread. It records every request and checks its signature with its own HMAC computation
(not ``serving.webhooks``), and can fail the first N attempts, fail always, or answer slowly."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

SECRET = "test-webhook-secret-0123456789"


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    signed: bool  # the signature matches the timestamp and the raw body
    answered: int  # the status the receiver gave

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    ts = headers.get("x-journey-timestamp", "")
    sent = headers.get("x-journey-signature", "")
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = ts.isdigit() and abs(time.time() - int(ts)) < 300
    return fresh and hmac.compare_digest(f"sha256={mac}", sent)


class Receiver:
    def __init__(self, secret: str = SECRET, fail_first: int = 0, always_fail: bool = False,
                 delay: float = 0.0) -> None:
        self.secret, self.fail_first, self.always_fail = secret, fail_first, always_fail
        self.delay = delay
        self.requests: list[Received] = []
        self._lock = threading.Condition()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # http.server calls do_<METHOD>
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner._handle(self, body)

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def _handle(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if self.delay:
            time.sleep(self.delay)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self._lock:
            failing = self.always_fail or len(self.requests) < self.fail_first
            status = 500 if failing else 200
            self.requests.append(Received(headers, body, signature_ok(self.secret, headers,
                                                                      body), status))
            self._lock.notify_all()
        handler.send_response(status)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        """The first ``n`` requests, once they have arrived (fails after ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while len(self.requests) < n:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.requests)} of {n} webhooks arrived"
                self._lock.wait(left)
            return list(self.requests[:n])

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.server.shutdown()
        self.server.server_close()
