"""`contact_lapsed`: the logging policy keeps contacting customers who silently churned, as a
business that cannot see churn does, and those contacts change nothing."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime, time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from features.simulator.emit import DAY_US, Emitter
from features.simulator.engine import Engine, State, draw_population
from features.simulator.oracle import oracle
from features.simulator.params import SimParams, load_params
from features.simulator.run import SimSpec, params_text, simulate

CUSTOMERS, DAYS, SEED = 2_000, 150, 11
Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Latent:
    """What the log hides: when each customer churned, and their state when they did."""

    churn_day: Ints  # the last day with the customer's own events; DAYS if never churned
    stage: npt.NDArray[np.int8]
    bad: npt.NDArray[np.int16]


def _params_file(tmp: Path, lapsed: bool) -> Path:
    text = params_text(None)
    assert "\ncontact_lapsed: true" in text
    if not lapsed:  # the key absent, as in simulations made before it existed
        text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("contact_lapsed:"))
    path = tmp / f"params-{lapsed}.yaml"
    path.write_text(text)
    return path


def _events(out: Path) -> pa.Table:
    return pq.read_table(out / "events")


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> dict[bool, pa.Table]:
    tmp = tmp_path_factory.mktemp("lapsed")
    result = {}
    for lapsed in (True, False):
        spec = SimSpec(CUSTOMERS, DAYS, SEED, str(_params_file(tmp, lapsed)), chunk_customers=700)
        simulate(spec, tmp / str(lapsed), workers=1)
        result[lapsed] = _events(tmp / str(lapsed))
    return result


@pytest.fixture(scope="module")
def latent() -> Latent:
    params = load_params()
    pop = draw_population(params, SEED, np.arange(CUSTOMERS, dtype=np.int64), DAYS)
    engine, st = Engine(replace(params, contact_lapsed=False)), State.initial(pop)
    churn_day = np.full(CUSTOMERS, DAYS, np.int64)
    for day in range(DAYS):
        d = engine.step(day, pop, st)
        churn_day[d.idx[d.churned]] = day
    # A churned customer's state no longer changes: it is their state at churn.
    return Latent(churn_day, st.stage, st.bad)


def _day_and_customer(events: pa.Table) -> tuple[Ints, Ints]:
    start = datetime.combine(load_params().start, time(), UTC)
    micros = events["ts"].cast(pa.int64()).to_numpy() - int(start.timestamp()) * 1_000_000
    cust = pc.utf8_slice_codeunits(events["customer_id"], 1).cast(pa.int64())
    return micros // DAY_US, cust.to_numpy()


def _after_churn(events: pa.Table, latent: Latent) -> npt.NDArray[np.bool_]:
    day, cust = _day_and_customer(events)
    after: npt.NDArray[np.bool_] = day > latent.churn_day[cust]
    return after


def test_the_default_contacts_the_lapsed_and_an_absent_key_means_false(tmp_path: Path) -> None:
    assert load_params().contact_lapsed is True
    assert load_params(_params_file(tmp_path, lapsed=False)).contact_lapsed is False


def test_lapsed_customers_get_contacts_at_the_policy_rate_and_nothing_else(
    logs: dict[bool, pa.Table], latent: Latent
) -> None:
    events = logs[True]
    after = _after_churn(events, latent)
    lapsed = events.filter(pa.array(after))
    assert set(lapsed["event_type"].to_pylist()) == {"action_sent"}
    # Every lapsed customer is eligible for some action (discount_email is open to all
    # stages), so each dead customer-day carries a contact with probability contact_rate.
    dead = latent.churn_day < DAYS
    dead_days = int((DAYS - 1 - latent.churn_day[dead]).sum())
    rate = load_params().contact_rate
    expected, se = rate * dead_days, np.sqrt(rate * (1 - rate) * dead_days)
    assert lapsed.num_rows > 100 and abs(lapsed.num_rows - expected) < 4 * se
    assert pc.count_distinct(events["event_id"]).as_py() == events.num_rows


def test_lapsed_contacts_log_the_policy_propensity(
    logs: dict[bool, pa.Table], latent: Latent
) -> None:
    p = load_params()
    events = logs[True]
    table = events.filter(pa.array(_after_churn(events, latent)))
    _, cust = _day_and_customer(table)
    lapsed = table.to_pandas()
    action = lapsed["action"].astype(object).map(p.actions.index).to_numpy()
    stage, bad = latent.stage[cust], latent.bad[cust]
    eligible = p.action_stages[:, stage].T & ~(p.action_requires_bad[None, :] & (bad[:, None] == 0))
    weights = eligible * p.action_weight[None, :]
    assert eligible[np.arange(len(action)), action].all()
    expected = p.contact_rate * weights[np.arange(len(action)), action] / weights.sum(axis=1)
    logged = lapsed["properties"].map(lambda s: json.loads(s)["propensity"]).to_numpy()
    np.testing.assert_allclose(logged, expected, rtol=1e-5)


def test_the_living_get_the_same_events_with_and_without_the_flag(
    logs: dict[bool, pa.Table], latent: Latent
) -> None:
    """Common random numbers: the flag only adds the lapsed contacts."""
    with_flag = logs[True].filter(pa.array(~_after_churn(logs[True], latent)))
    without = logs[False]
    assert not _after_churn(without, latent).any()
    assert with_flag.sort_by("event_id").equals(without.sort_by("event_id"))


def test_each_day_lists_customers_in_order(logs: dict[bool, pa.Table]) -> None:
    """Lapsed contacts slot in among the living's events: a part is ordered by day, then by
    customer, as without them."""
    for part in logs[True].to_batches():
        day, cust = _day_and_customer(pa.Table.from_batches([part]))
        key = day * CUSTOMERS + cust
        assert (np.diff(key) >= 0).all()


def test_without_the_key_the_log_is_what_it_was_before_the_flag(tmp_path: Path) -> None:
    """Old simulations must replay exactly: the oracle recompiles their own params.yaml. The
    digest was taken from the simulator before `contact_lapsed` existed (numpy 2 on x86-64);
    a deliberate change to the generative model changes it too, and breaks old simulations."""
    spec = SimSpec(300, 60, 1, str(_params_file(tmp_path, lapsed=False)))
    simulate(spec, tmp_path / "sim", workers=1)
    table = _events(tmp_path / "sim").sort_by("event_id")
    digest = hashlib.sha256(json.dumps(table.to_pylist(), default=str).encode()).hexdigest()
    assert table.num_rows == 6655
    assert digest == "291ca7cd30381eb034455ef5c724f59328b2d5767589b6d3d2e94fb3f1242ac8"


def test_the_fast_contact_rows_match_the_general_ones() -> None:
    params = load_params()
    pop = draw_population(params, SEED, np.arange(500, dtype=np.int64), 120)
    engine, emitter, st = Engine(params), Emitter(params, SEED), State.initial(pop)
    seen = 0
    for day in range(120):
        d = engine.step(day, pop, st)
        assert d.lapsed is not None
        fast = emitter._contact_rows(d.lapsed, pop.index)
        general = emitter._rows(d.lapsed, pop.index)
        for f in fields(fast):
            a, b = getattr(fast, f.name), getattr(general, f.name)
            assert a.dtype == b.dtype, f.name
            np.testing.assert_array_equal(a, b, err_msg=f.name)
        seen += len(d.lapsed.idx)
    assert seen > 20


def test_the_oracle_draws_no_lapsed_contacts(monkeypatch: pytest.MonkeyPatch) -> None:
    """They change no outcome, so the oracle must not pay for them (nor change its arms)."""
    params: SimParams = load_params()

    def refuse(*args: object) -> None:
        raise AssertionError("the oracle drew lapsed contacts")

    monkeypatch.setattr(Engine, "_lapsed", refuse)
    frame = oracle(params, 3, 60, 300, 40, 7, replicas=4, effects=True)
    assert (~frame.alive).any() and len(frame) > 100
