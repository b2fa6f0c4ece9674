"""Retention of triggers.sqlite: the `retention` section checked like the rest of the rules
file; a prune removes old held firings and old finished ones with their deliveries, but never
one whose deliveries are in flight nor one a cool-down still counts (pinned clock included),
a batch per transaction; the triggers' worker runs it and logs what it removed."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from features.batch import micros
from features.errors import ConfigError
from features.spec import load_spec
from models.actions import load_catalog
from serving.firings import FiringStore, NewFiring, Status, wall_clock
from serving.firings_retention import BATCH, Pruned
from serving.predictor import Predictor
from serving.settings import ServeSettings
from serving.state import ServiceState
from serving.trigger_config import RetentionPolicy, Rule, TriggerConfig, load_trigger_config
from serving.trigger_states import StateReader
from serving.triggers import Triggers
from tests.serving.test_triggers_config import ACTIONS, STAGES, config
from tests.serving.test_triggers_config import rule as config_rule
from tests.training.world import clean_env

DAY = timedelta(days=1)
NOW = datetime(2025, 11, 15, 12, tzinfo=UTC)  # the wall clock of the prunes below
PINNED = datetime(2024, 1, 1, tzinfo=UTC)  # a JOURNEY_AS_OF in the past
BODY = b'{"firing_id":"x","details":{"reason":"' + b"x" * 560 + b'"}}'  # ~600 bytes, as real
KEEP = RetentionPolicy()  # 90 days; held: 7


def a_rule(rule_id: str = "r", cooldown_days: float = 7) -> Rule:
    return Rule(rule_id, "entered_stage", {"stage": "decision"}, ("hook", "crm"),
                cooldown_days * 86_400)


RULES = (a_rule(),)


def new(fid: str, ago: timedelta, *, rule: str = "r", customer: str | None = None,
        at: datetime | None = None, cap: int | None = None, cooldown_days: float = 7,
        now: datetime = NOW) -> NewFiring:
    """A firing fired ``ago`` before ``now`` (wall clock), evaluated then unless ``at``."""
    return NewFiring(fid, rule, customer or f"c-{fid}", micros(at or now - ago),
                     round(cooldown_days * 86_400_000_000), wall_clock(now - ago), "events",
                     BODY, ("hook", "crm"), cap)


def put(store: FiringStore, f: NewFiring, status: Status) -> None:
    """Store ``f`` with this status: held by a spent cap, or sent and then recorded."""
    if status == "held":
        assert store.claim_all([f]).held == {f.rule: 1}
        return
    assert store.claim([f]) == [f]
    if status == "pending":
        return
    # Dead: one endpoint took it, the other never did.
    outcomes: tuple[Status, Status] = (status, status)
    if status == "dead":
        outcomes = ("delivered", "dead")
    for endpoint, outcome in zip(f.endpoints, outcomes, strict=True):
        store.record(f.firing_id, endpoint, outcome, 1, 200 if outcome == "delivered" else 500,
                     None, None, f.fired_at)


def ids(store: FiringStore) -> set[str]:
    return {str(r["firing_id"]) for r in store.firings(limit=100_000).rows}


def deliveries_of(store: FiringStore, fids: Sequence[str]) -> int:
    con = sqlite3.connect(store.path)
    try:
        marks = ", ".join("?" * len(fids))
        row = con.execute(f"SELECT count(*) FROM deliveries WHERE firing_id IN ({marks})",
                          list(fids)).fetchone()
        return int(row[0])
    finally:
        con.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FiringStore]:
    s = FiringStore(tmp_path / "triggers.sqlite")
    yield s
    s.close()


# -- the retention section -------------------------------------------------------------------

def test_retention_defaults_when_the_section_is_absent(tmp_path: Path) -> None:
    assert config(tmp_path, []).retention == RetentionPolicy(90.0, 7.0)
    assert load_trigger_config(None, STAGES, ACTIONS).retention == RetentionPolicy(90.0, 7.0)
    assert config(tmp_path, [], retention=None).retention == RetentionPolicy(90.0, 7.0)


def test_retention_values_are_read(tmp_path: Path) -> None:
    cfg = config(tmp_path, [], retention={"keep_days": 30, "keep_held_days": 0.5})
    assert cfg.retention == RetentionPolicy(keep_days=30.0, keep_held_days=0.5)
    assert config(tmp_path, [], retention={"keep_held_days": 2}).retention == \
        RetentionPolicy(90.0, 2.0)


@pytest.mark.parametrize(("retention", "where", "says"), [
    ({"keep_days": 0}, "retention.keep_days", "must be a positive number of days under 36,500"),
    ({"keep_days": -3}, "retention.keep_days", "under 36,500, got -3"),
    ({"keep_days": "90d"}, "retention.keep_days", "under 36,500, got '90d'"),
    ({"keep_days": True}, "retention.keep_days", "under 36,500, got True"),
    ({"keep_days": 1e9}, "retention.keep_days", "under 36,500, got 1000000000.0"),
    ({"keep_held_days": 0}, "retention.keep_held_days", "under 36,500, got 0"),
    ({"keep_held_days": None}, "retention.keep_held_days", "under 36,500, got None"),
    ({"keep_day": 30}, "retention.keep_day", "unknown key; allowed: keep_days, keep_held_days"),
    (30, "retention", "must be a mapping, got 30"),
])
def test_a_retention_mistake_names_the_file_and_the_key(tmp_path: Path, retention: Any,
                                                        where: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        config(tmp_path, [], retention=retention)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'triggers.yaml'}: {where}: "), message
    assert says in message


# -- pruning ---------------------------------------------------------------------------------

def test_old_held_and_finished_firings_go_with_their_deliveries(store: FiringStore) -> None:
    put(store, new("held_old", 8 * DAY, cap=0), "held")
    put(store, new("held_new", 6 * DAY, cap=0), "held")
    put(store, new("delivered_old", 91 * DAY), "delivered")
    put(store, new("dead_old", 100 * DAY), "dead")
    put(store, new("delivered_new", 89 * DAY), "delivered")
    put(store, new("pending_old", 400 * DAY), "pending")
    put(store, new("retrying_old", 400 * DAY), "retrying")
    assert store.counts() == {"pending": 1, "retrying": 1, "delivered": 2, "dead": 1,
                              "held": 2}

    done = store.prune(KEEP, RULES, micros(NOW), now=NOW)

    assert done == Pruned(held=1, finished=2, deliveries=4) and done.firings == 3
    assert ids(store) == {"held_new", "delivered_new", "pending_old", "retrying_old"}
    assert deliveries_of(store, ["delivered_old", "dead_old"]) == 0
    assert deliveries_of(store, ["delivered_new"]) == 2
    # A restart still resumes every delivery in flight, however old.
    assert sorted((p.firing_id, p.endpoint, p.attempts) for p in store.unfinished()) == [
        ("pending_old", "crm", 0), ("pending_old", "hook", 0),
        ("retrying_old", "crm", 1), ("retrying_old", "hook", 1)]
    assert store.counts() == {"pending": 1, "retrying": 1, "delivered": 1, "dead": 0,
                              "held": 1}
    assert store.prune(KEEP, RULES, micros(NOW), now=NOW) == Pruned()


def test_a_delivery_in_flight_keeps_its_firing_whatever_its_status(store: FiringStore) -> None:
    """Belt and braces: the firing's status says delivered, one of its deliveries does not."""
    put(store, new("odd", 200 * DAY), "delivered")
    con = sqlite3.connect(store.path)
    con.execute("UPDATE deliveries SET status = 'retrying' WHERE endpoint = 'crm'")
    con.commit()
    con.close()
    assert store.prune(KEEP, RULES, micros(NOW), now=NOW) == Pruned()
    assert ids(store) == {"odd"}


def test_a_firing_its_cool_down_still_counts_stays(store: FiringStore) -> None:
    rules = (a_rule("long", cooldown_days=120),)
    put(store, new("inside", 100 * DAY, rule="long", customer="c1", cooldown_days=120),
        "delivered")
    put(store, new("past", 130 * DAY, rule="long", customer="c2", cooldown_days=120),
        "dead")

    assert store.prune(KEEP, rules, micros(NOW), now=NOW) == Pruned(0, 1, 2)
    assert ids(store) == {"inside"}
    last = store.last("long", "c1")
    assert last is not None and last["firing_id"] == "inside"
    # The cool-down still refuses the customer a new firing; the other one fires again.
    again = store.claim_all([new("c1_again", timedelta(0), rule="long", customer="c1",
                                 cooldown_days=120),
                             new("c2_again", timedelta(0), rule="long", customer="c2",
                                 cooldown_days=120)])
    assert again.cooled == 1 and [f.firing_id for f in again.sent] == ["c2_again"]


def test_a_rule_no_longer_configured_keeps_the_longest_cool_down(store: FiringStore) -> None:
    put(store, new("gone_150", 150 * DAY, rule="gone"), "delivered")
    put(store, new("gone_250", 250 * DAY, rule="gone"), "delivered")
    put(store, new("held_gone", 250 * DAY, rule="gone", cap=0), "held")
    # With no rule at all nothing tells how long a cool-down is: such firings are kept.
    assert store.prune(KEEP, (), micros(NOW), now=NOW) == Pruned(held=1)
    rules = (a_rule("r", 7), a_rule("long", 200))
    assert store.prune(KEEP, rules, micros(NOW), now=NOW) == Pruned(0, 1, 2)
    assert ids(store) == {"gone_150"}


def test_a_pinned_clock_in_the_past_keeps_what_it_would_still_refuse(
        store: FiringStore) -> None:
    put(store, new("pinned_recent", 100 * DAY, at=PINNED - DAY, customer="a"), "delivered")
    put(store, new("from_unpinned", 100 * DAY, customer="b"), "delivered")  # after PINNED
    put(store, new("pinned_old", 100 * DAY, at=PINNED - 30 * DAY, customer="c"), "delivered")
    assert micros(NOW - 100 * DAY) > micros(PINNED)

    assert store.prune(KEEP, RULES, micros(PINNED), now=NOW) == Pruned(0, 1, 2)
    assert ids(store) == {"pinned_recent", "from_unpinned"}
    # Claims on the pinned clock: the two kept firings still refuse theirs.
    got = store.claim_all([new(f"{c}2", timedelta(0), customer=c, at=PINNED) for c in "abc"])
    assert got.cooled == 2 and [f.firing_id for f in got.sent] == ["c2"]


def test_the_rate_cap_counts_the_same_after_a_prune(store: FiringStore) -> None:
    """Even with a retention shorter than a minute, the last minute's sent firings stay (and
    a cool-down of a second does not keep them either)."""
    now = datetime.now(UTC)
    brief = RetentionPolicy(keep_days=1e-5, keep_held_days=1e-5)  # under a second
    rules = (a_rule("r", cooldown_days=1 / 86_400),)
    for i in range(2):
        put(store, new(f"sent{i}", timedelta(seconds=10), cap=2, now=now), "delivered")
    put(store, new("held0", timedelta(seconds=10), cap=2, now=now), "held")

    assert store.prune(brief, rules, micros(now), now=now) == Pruned(held=1)
    assert ids(store) == {"sent0", "sent1"}
    over = store.claim_all([new("more", timedelta(0), cap=2, now=datetime.now(UTC))])
    assert over.sent == [] and over.held == {"r": 1}  # the minute's two still count


def test_a_prune_goes_a_batch_per_transaction(store: FiringStore) -> None:
    rules = (a_rule("r", 7), a_rule("long", 400))
    for i in range(12):
        put(store, new(f"h{i:02}", (20 + i) * DAY, cap=0), "held")
    # Finished firings of two rules, interleaved in time: the long cool-down's stay, and a
    # batch after them must not read them again.
    for i in range(12):
        rule = "long" if i % 2 else "r"
        put(store, new(f"d{i:02}", (100 + i) * DAY, rule=rule, cooldown_days=400 if i % 2
                       else 7), "delivered")
    pruner = store.pruner(KEEP, rules, micros(NOW), now=NOW, batch=5)
    steps, more = 0, True
    while more and steps < 50:  # a batch that read the same rows again would never end
        more = store.prune_step(pruner)
        steps += 1
    # held: 5 + 5 + 2; delivered: 5 + 5 + 2 looked at; dead: none
    assert steps == 7 and pruner.finished
    assert pruner.done == Pruned(held=12, finished=6, deliveries=12)
    assert ids(store) == {f"d{i:02}" for i in range(1, 12, 2)}
    assert not store.prune_step(pruner)


def test_more_than_a_batch_is_removed(store: FiringStore) -> None:
    n = BATCH * 2 + 123
    for start in range(0, n, 4_000):
        got = store.claim_all([new(f"h{i}", 10 * DAY + i * timedelta(seconds=1), cap=0)
                               for i in range(start, min(start + 4_000, n))])
        assert sum(got.held.values()) == min(4_000, n - start)
    put(store, new("keep", DAY, cap=0), "held")
    assert store.prune(KEEP, RULES, micros(NOW), now=NOW) == Pruned(held=n)
    assert ids(store) == {"keep"}


def test_a_prune_stops_when_asked_and_after_close(store: FiringStore) -> None:
    for i in range(6):
        put(store, new(f"h{i}", 10 * DAY, cap=0), "held")
    assert store.prune(KEEP, RULES, micros(NOW), now=NOW, batch=2,
                       stop=lambda: True) == Pruned(held=2)
    pruner = store.pruner(KEEP, RULES, micros(NOW), now=NOW, batch=2)
    store.close()
    assert not store.prune_step(pruner) and pruner.done == Pruned()
    fresh = FiringStore(store.path.with_name("other.sqlite"))
    assert fresh.prune(KEEP, RULES, micros(NOW), now=NOW) == Pruned()
    assert not fresh.path.exists()  # nothing fired yet: no file made just to prune it


# -- the triggers' worker --------------------------------------------------------------------

def worker(cfg: TriggerConfig, store: FiringStore, clock: datetime) -> Triggers:
    spec, catalog = load_spec(), load_catalog()
    reader = StateReader(spec, Predictor(spec.stages, 0, (0.3, 0.6)), catalog, cfg.enabled)
    t = Triggers(cfg, store, reader, lambda: None, lambda: clock)
    t.prune_first_seconds = 0.0
    return t


def wait_for(what: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.fixture
def enabled(tmp_path: Path) -> TriggerConfig:
    return config(tmp_path, [config_rule("entered_stage", {"stage": "decision"})],
                  retention={"keep_days": 30, "keep_held_days": 1})


def test_the_worker_prunes_soon_after_start_and_logs_it(
        enabled: TriggerConfig, store: FiringStore, caplog: pytest.LogCaptureFixture) -> None:
    now = datetime.now(UTC)
    rid = enabled.rules[0].id
    put(store, new("held_old", 2 * DAY, rule=rid, cap=0, now=now), "held")
    put(store, new("done_old", 40 * DAY, rule=rid, now=now), "delivered")
    put(store, new("done_new", 20 * DAY, rule=rid, now=now), "delivered")
    t = worker(enabled, store, now)
    with caplog.at_level(logging.INFO, logger="journey.triggers"):
        t.start()
        try:
            wait_for(lambda: t._pruning is None and t._next_prune - time.monotonic() > 3000)
        finally:
            t.close()
    assert ids(store) == {"done_new"}
    lines = [r.getMessage() for r in caplog.records if "pruned" in r.getMessage()]
    assert lines == ["triggers: pruned 2 firing(s) older than the retention in "
                     "triggers.sqlite: 1 held older than 1 day(s), 1 delivered or dead older "
                     "than 30 day(s) and past their cool-down; 2 delivery row(s)"]


def test_nothing_to_prune_logs_nothing_and_a_failure_stops_nothing(
        enabled: TriggerConfig, store: FiringStore, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    now = datetime.now(UTC)
    put(store, new("done_new", DAY, rule=enabled.rules[0].id, now=now), "delivered")
    t = worker(enabled, store, now)
    with caplog.at_level(logging.INFO, logger="journey.triggers"):
        t.start()
        try:
            wait_for(lambda: t._next_prune - time.monotonic() > 3000)
            assert not [r for r in caplog.records if "prune" in r.getMessage()]

            def broken(pruner: object) -> bool:
                raise sqlite3.OperationalError("disk I/O error")

            monkeypatch.setattr(store, "prune_step", broken)
            t._next_prune = 0.0  # due now
            wait_for(lambda: t._next_prune - time.monotonic() > 3000)
            assert t._thread is not None and t._thread.is_alive()
        finally:
            t.close()
    failed = [r for r in caplog.records if "pruning old firings failed" in r.getMessage()]
    assert len(failed) == 1 and failed[0].levelno == logging.ERROR
    assert ids(store) == {"done_new"}


def test_the_service_triggers_count_cool_downs_on_its_clock(tmp_path: Path) -> None:
    with clean_env():
        state = ServiceState(ServeSettings(home=tmp_path, drift_worker=False, as_of=PINNED))
        try:
            assert state.triggers._clock() == PINNED == state.clock(None)
        finally:
            state.close()


def test_a_batch_whose_firings_cannot_be_stored_is_evaluated_again(
        enabled: TriggerConfig, store: FiringStore, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A full disk: the batch's firings were lost at the first error; now the worker pauses and
    # evaluates it again (claims made the first time hold their cool-downs).
    t = worker(enabled, store, NOW)
    t.retry_seconds = (0.01, 0.01)
    calls: list[int] = []

    def evaluate(batch: object) -> None:
        calls.append(1)
        if len(calls) < 3:
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(t, "_evaluate", evaluate)
    t.start()
    try:
        with caplog.at_level(logging.WARNING, "journey.triggers"):
            t._put(object())  # type: ignore[arg-type]
            wait_for(lambda: t._queue.unfinished_tasks == 0)
        assert len(calls) == 3
        assert caplog.text.count("firings could not be stored (database or disk is full)") == 2
        assert "are lost" not in caplog.text
        calls.clear()
        monkeypatch.setattr(t, "retry_seconds", ())  # no pause left: given up, and said so
        with caplog.at_level(logging.ERROR, "journey.triggers"):
            t._put(object())  # type: ignore[arg-type]
            wait_for(lambda: t._queue.unfinished_tasks == 0)
        assert len(calls) == 1 and "its firings are lost" in caplog.text
    finally:
        t.close()
