"""Watch a behavioural trigger fire: `python examples/trigger_demo.py URL KEY_FILE [PORT]`.

Runs a webhook receiver on 127.0.0.1:PORT (default 8787, where examples/demo_triggers.yaml
sends), picks a customer the newest score snapshot has in the consideration stage, sends the
service an add-to-cart touchpoint for them a minute before the service's clock, and waits for
the `entered_decision` webhook. The receiver checks the signature the way a marketing
automation tool would: HMAC-SHA256 of "<X-Journey-Timestamp>.<raw body>" under the shared
secret (JOURNEY_WEBHOOK_SECRET). The key needs the ingest and marketer roles (an admin key)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import queue
import sys
import threading
import time
import urllib.parse
import urllib.request
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

WAIT_SECONDS = 30.0


def call(url: str, key: str, path: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/v1/{path}", data=data, method="POST" if data
                                     else "GET", headers={"Content-Type": "application/json",
                                                          "X-API-Key": key})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def receiver(port: int, secret: bytes, inbox: queue.Queue[tuple[bool, dict[str, Any]]]
             ) -> ThreadingHTTPServer:
    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # http.server calls do_<METHOD>
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            stamp = self.headers.get("X-Journey-Timestamp", "")
            mac = hmac.new(secret, stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
            signed = hmac.compare_digest(f"sha256={mac}",
                                         self.headers.get("X-Journey-Signature", ""))
            self.send_response(200 if signed else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()
            inbox.put((signed, json.loads(raw)))

        def log_message(self, *args: Any) -> None:  # the demo prints what matters itself
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def pick_customer(url: str, key: str) -> tuple[str, datetime]:
    """A customer in the consideration stage, and the snapshot's as-of time."""
    query = urllib.parse.urlencode({"stage": "consideration", "sort": "conversion",
                                    "limit": 20})
    page = call(url, key, f"segments/customers?{query}")
    rows = [c for c in page["customers"] if (c.get("recency_days") or 0) >= 1]
    if not rows:
        sys.exit("no customer in the consideration stage in the newest score snapshot")
    as_of = datetime.fromisoformat(page["snapshot"]["as_of"].replace("Z", "+00:00"))
    return str(rows[0]["customer_id"]), as_of


def firing_status(url: str, key: str, customer: str) -> str:
    """The firing's delivery status as the service recorded it (it records the receiver's
    answer just after the receiver has the webhook)."""
    query = urllib.parse.urlencode({"rule": "entered_decision", "customer_id": customer})
    status = "none"
    for _ in range(50):
        fired = call(url, key, f"triggers/firings?{query}")["firings"]
        status = fired[0]["status"] if fired else "none"
        if status == "delivered":
            break
        time.sleep(0.1)
    return status


def main() -> None:
    url, key_file = sys.argv[1:3]
    port = int(sys.argv[3]) if len(sys.argv) > 3 else 8787
    secret = os.environ.get("JOURNEY_WEBHOOK_SECRET")
    if not secret:
        sys.exit("set JOURNEY_WEBHOOK_SECRET to the secret the service signs with")
    key = Path(key_file).read_text(encoding="utf-8").strip()
    inbox: queue.Queue[tuple[bool, dict[str, Any]]] = queue.Queue()
    server = receiver(port, secret.encode(), inbox)
    try:
        customer, as_of = pick_customer(url, key)
        when = (as_of - timedelta(minutes=1)).isoformat()
        event = {"event_id": f"demo-cart-{customer}-{int(time.time())}",
                 "customer_id": customer, "event_type": "add_to_cart", "ts": when,
                 "channel": "web"}
        call(url, key, "events", {"events": [event]})
        print(f"sent add_to_cart for {customer} at {when}; waiting for the webhook on "
              f"127.0.0.1:{port} ...")
        deadline = time.monotonic() + WAIT_SECONDS
        while time.monotonic() < deadline:
            try:
                signed, body = inbox.get(timeout=max(deadline - time.monotonic(), 0.1))
            except queue.Empty:
                break
            if body.get("customer_id") == customer and body.get("rule") == "entered_decision":
                print(f"webhook received (signature {'verified' if signed else 'WRONG'}):")
                print(json.dumps(body, indent=2))
                print(f"GET /v1/triggers/firings -> {firing_status(url, key, customer)}")
                sys.exit(0 if signed else 1)
        sys.exit(f"no entered_decision webhook for {customer} within {WAIT_SECONDS:.0f} s: "
                 "is the service running with JOURNEY_TRIGGERS=examples/demo_triggers.yaml?")
    finally:
        server.shutdown()


if __name__ == "__main__":
    main()
