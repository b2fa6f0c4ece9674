"""Retention of ``triggers.sqlite``: which stored firings may go, deleted a batch at a time.

Every firing was kept for good: a flood of firings held by a rate cap (each with its JSON body)
grew the file by ~23 MB an hour. A firing goes once nothing reads it any more:

* held: after ``keep_held_days`` (nothing was sent, so it counts for no cool-down or cap);
* delivered or dead: after ``keep_days``, and only once its rule's cool-down no longer counts
  it on the evaluation clock (a cool-down longer than ``keep_days`` keeps it longer);
* pending or retrying: never (a restart resumes its deliveries).

SQLite reuses the freed pages for later inserts, so the file stops growing without a VACUUM
(which would rewrite the whole file under an exclusive lock).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

# Firings looked at (and at most deleted) per transaction, which holds the write lock a claim
# waits for. Measured on a 350,000-firing file (2 busy cores): 2,000 took 37 ms a transaction
# (at most ~0.1 s) for 6.8 s in all; 5,000 took 107 ms (at most ~0.3 s) for about as long.
BATCH = 2_000
# Held first: under a flood they are the bulk of the file.
PASSES = ("held", "delivered", "dead")
_FIRST = ("", -1)  # before every (fired_at, rowid)

# A pass's next rows in index order (firings_status_fired: status, fired_at, then rowid),
# from just after the last row looked at: rows kept (a cool-down that still counts them) are
# not read again by the pass's next batch.
_NEXT = """
SELECT f.rowid, f.firing_id, f.rule, f.at_us, f.fired_at,
       EXISTS (SELECT 1 FROM deliveries d WHERE d.firing_id = f.firing_id
               AND d.status IN ('pending', 'retrying')) AS busy
FROM firings f
WHERE f.status = ? AND f.fired_at < ? AND f.fired_at >= ? AND (f.fired_at > ? OR f.rowid > ?)
ORDER BY f.fired_at, f.rowid
LIMIT ?
"""


@dataclass(frozen=True)
class Pruned:
    """What a prune removed."""

    held: int = 0
    finished: int = 0  # delivered or dead
    deliveries: int = 0  # rows of the removed firings

    @property
    def firings(self) -> int:
        return self.held + self.finished

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.held + other.held, self.finished + other.finished,
                      self.deliveries + other.deliveries)


@dataclass(frozen=True)
class Cutoffs:
    """What goes: ``fired_at`` texts (``wall_clock``) before which a firing may go, and per
    rule the ``at_us`` at or before which a firing no longer holds its cool-down."""

    held_before: str
    finished_before: str
    cooled_by: Mapping[str, int]  # rule id: the evaluation clock now minus its cool-down
    other_cooled_by: int | None  # a rule no longer configured; None: such firings are kept

    def before(self, status: str) -> str:
        return self.held_before if status == "held" else self.finished_before

    def goes(self, status: str, rule: str, at_us: int) -> bool:
        """Whether a firing fired before ``before(status)`` may go. A claim at evaluation time
        t is refused by a firing with at_us > t - cool-down; claims are made at the clock or
        later, so one at or before clock - cool-down refuses none of them."""
        if status == "held":
            return True
        cooled = self.cooled_by.get(rule, self.other_cooled_by)
        return cooled is not None and at_us <= cooled


@dataclass
class Pruner:
    """A prune in steps, one batch per ``step`` (the caller's transaction), resumable between
    them: the triggers' worker goes back to its evaluations between batches."""

    cut: Cutoffs
    batch: int = BATCH
    done: Pruned = field(default_factory=Pruned)
    _pass: int = 0
    _after: tuple[str, int] = _FIRST

    @property
    def finished(self) -> bool:
        return self._pass >= len(PASSES)

    def step(self, con: sqlite3.Connection) -> None:
        """Look at the current pass's next batch of firings and delete those that go, with
        their deliveries; within the caller's transaction."""
        if self.finished:
            return
        status = PASSES[self._pass]
        fired, rowid = self._after
        rows = con.execute(_NEXT, (status, self.cut.before(status), fired, fired, rowid,
                                   self.batch)).fetchall()
        gone = [(r[0], r[1]) for r in rows
                if not r[5] and self.cut.goes(status, str(r[2]), int(r[3]))]
        deliveries = 0
        if gone:
            deliveries = con.executemany("DELETE FROM deliveries WHERE firing_id = ?",
                                         [(fid,) for _, fid in gone]).rowcount
            con.executemany("DELETE FROM firings WHERE rowid = ?", [(r,) for r, _ in gone])
        held = len(gone) if status == "held" else 0
        self.done += Pruned(held, len(gone) - held, max(deliveries, 0))
        if len(rows) < self.batch:
            self._pass, self._after = self._pass + 1, _FIRST
        else:
            self._after = (str(rows[-1][4]), int(rows[-1][0]))
