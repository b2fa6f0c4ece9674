"""Trigger firings and their webhook deliveries, in a small SQLite file under ``<home>``
(``triggers.sqlite``).

Not in the DuckDB event store: the service holds that store's only write connection and its
ingest path commits there under the write lock, so webhook bookkeeping (a write per attempt)
would queue behind ingests, and no other process could read the cool-down state while the
service runs. SQLite in WAL mode lets ``journey triggers test`` and ``journey score`` read and
write it beside the service, and its ``BEGIN IMMEDIATE`` makes check-then-insert of a firing
atomic across threads and processes: that is what makes a rule fire at most once per customer
per cool-down, restarts included. Firings past the rules file's retention, and past any
cool-down that still counts them, are deleted (``prune``; serving/firings_retention.py).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from serving.firings_retention import Cutoffs, Pruned, Pruner
from serving.trigger_config import RetentionPolicy, Rule

# held: over its rule's max_per_minute, stored but never sent (``held_reason``).
Status = Literal["pending", "retrying", "delivered", "dead", "held"]
STATUSES: tuple[Status, ...] = ("pending", "retrying", "delivered", "dead", "held")
RATE_CAP = "rate_cap"
RATE_WINDOW = timedelta(minutes=1)  # a rule's max_per_minute counts its firings sent in it

SCHEMA = """
CREATE TABLE IF NOT EXISTS firings (
    firing_id   TEXT PRIMARY KEY,
    rule        TEXT NOT NULL,
    customer_id TEXT NOT NULL,
    at_us       INTEGER NOT NULL,  -- evaluation clock (JOURNEY_AS_OF or now); cool-downs use it
    fired_at    TEXT NOT NULL,     -- wall clock, ISO 8601
    source      TEXT NOT NULL,     -- events | scoring run
    status      TEXT NOT NULL,     -- over its deliveries: pending, retrying, delivered or dead;
                                   -- held: never sent (held_reason)
    body        BLOB NOT NULL,     -- the JSON sent, byte for byte (each attempt signs it anew)
    held_reason TEXT               -- why a held firing was not sent: rate_cap
);
CREATE INDEX IF NOT EXISTS firings_rule_customer ON firings (rule, customer_id, at_us);
CREATE INDEX IF NOT EXISTS firings_status ON firings (status);
CREATE TABLE IF NOT EXISTS deliveries (
    firing_id   TEXT NOT NULL REFERENCES firings (firing_id),
    endpoint    TEXT NOT NULL,
    status      TEXT NOT NULL,     -- pending, retrying, delivered, dead (the dead letter)
    attempts    INTEGER NOT NULL DEFAULT 0,
    http_status INTEGER,
    last_error  TEXT,
    next_attempt_at TEXT,
    updated_at  TEXT,
    PRIMARY KEY (firing_id, endpoint)
);
"""
# A firing's status from its deliveries: still in flight while any is; then dead if any died.


@dataclass(frozen=True)
class Page:
    rows: list[dict[str, Any]]
    matched: int  # firings that match the filters, on every page
    more: bool  # older matching firings follow the last row


_ROLL_UP = """
UPDATE firings SET status = (
    SELECT CASE
        WHEN sum(status IN ('pending', 'retrying')) > 0
            THEN CASE WHEN sum(attempts) > 0 THEN 'retrying' ELSE 'pending' END
        WHEN sum(status = 'dead') > 0 THEN 'dead'
        ELSE 'delivered' END
    FROM deliveries d WHERE d.firing_id = firings.firing_id)
WHERE firing_id = ?
"""


@dataclass(frozen=True)
class NewFiring:
    firing_id: str
    rule: str
    customer_id: str
    at_us: int
    cooldown_us: int
    fired_at: str
    source: str
    body: bytes
    endpoints: tuple[str, ...]
    max_per_minute: int | None = None  # the rule's cap on firings sent a minute (None: none)


@dataclass
class Claimed:
    """What ``claim_all`` stored: the firings to send, and per rule those held by its cap."""

    sent: list[NewFiring] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)
    cooled: int = 0  # held back by a cool-down (not stored)
    cooled_rules: dict[str, int] = field(default_factory=dict)  # the same, per rule


def wall_clock(when: datetime) -> str:
    """``fired_at``'s form: UTC to the microsecond, always, so the text sorts as the time."""
    return when.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Pending:
    """A delivery still to attempt (after a restart, or just claimed)."""

    firing_id: str
    endpoint: str
    body: bytes
    attempts: int  # made so far
    rule: str = ""  # the firing's rule (a metric's label)


class FiringStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._con: sqlite3.Connection | None = None
        self._lock = threading.Lock()  # one connection, shared by the worker threads
        self._closed = False

    def _open(self) -> sqlite3.Connection:
        if self._con is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                  check_same_thread=False)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")  # WAL: a crash loses no committed row
            con.executescript(SCHEMA)
            columns = {row[1] for row in con.execute("PRAGMA table_info(firings)")}
            if "held_reason" not in columns:  # a file of a version before rate caps
                con.execute("ALTER TABLE firings ADD COLUMN held_reason TEXT")
            # Counts a rule's firings of the last minute (its cap) without a scan.
            con.execute("CREATE INDEX IF NOT EXISTS firings_rule_fired "
                        "ON firings (rule, fired_at)")
            # Finds the firings a prune removes, oldest first, without reading the others
            # (firings_status orders a status's firings by rowid, not by time).
            con.execute("CREATE INDEX IF NOT EXISTS firings_status_fired "
                        "ON firings (status, fired_at)")
            self._con = con
        return self._con

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Rows of a query; none when the file does not exist yet (nothing has fired)."""
        with self._lock:
            if self._con is None and not self.path.exists():
                return []
            con = self._open()
            con.row_factory = sqlite3.Row
            try:
                return con.execute(sql, params).fetchall()
            finally:
                con.row_factory = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._con is not None:
                self._con.close()
                self._con = None

    def claim(self, firings: Sequence[NewFiring]) -> list[NewFiring]:
        """``claim_all``'s firings to send."""
        return self.claim_all(firings).sent

    def claim_all(self, firings: Sequence[NewFiring]) -> Claimed:
        """Store each firing whose rule has not fired for its customer within the cool-down
        before its time (nor later: a run back in time does not fire again), with a pending
        delivery per endpoint, in one transaction. A firing over its rule's cap (firings
        sent in the last minute, this process's or another's) is stored as ``held``, with
        no delivery; a held firing holds no cool-down (nothing was sent)."""
        out = Claimed()
        allowance: dict[str, int] = {}
        with self._lock:
            con = self._open()
            con.execute("BEGIN IMMEDIATE")
            try:
                since = wall_clock(datetime.now(UTC) - RATE_WINDOW)
                for f in firings:
                    if con.execute("SELECT 1 FROM firings WHERE rule = ? AND customer_id = ? "
                                   "AND at_us > ? AND status != 'held' LIMIT 1",
                                   (f.rule, f.customer_id, f.at_us - f.cooldown_us)).fetchone():
                        out.cooled += 1
                        out.cooled_rules[f.rule] = out.cooled_rules.get(f.rule, 0) + 1
                        continue
                    if f.max_per_minute is not None and f.rule not in allowance:
                        allowance[f.rule] = f.max_per_minute - _sent_since(con, f.rule, since)
                    if f.max_per_minute is not None and allowance[f.rule] <= 0:
                        _insert(con, f, "held", RATE_CAP)
                        out.held[f.rule] = out.held.get(f.rule, 0) + 1
                        continue
                    if f.max_per_minute is not None:
                        allowance[f.rule] -= 1
                    _insert(con, f, "pending", None)
                    out.sent.append(f)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:  # not when COMMIT failed (a full disk): it ended it
                    con.execute("ROLLBACK")
                raise
        return out

    def record(self, firing_id: str, endpoint: str, status: Status, attempts: int,
               http_status: int | None, error: str | None, next_attempt_at: str | None,
               now: str) -> None:
        """The outcome of a delivery attempt (and the firing's status that follows). After
        ``close`` (a send that outlived shutdown) nothing is written: the delivery keeps its
        last state and the next start resumes it."""
        with self._lock:
            if self._closed:
                return
            con = self._open()
            con.execute("BEGIN IMMEDIATE")
            con.execute("UPDATE deliveries SET status = ?, attempts = ?, http_status = ?, "
                        "last_error = ?, next_attempt_at = ?, updated_at = ? "
                        "WHERE firing_id = ? AND endpoint = ?",
                        (status, attempts, http_status, error, next_attempt_at, now, firing_id,
                         endpoint))
            con.execute(_ROLL_UP, (firing_id,))
            con.execute("COMMIT")

    def unfinished(self) -> list[Pending]:
        """Deliveries not yet delivered nor dead (a restart resumes them)."""
        rows = self._read("SELECT d.firing_id, d.endpoint, f.body, d.attempts, f.rule "
                          "FROM deliveries d JOIN firings f USING (firing_id) "
                          "WHERE d.status IN ('pending', 'retrying') ORDER BY f.rowid")
        return [Pending(r["firing_id"], r["endpoint"], bytes(r["body"]), r["attempts"],
                        r["rule"]) for r in rows]

    def last(self, rule: str, customer_id: str) -> dict[str, Any] | None:
        """The rule's latest firing sent to the customer (by evaluation time); a held one
        holds no cool-down."""
        rows = self._read("SELECT firing_id, at_us, fired_at, status, source FROM firings "
                          "WHERE rule = ? AND customer_id = ? AND status != 'held' "
                          "ORDER BY at_us DESC LIMIT 1", (rule, customer_id))
        return dict(rows[0]) if rows else None

    def firings(self, rule: str | None = None, customer_id: str | None = None,
                status: str | None = None, limit: int = 100,
                before: int | None = None, firing_id: str | None = None) -> Page:
        """The newest firings first, filtered, each with its deliveries and its ``seq`` (the
        order stored: pass the last one as ``before`` for the next page). ``firing_id``: the
        one a log line or a receiver names (its primary key: no scan)."""
        where: list[str] = []
        params: list[Any] = []
        for column, value in (("firing_id", firing_id), ("rule", rule),
                              ("customer_id", customer_id), ("status", status)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        matched = self._read("SELECT count(*) AS n FROM firings"
                             + (" WHERE " + " AND ".join(where) if where else ""), params)
        if before is not None:
            where.append("rowid < ?")
            params.append(before)
        sql = ("SELECT rowid AS seq, firing_id, rule, customer_id, at_us, fired_at, source, "
               "status, body, held_reason FROM firings"
               + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY rowid DESC LIMIT ?")
        rows = [dict(r) for r in self._read(sql, [*params, limit + 1])]
        more, rows = len(rows) > limit, rows[:limit]
        if rows:
            self._add_deliveries(rows)
        return Page(rows, int(matched[0]["n"]) if matched else 0, more)

    def _add_deliveries(self, rows: list[dict[str, Any]]) -> None:
        marks = ", ".join("?" * len(rows))
        by_firing: dict[str, list[dict[str, Any]]] = {}
        for d in self._read("SELECT firing_id, endpoint, status, attempts, http_status, "
                            "last_error, next_attempt_at, updated_at FROM deliveries "
                            f"WHERE firing_id IN ({marks}) ORDER BY endpoint",
                            [r["firing_id"] for r in rows]):
            by_firing.setdefault(d["firing_id"], []).append(dict(d))
        for r in rows:
            r["deliveries"] = by_firing.get(r["firing_id"], [])

    def counts(self) -> dict[str, int]:
        """Firings per status."""
        rows = self._read("SELECT status, count(*) AS n FROM firings GROUP BY status")
        return {s: 0 for s in STATUSES} | {r["status"]: r["n"] for r in rows}

    # -- retention (serving/firings_retention.py) ----------------------------------------
    def pruner(self, policy: RetentionPolicy, rules: Sequence[Rule], clock_us: int,
               now: datetime | None = None, batch: int | None = None) -> Pruner:
        """A prune of what ``policy`` no longer keeps as of ``now`` (wall clock; default now),
        with ``rules``' cool-downs on the evaluation clock ``clock_us`` (JOURNEY_AS_OF or now).
        A firing of a rule no longer in ``rules`` keeps the longest of their cool-downs: the
        rule may come back under its old id."""
        now = now or datetime.now(UTC)
        longest = max((r.cooldown_us for r in rules), default=None)
        # Never a finished firing of the last minute, whatever keep_days: rate caps count it.
        finished = max(timedelta(days=policy.keep_days), RATE_WINDOW)
        cut = Cutoffs(wall_clock(now - timedelta(days=policy.keep_held_days)),
                      wall_clock(now - finished),
                      {r.id: clock_us - r.cooldown_us for r in rules},
                      None if longest is None else clock_us - longest)
        return Pruner(cut) if batch is None else Pruner(cut, batch)

    def prune_step(self, pruner: Pruner) -> bool:
        """One batch of ``pruner`` in its own transaction; False when there is nothing (more)
        to do: the prune is finished, the store closed or its file not made yet."""
        with self._lock:
            if pruner.finished or self._closed or (self._con is None
                                                    and not self.path.exists()):
                return False
            con = self._open()
            con.execute("BEGIN IMMEDIATE")
            try:
                pruner.step(con)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:  # not when COMMIT failed (a full disk): it ended it
                    con.execute("ROLLBACK")
                raise
        if pruner.finished:
            return False
        # A thread waiting for the connection (a sender recording an attempt) gets it now:
        # the lock is not fair, and the next batch would otherwise take it straight back.
        time.sleep(0.001)
        return True

    def prune(self, policy: RetentionPolicy, rules: Sequence[Rule], clock_us: int,
              now: datetime | None = None, batch: int | None = None,
              stop: Callable[[], bool] = lambda: False) -> Pruned:
        """Delete the firings ``policy`` no longer keeps, with their deliveries (``pruner``),
        a batch per transaction until done or ``stop()``; what was removed."""
        pruner = self.pruner(policy, rules, clock_us, now, batch)
        while self.prune_step(pruner) and not stop():
            pass
        return pruner.done


def _sent_since(con: sqlite3.Connection, rule: str, since: str) -> int:
    """The rule's firings sent (not held) since ``since`` (``wall_clock`` text)."""
    row = con.execute("SELECT count(*) FROM firings WHERE rule = ? AND fired_at >= ? "
                      "AND status != 'held'", (rule, since)).fetchone()
    return int(row[0])


def _insert(con: sqlite3.Connection, f: NewFiring, status: Status, reason: str | None) -> None:
    """The firing's row and, unless held, a pending delivery per endpoint."""
    con.execute("INSERT INTO firings (firing_id, rule, customer_id, at_us, fired_at, source, "
                "status, body, held_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (f.firing_id, f.rule, f.customer_id, f.at_us, f.fired_at, f.source, status,
                 f.body, reason))
    if status != "held":
        con.executemany("INSERT INTO deliveries (firing_id, endpoint, status) "
                        "VALUES (?, ?, 'pending')", [(f.firing_id, e) for e in f.endpoints])
