"""The simulator's day step: vectorised over customers (and, for the oracle, over replicas).

A customer's day: the logging policy may contact them (a marketing action, logged with its
propensity); an email may be opened and clicked; a session may happen (ads, then a site visit
down the funnel: product views, cart, checkout, purchase; after a first purchase also login,
support tickets, reviews, referrals, surveys); engagement decays and is bumped by activity;
finally the customer may churn for good. See docs/simulator.md.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import numpy.typing as npt

from features.simulator import rng
from features.simulator.day import Day
from features.simulator.params import PURCHASE_STAGE, STAGES, SimParams
from features.simulator.policy import ContactPolicy
from features.simulator.streams import (
    P_ACQ,
    P_ARRIVAL,
    P_DEVICE,
    P_ENGAGE,
    P_REGION,
    P_TYPE,
    S_ADS,
    S_BUY,
    S_CART,
    S_CHANNEL,
    S_CHECKOUT,
    S_CHURN,
    S_CLICK,
    S_CSAT,
    S_EMAIL_CLICK,
    S_LOGIN,
    S_NPS,
    S_OPEN,
    S_PRODUCTS,
    S_RATING,
    S_REFERRAL,
    S_REVIEW,
    S_SESSION,
    S_SURVEY,
    S_TICKET,
    S_VALUE,
)

Ints = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
F = npt.NDArray[np.float64]

DECISION = STAGES.index("decision")
AD_CHANNELS = ("search", "social", "display")
EMAIL_CHANNEL = "email"


@dataclass
class Population:
    index: Ints  # global customer number
    keys: npt.NDArray[np.uint64]
    type: Ints
    region: Ints
    device: Ints
    acquisition: Ints
    arrival: Ints  # day of the first touch
    e0: F  # starting engagement

    def take(self, sel: Ints) -> Population:
        return Population(**{f.name: getattr(self, f.name)[sel] for f in fields(self)})


def draw_population(p: SimParams, seed: int, index: Ints, days: int) -> Population:
    keys = rng.customer_keys(seed, index)
    ctype = rng.categorical(rng.uniform(keys, P_TYPE), p.t["share"])
    window = max(1, int(days * p.arrival_share))
    return Population(
        index=index,
        keys=keys,
        type=ctype,
        region=rng.categorical(rng.uniform(keys, P_REGION), p.tv["region"][ctype]),
        device=rng.categorical(rng.uniform(keys, P_DEVICE), p.tv["device"][ctype]),
        acquisition=rng.categorical(rng.uniform(keys, P_ACQ), p.tv["acquisition"][ctype]),
        arrival=np.floor(rng.uniform(keys, P_ARRIVAL) * window).astype(np.int64),
        e0=p.t["engagement"][ctype] * np.exp(0.3 * rng.normal(keys, P_ENGAGE) - 0.045),
    )


@dataclass
class State:
    stage: npt.NDArray[np.int8]  # furthest stage reached (the latent journey position)
    engagement: F
    alive: B
    bad: npt.NDArray[np.int16]  # bad support experiences so far
    purchases: npt.NDArray[np.int32]
    last_active: npt.NDArray[np.int32]
    act: npt.NDArray[np.int8]  # active marketing action, -1 none
    act_until: npt.NDArray[np.int32]
    act_post: B  # the action was applied after the first purchase

    @classmethod
    def initial(cls, pop: Population) -> State:
        n = len(pop.index)
        return cls(
            stage=np.zeros(n, np.int8),
            engagement=pop.e0.copy(),
            alive=np.ones(n, bool),
            bad=np.zeros(n, np.int16),
            purchases=np.zeros(n, np.int32),
            last_active=pop.arrival.astype(np.int32),
            act=np.full(n, -1, np.int8),
            act_until=np.zeros(n, np.int32),
            act_post=np.zeros(n, bool),
        )

    def copy(self) -> State:
        return State(**{f.name: getattr(self, f.name).copy() for f in fields(self)})

    def take(self, sel: Ints) -> State:
        return State(**{f.name: getattr(self, f.name)[sel] for f in fields(self)})


class Engine:
    """Steps a population day by day; ``replica`` picks an independent future (0 = the data)."""

    def __init__(self, params: SimParams) -> None:
        self.p = params
        self.policy = ContactPolicy(params)
        chans = params.session_channels
        self.ad_channel = np.array([c in AD_CHANNELS for c in chans])
        self.email_channel = chans.index(EMAIL_CHANNEL)
        self.acq_to_session = np.array([chans.index(c) for c in params.acquisition_channels])
        self.action_is_email = np.array([c == EMAIL_CHANNEL for c in params.action_channel])

    def step(
        self,
        day: int,
        pop: Population,
        st: State,
        replica: int | Ints = 0,
        forced: int | None = None,
    ) -> Day:
        """Advance every arrived, alive customer by one day; ``forced`` overrides the policy
        (an action index, or -1 for "no contact") for the oracle's treatment arms. With
        ``contact_lapsed`` the day also carries the policy's contacts of the lapsed."""
        arrived = pop.arrival <= day
        # Before this day's churn: a customer who churns today is contacted as alive or not at all.
        lapsed = self._lapsed(day, pop, st, arrived, replica) if self.p.contact_lapsed else None
        idx = np.flatnonzero(st.alive & arrived)
        rep = replica if isinstance(replica, int) else replica[idx]
        keys = rng.day_keys(pop.keys[idx], day, rep)  # type: ignore[arg-type]
        ctype = pop.type[idx]
        stage = st.stage[idx].copy()
        contacted, action, propensity = self.policy.draw(keys, stage, st.bad[idx], forced)
        self._apply_action(st, idx, day, contacted, action, stage)
        mult = self._multipliers(st, idx, ctype, day)
        opened = rng.uniform(keys, S_OPEN) < self._p_open(ctype, contacted, action)
        clicked = opened & (rng.uniform(keys, S_EMAIL_CLICK) < self.p.t["email_click"][ctype])
        p_sess = self._p_session(st, idx, ctype, mult)
        first = pop.arrival[idx] == day
        session = (rng.uniform(keys, S_SESSION) < p_sess) | first | clicked
        d = self._session(day, idx, keys, ctype, stage, st, session, clicked, first, pop, mult)
        d.contacted, d.action, d.propensity = contacted, action, propensity
        d.opened, d.clicked_email = opened, clicked
        d.reached = np.maximum(d.reached, np.where(opened, 0, -1).astype(np.int8))
        self._update(st, d, ctype, mult)
        d.lapsed = lapsed
        return d

    def _lapsed(self, day: int, pop: Population, st: State, arrived: B, replica: int | Ints) -> Day:
        """The policy's contacts of arrived customers who silently churned: the business cannot
        tell them from the living, so it draws their contacts by the same rule and the same
        random numbers (their stage and support history stay as they were at churn)."""
        gone = np.flatnonzero(arrived & ~st.alive)
        rep = replica if isinstance(replica, int) else replica[gone]
        keys = rng.day_keys(pop.keys[gone], day, rep)  # type: ignore[arg-type]
        sel, action, propensity = self.policy.draw_sparse(keys, st.stage[gone], st.bad[gone])
        who = gone[sel]
        return Day.contacts_only(day, who, keys[sel], st.stage[who], action, propensity)

    def _apply_action(
        self,
        st: State,
        idx: Ints,
        day: int,
        contacted: B,
        action: Ints,
        stage: npt.NDArray[np.int8],
    ) -> None:
        where = idx[contacted]
        st.act[where] = action[contacted]
        st.act_until[where] = day + self.p.effect_days
        st.act_post[where] = stage[contacted] >= PURCHASE_STAGE

    def _multipliers(self, st: State, idx: Ints, ctype: Ints, day: int) -> F:
        """(n, 4) multipliers on session, buy, churn and advocacy from the active action."""
        mult = np.ones((len(idx), 4))
        act = st.act[idx].astype(np.int64)
        on = (act >= 0) & (day < st.act_until[idx])
        if on.any():
            a, post = act[on], st.act_post[idx][on].astype(np.int64)
            m = self.p.effect[a, ctype[on], post]
            unhappy = self.p.has_unhappy[a] & (st.bad[idx][on] > 0)
            m[unhappy] = self.p.unhappy[a[unhappy]]
            mult[on] = m
        return mult

    def _session(
        self,
        day: int,
        idx: Ints,
        keys: npt.NDArray[np.uint64],
        ctype: Ints,
        stage: npt.NDArray[np.int8],
        st: State,
        session: B,
        clicked: B,
        first: B,
        pop: Population,
        mult: F,
    ) -> Day:
        p = self.p
        d = Day.blank(day, idx, keys, stage)
        d.session = session
        s = np.flatnonzero(session)
        ks, ts = keys[s], ctype[s]
        mix = p.shift_on(day).channels  # a shift's mix is the same for every type
        chan = rng.categorical(
            rng.uniform(ks, S_CHANNEL), p.tv["channels"][ts] if mix is None else mix
        )
        chan = np.where(first[s], self.acq_to_session[pop.acquisition[idx[s]]], chan)
        chan = np.where(clicked[s], self.email_channel, chan)
        d.channel[s] = chan
        ads = self.ad_channel[chan] & ~clicked[s]
        d.impressions[s] = np.where(ads, 1 + rng.geometric(rng.uniform(ks, S_ADS), 0.6), 0)
        d.ad_click[s] = ads & (rng.uniform(ks, S_CLICK) < p.t["ad_click"][ts])
        d.visit[s] = ~ads | d.ad_click[s]
        visit, impressions = d.visit, d.impressions
        self._visit(d, np.flatnonzero(visit), ctype, st, idx, mult)
        reached = np.where(impressions > 0, 0, -1)
        for flag, stage_name in (
            (visit, "consideration"),
            (d.cart, "decision"),
            (d.buy, "purchase"),
            (d.login | d.ticket | d.survey, "retention"),
            (d.review | d.referral, "advocacy"),
        ):
            reached = np.where(flag, STAGES.index(stage_name), reached)
        d.reached = reached.astype(np.int8)
        return d

    def _visit(self, d: Day, v: Ints, ctype: Ints, st: State, idx: Ints, mult: F) -> None:
        """The site visit funnel for the visiting customers ``v`` (positions in ``idx``)."""
        p, kv, tv = self.p, d.keys[v], ctype[v]
        shift = p.shift_on(d.day)
        stage = d.stage_before[v]
        post = stage >= PURCHASE_STAGE

        def u(stream: int) -> F:
            return rng.uniform(kv, stream)

        d.login[v] = post & (u(S_LOGIN) < p.t["login"][tv])
        d.products[v] = rng.geometric(u(S_PRODUCTS), p.t["products"][tv])
        keen = np.where(stage >= DECISION, 1.5, 1.0)
        d.cart[v] = (d.products[v] > 0) & (u(S_CART) < p.t["cart"][tv] * keen)
        d.checkout[v] = d.cart[v] & (u(S_CHECKOUT) < p.t["checkout"][tv])
        p_buy = np.minimum(p.t["buy"][tv] * mult[v, 1] * shift.buy, 0.98)
        d.buy[v] = d.checkout[v] & (u(S_BUY) < p_buy)
        act = st.act[idx[v]].astype(np.int64)
        discounted = (act >= 0) & (d.day < st.act_until[idx[v]])
        discount = np.where(discounted, p.action_discount[np.maximum(act, 0)], 0.0)
        basket = (
            p.t["basket"][tv] * shift.price * np.exp(0.5 * rng.normal(kv, S_VALUE) - 0.125)
            * (1 - discount)
        )
        d.value[v] = np.where(d.buy[v], np.maximum(np.round(basket, 2), 1.0), 0.0)
        d.ticket[v] = post & (u(S_TICKET) < p.t["ticket"][tv])
        bad = d.ticket[v] & (u(S_CSAT) < p.t["bad_csat"][tv])
        r = u(S_RATING)
        d.csat[v] = np.where(d.ticket[v], np.where(bad, 1 + (r < 0.5), 3 + np.floor(r * 3)), 0)
        happy = (st.bad[idx[v]] == 0) & ~bad
        adv = mult[v, 3]
        d.review[v] = post & (u(S_REVIEW) < p.t["review"][tv] * adv)
        d.rating[v] = np.where(d.review[v], np.where(happy, 4 + (r < 0.6), 1 + np.floor(r * 3)), 0)
        d.referral[v] = post & happy & (u(S_REFERRAL) < p.t["referral"][tv] * adv)
        d.survey[v] = post & (u(S_SURVEY) < p.t["survey"][tv])
        score = u(S_NPS)
        d.nps[v] = np.where(
            d.survey[v], np.where(happy, 6 + np.floor(score * 5), np.floor(score * 7)), 0
        ).astype(np.int64)
        d.csat[v] = np.where(bad, np.minimum(d.csat[v], 2), d.csat[v])

    def _p_open(self, ctype: Ints, contacted: B, action: Ints) -> F:
        """P(opening today's contact): the type's rate for an email action, else 0."""
        email = contacted & self.action_is_email[np.maximum(action, 0)]
        return np.where(email, self.p.t["email_open"][ctype], 0.0)

    def _p_session(self, st: State, idx: Ints, ctype: Ints, mult: F) -> F:
        rate = self.p.t["session_rate"][ctype] * st.engagement[idx] * mult[:, 0]
        return np.clip(rate, 0, 0.9)

    def _decayed(self, st: State, idx: Ints, ctype: Ints) -> F:
        eng = self.p.engagement
        return eng["floor"] + (st.engagement[idx] - eng["floor"]) * self.p.t["decay"][ctype]

    def _hazard(self, st: State, idx: Ints, ctype: Ints, mult: F, day: int) -> F:
        p = self.p
        idle = (day - st.last_active[idx]) / 30.0
        return (
            p.t["churn"][ctype]
            * (1 + p.churn["bad_experience"] * st.bad[idx])
            * (1 + p.churn["inactivity_per_30d"] * idle)
            * mult[:, 2]
            * p.shift_on(day).churn
        )

    def hazard(self, day: int, pop: Population, st: State, idx: Ints) -> F:
        """The chance that customers ``idx`` churn at the end of ``day``, ``st`` being their
        state once the day's activity is recorded (with the action active that day)."""
        ctype = pop.type[idx]
        return self._hazard(st, idx, ctype, self._multipliers(st, idx, ctype, day), day)

    def quiet_day(self, day: int, pop: Population, st: State, idx: Ints) -> tuple[F, F]:
        """Day ``day`` for customers ``idx`` on the hypothesis that they are alive and do
        nothing: the logging policy's contacts (the data's, replica 0) apply, engagement decays,
        nothing else changes. Returns P(no session and no email open that day) and the hazard
        of churning at its end: what weighs "still there, just quiet" against "silently gone"
        for a customer the log has not heard from (``features.simulator.posterior``)."""
        keys = rng.day_keys(pop.keys[idx], day, 0)
        ctype = pop.type[idx]
        stage = st.stage[idx].copy()
        contacted, action, _ = self.policy.draw(keys, stage, st.bad[idx])
        self._apply_action(st, idx, day, contacted, action, stage)
        mult = self._multipliers(st, idx, ctype, day)
        quiet = (1 - self._p_open(ctype, contacted, action)) * (
            1 - self._p_session(st, idx, ctype, mult))
        st.engagement[idx] = np.minimum(self._decayed(st, idx, ctype), self.p.engagement["cap"])
        return quiet, self._hazard(st, idx, ctype, mult, day)

    def _update(self, st: State, d: Day, ctype: Ints, mult: F) -> None:
        p, idx = self.p, d.idx
        eng = p.engagement
        e = self._decayed(st, idx, ctype)
        e = e + eng["session_bump"] * d.session + eng["purchase_bump"] * d.buy
        bad_now = d.ticket & (d.csat <= 2)
        e = np.where(bad_now, e * eng["bad_experience"], e)
        st.engagement[idx] = np.minimum(e, eng["cap"])
        st.bad[idx] += bad_now
        st.purchases[idx] += d.buy
        st.stage[idx] = np.maximum(st.stage[idx], d.reached)
        active = d.active
        st.last_active[idx] = np.where(active, d.day, st.last_active[idx])
        d.churned = rng.uniform(d.keys, S_CHURN) < self._hazard(st, idx, ctype, mult, d.day)
        st.alive[idx] = ~d.churned
