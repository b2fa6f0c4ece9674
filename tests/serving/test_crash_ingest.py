"""Crash-safe ingest: 100k events stream through POST /events of the real service process
while it is SIGKILLed (requests in flight, and once while it starts) and restarted; the client
retries every batch that was not acknowledged. Afterwards the store holds every sent event
exactly once, as sent, beside the untouched original events, and DuckDB opens cleanly.

The process is uvicorn serving ``serving.app:create_app`` (the app `journey serve` mounts in
BentoML): it is the process that holds the DuckDB file, and it has no supervisor that would
restart it behind the test's back.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from features.schema import EVENT_FIELDS
from features.store import EventStore
from serving.keys import Role
from tests.serving.conftest import AS_OF, Served
from tests.serving.test_bento import free_port

EVENTS, BATCH, CLIENTS = 100_000, 500, 3
MID_STREAM_KILLS, SEED = 4, 20250815
PREFIX = "crash-"
EVENT_TYPES = ("page_view", "product_view", "add_to_cart", "checkout", "purchase", "email_open",
               "email_click", "support_ticket", "review", "referral", "action_sent")
CHANNELS = ("search", "social", "email", "display", "direct", "app", "store", "call_center")
ACTIONS = ("discount_email", "retention_call", "push_reminder")
ZONES = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))


def make_events(n: int, seed: int) -> list[dict[str, Any]]:
    """Events as a sender would post them: known and new customers, several time zones,
    microseconds, optional value, action and (nested, non-ASCII) properties."""
    rng = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        kind = rng.choice(EVENT_TYPES)
        when = start + timedelta(microseconds=rng.randrange(330 * 86_400 * 10**6))
        customer = (f"C{rng.randint(1, 3000):07d}" if rng.random() < 0.8
                    else f"crash-new-{rng.randrange(2000):04d}")
        out.append({
            "event_id": f"{PREFIX}{i:06d}", "customer_id": customer,
            "ts": when.astimezone(rng.choice(ZONES)).isoformat(),
            "event_type": kind, "channel": rng.choice(CHANNELS),
            "value": round(rng.uniform(1, 500), 4) if kind == "purchase" else None,
            "action": rng.choice(ACTIONS) if kind == "action_sent" else None,
            "properties": ({"campaign": f"c{rng.randrange(50)}", "score": rng.randrange(11),
                            "note": "réponse ✓", "items": [rng.randrange(100), None]}
                           if rng.random() < 0.3 else None),
        })
    return out


class Service:
    """One uvicorn process on a fixed port; restarted as a new process after each kill."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.env, self.port, self.log = env, port, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        cmd = [sys.executable, "-m", "uvicorn", "serving.app:create_app", "--factory",
               "--host", "127.0.0.1", "--port", str(self.port), "--log-level", "warning"]
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)  # this process's PID: no shell in between
        self.proc.wait(10)

    def stop(self) -> None:
        """A graceful stop (SIGTERM: the lifespan closes the store), SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def wait_ingesting(self, timeout: float = 120) -> None:
        """Until the store is open (/readyz may still say 503 while models load)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log.read_text()
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/readyz")
                body = json.loads(conn.getresponse().read())
                conn.close()
                if body["customers"] > 0:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"service not up after {timeout}s:\n{self.log.read_text()[-3000:]}")


@dataclass
class Stream:
    """Client threads posting batches; a batch is retried until a 200 acknowledges it."""

    port: int
    key: str
    batches: list[list[dict[str, Any]]]
    acked: dict[int, dict[str, int]] = field(default_factory=dict)
    attempts: int = 0
    retries: dict[str, int] = field(default_factory=dict)
    partial_answers: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)  # the test is over

    def run(self) -> list[threading.Thread]:
        queue = iter(range(len(self.batches)))
        threads = [threading.Thread(target=self._client, args=(queue,), daemon=True)
                   for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        return threads

    def _client(self, queue: Iterator[int]) -> None:
        conn: http.client.HTTPConnection | None = None
        while True:
            with self.lock:
                b = next(queue, None)
            if b is None or self.stop.is_set():
                return
            body = json.dumps({"events": self.batches[b]})
            while b not in self.acked and not self.unexpected and not self.stop.is_set():
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                conn = self._attempt(conn, b, body)

    def _attempt(self, conn: http.client.HTTPConnection, b: int,
                 body: str) -> http.client.HTTPConnection | None:
        with self.lock:
            self.in_flight += 1
            self.attempts += 1
        try:
            conn.request("POST", "/events", body, {"Content-Type": "application/json",
                                                   "X-API-Key": self.key})
            r = conn.getresponse()
            status, payload = r.status, r.read()
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, cut off
            self._count(type(exc).__name__)
            conn.close()
            time.sleep(0.05)
            return None
        finally:
            with self.lock:
                self.in_flight -= 1
        if status == 503:  # restarted, the store not open yet
            self._count("503")
            time.sleep(0.05)
        elif status == 200:
            answer = json.loads(payload)
            if answer["inserted"] not in (0, len(self.batches[b])):  # a batch is all or none
                self.partial_answers.append((b, answer))
            self.acked[b] = answer
        else:
            self.unexpected.append(f"batch {b}: {status} {payload[:300]!r}")
        return conn

    def _count(self, why: str) -> None:
        with self.lock:
            self.retries[why] = self.retries.get(why, 0) + 1


@dataclass
class Crashes:
    mid_stream: list[dict[str, Any]] = field(default_factory=list)
    during_start: int = 0

    @property
    def total(self) -> int:
        return len(self.mid_stream) + self.during_start


def crash_repeatedly(service: Service, stream: Stream, rng: random.Random,
                     startup_s: float) -> Crashes:
    """SIGKILL the service at seeded points of the stream, each while a request is in flight,
    and restart it at once; after the second kill, kill the restarting process again before
    it is up (opening the store, replaying its write-ahead log, loading histories)."""
    n = len(stream.batches)
    thresholds = sorted(rng.sample(range(n // 10, n * 9 // 10), MID_STREAM_KILLS))
    crashes = Crashes()
    for k, threshold in enumerate(thresholds):
        _until(lambda t=threshold: len(stream.acked) >= t or bool(stream.unexpected))
        _until(lambda: stream.in_flight > 0)
        time.sleep(rng.uniform(0, 0.03))  # somewhere inside the request: parsing, commit, answer
        crashes.mid_stream.append({"after_acked": len(stream.acked),
                                   "in_flight": stream.in_flight})
        service.kill()
        service.start()
        if k == 1:
            time.sleep(rng.uniform(0.3, 1.0) * startup_s)
            service.kill()
            crashes.during_start += 1
            service.start()
    return crashes


def _until(cond: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def fingerprint(store: Path) -> tuple[int, int]:
    """Count and an order-free hash of every event not sent by this test, all columns."""
    with EventStore(store, read_only=True) as es:
        row = es.con.execute(
            "SELECT count(*), sum(hash(event_id, customer_id, ts, event_type, channel, value, "
            "action, properties, customer_key, event_type_code, channel_code, action_code)) "
            f"FROM events WHERE event_id NOT LIKE '{PREFIX}%'").fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def counts_before(store: Path, customers: list[str], when: datetime) -> dict[str, int]:
    with EventStore(store, read_only=True) as es:
        got = dict(es.con.execute(
            "SELECT customer_id, count(*) FROM events WHERE ts < ? AND customer_id IN "
            f"({', '.join('?' * len(customers))}) GROUP BY customer_id",
            [when, *customers]).fetchall())
    return {c: int(got.get(c, 0)) for c in customers}


def served_counts(port: int, key: str, customers: list[str]) -> dict[str, int]:
    """Events each prediction counted: the restarted service's in-memory histories."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", "X-API-Key": key}
    _until(lambda: _ask(conn, "GET", "/readyz", None, headers)[0] == 200)  # models loaded
    out = {}
    for c in customers:
        status, body = _ask(conn, "POST", "/predict", {"customer_id": c}, headers)
        assert status == 200, body
        out[c] = body["events"]
    conn.close()
    return out


def _ask(conn: http.client.HTTPConnection, method: str, path: str, body: object,
         headers: dict[str, str]) -> tuple[int, Any]:
    conn.request(method, path, None if body is None else json.dumps(body), headers)
    r = conn.getresponse()
    return r.status, json.loads(r.read())


def stored_sent(store: Path) -> list[dict[str, Any]]:
    with EventStore(store, read_only=True) as es:
        got: list[dict[str, Any]] = es.con.execute(
            "SELECT event_id, customer_id, epoch_us(ts) AS ts, event_type, channel, value, "
            f"action, properties FROM events WHERE event_id LIKE '{PREFIX}%' ORDER BY event_id"
        ).to_arrow_table().to_pylist()
    return got


def as_stored(e: dict[str, Any]) -> dict[str, Any]:
    """What the store should hold for a sent event (UTC microseconds, JSON text parsed)."""
    ts = datetime.fromisoformat(e["ts"])
    return {**e, "ts": (ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)}


def check_consistency(store: Path) -> None:
    """Keys and codes agree between the events and their lookup tables; the unique indexes
    hold after recovery (a write through them refuses a repeat)."""
    with EventStore(store, read_only=True) as es:
        q = es.con.execute
        assert q("SELECT count(*) - count(DISTINCT event_id) FROM events").fetchone() == (0,)
        assert q("SELECT count(*) - count(DISTINCT customer_id), count(*) - "
                 "count(DISTINCT customer_key) FROM customers").fetchone() == (0, 0)
        assert q("SELECT count(*) FROM events e LEFT JOIN customers c USING (customer_id) "
                 "WHERE c.customer_key IS DISTINCT FROM e.customer_key").fetchone() == (0,)
        assert q("SELECT count(*) FROM events e LEFT JOIN vocab v ON v.kind = 'event_type' "
                 "AND v.name = e.event_type WHERE v.code IS DISTINCT FROM e.event_type_code"
                 ).fetchone() == (0,)
        assert q("SELECT count(*) - count(DISTINCT (kind, name)), count(*) - "
                 "count(DISTINCT (kind, code)) FROM vocab").fetchone() == (0, 0)


def check_writable_copy(store: Path, folder: Path) -> None:
    """A copy opens for writing and checkpoints, and a writer that starts on it knows every
    recovered id: a re-send of any of them is ignored, on the small and the staged path."""
    import shutil

    copy = folder / "reopened.duckdb"
    shutil.copy(store, copy)
    with EventStore(copy) as es:
        es.con.execute("CHECKPOINT")
        before = es.count()
        resent = es.con.execute(f"SELECT {', '.join(EVENT_FIELDS)} FROM events "
                                f"WHERE starts_with(event_id, '{PREFIX}')").to_arrow_table()
        assert es.append(resent.slice(0, 50)).inserted == 0  # small: the writer's hashes
        assert es.append(resent).inserted == 0  # staged: the anti-join
        assert es.count() == before


@pytest.mark.slow
def test_acknowledged_events_survive_kills_exactly_once(served: Served, tmp_path: Path) -> None:
    started = time.perf_counter()
    store = served.store_copy(tmp_path / "store")
    original = fingerprint(store)
    events = make_events(EVENTS, SEED)
    sample = sorted({e["customer_id"] for e in events[::4000]})
    expected = counts_before(store, sample, AS_OF)
    for e in events:
        if e["customer_id"] in expected and datetime.fromisoformat(e["ts"]) < AS_OF:
            expected[e["customer_id"]] += 1
    batches = [events[i:i + BATCH] for i in range(0, EVENTS, BATCH)]
    port = free_port()
    env = {**os.environ, "JOURNEY_HOME": str(tmp_path / "home"), "JOURNEY_STORE": str(store),
           "JOURNEY_MLFLOW_TRACKING_URI": served.tracking_uri,
           "JOURNEY_API_KEYS": str(served.home / "api_keys.yaml"),
           "JOURNEY_AS_OF": AS_OF.isoformat()}
    service = Service(env, port, tmp_path / "service.log")
    stream = Stream(port, served.keys[Role.ingest], batches)
    try:
        t0 = time.perf_counter()
        service.start()
        service.wait_ingesting()
        startup_s = time.perf_counter() - t0
        clients = stream.run()
        crashes = crash_repeatedly(service, stream, random.Random(SEED), startup_s)
        for t in clients:
            t.join(300)
        assert not any(t.is_alive() for t in clients), "clients did not finish"
        assert not stream.unexpected, stream.unexpected
        # Every event counted once in the histories the last process loaded and extended.
        assert served_counts(port, served.keys[Role.predict], sample) == expected
    finally:
        stream.stop.set()
        service.stop()
    assert crashes.total >= MID_STREAM_KILLS + 1
    assert sum(c["in_flight"] > 0 for c in crashes.mid_stream) >= 3
    assert len(stream.acked) == len(batches)
    assert not stream.partial_answers, stream.partial_answers[:3]

    # The service is stopped: the store on its own, read-only.
    assert fingerprint(store) == original  # nothing else changed or added
    stored = stored_sent(store)
    ids = [r["event_id"] for r in stored]
    assert len(ids) == len(set(ids)) == EVENTS  # each once
    assert ids == sorted(e["event_id"] for e in events)  # exactly the sent ids
    for got, sent in zip(stored, events, strict=True):  # every field of every event
        assert {**got, "properties": json.loads(got["properties"] or "null")} == as_stored(sent)
    check_consistency(store)
    check_writable_copy(store, tmp_path)
    retried = stream.attempts - len(batches)
    lost_acks = len(batches) - sum(a["inserted"] == len(batches[b])
                                   for b, a in stream.acked.items())
    print(f"\ncrash-safe ingest: {EVENTS:,} events in {len(batches)} batches; "
          f"{crashes.total} kills ({len(crashes.mid_stream)} mid-stream, "
          f"{sum(c['in_flight'] for c in crashes.mid_stream)} requests in flight at them; "
          f"{crashes.during_start} during start-up), {service.starts} starts; "
          f"{retried} retried requests {stream.retries}; {lost_acks} batches committed "
          f"before their answer was lost (retried: duplicates); duplicates 0, lost 0; "
          f"{time.perf_counter() - started:.1f}s")
