"""A customer's past contacts as the contact policy reads them: a send of an action the spec
does not know is no send of any catalog action, but still a contact on its channel."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np

from features.events import Encoder, EventArrays
from features.spec import load_spec
from models.actions import load_catalog
from models.catalog import DAY_US
from models.contact_policy import History
from models.contacts import contacts_from_arrays, sent_after

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_an_unknown_action_counts_only_toward_global_and_channel_caps() -> None:
    spec, catalog = load_spec(), load_catalog()
    sent = [{"event_type": "action_sent", "channel": "email", "action": "Discount Email",
             "ts": NOW}] * 2
    arrays = Encoder(spec).one_customer("c1", sent)
    contacts = contacts_from_arrays(arrays, spec)
    assert [(c.action, c.channel) for c in contacts] == [(None, "email")] * 2
    now_us = round(NOW.timestamp() * 1e6) + DAY_US
    history = History(catalog, contacts, now_us)
    # Both policy caps (3 a week, 2 emails a week) see them; discount_email's cool-down does not.
    assert history.counts == [2, 2]
    assert "discount_email" not in history.ages
    i = catalog.index["discount_email"]
    assert history.blocks(catalog, i) == ("contact_policy", "email cap 2 per 7 days reached "
                                          "(2 sent)")


def test_sent_after_gives_each_customer_their_own_contacts() -> None:
    """A scoring run reads every customer's contacts in one pass: the same as each customer's
    events read alone, customers without any contact included."""
    spec = load_spec()
    enc = Encoder(spec)
    day = 86_400.0
    events = {
        "a": [{"event_type": "action_sent", "channel": "email", "action": "discount_email",
               "ts": datetime.fromtimestamp(NOW.timestamp() - 3 * day, UTC)},
              {"event_type": "page_view", "channel": "web", "ts": NOW}],
        "b": [{"event_type": "page_view", "channel": "web", "ts": NOW}],
        "c": [{"event_type": "action_sent", "channel": "sms", "action": "Unknown Offer",
               "ts": NOW},
              {"event_type": "action_sent", "channel": "email", "action": "discount_email",
               "ts": datetime.fromtimestamp(NOW.timestamp() + day, UTC)}],
    }
    alone = {cid: contacts_from_arrays(enc.one_customer(cid, evs), spec)
             for cid, evs in events.items()}
    parts = [enc.one_customer(cid, evs) for cid, evs in events.items()]
    def joined(name: str) -> Any:
        return np.concatenate([getattr(p, name) for p in parts])

    arrays = EventArrays(
        list(events), np.concatenate([np.full(len(p), k, np.int32) for k, p in enumerate(parts)]),
        joined("ts"), joined("etype"), joined("channel"), joined("action"), joined("value"),
        joined("score"))
    sent = sent_after(arrays, spec, -(2**62))
    got = {cid: sent.contacts(row) for row, cid in enumerate(arrays.customer_ids)}
    assert got == alone
    assert alone["b"] == [] and len(alone["c"]) == 2 and alone["c"][0].action is None
    # Those older than the catalog's longest window are left out: the policy counts none.
    catalog = load_catalog()
    for now in (NOW.timestamp() + day, NOW.timestamp() + 40 * day):
        now_us = round(now * 1e6)
        kept_sent = sent_after(arrays, spec, now_us - catalog.horizon_us)
        recent = [kept_sent.contacts(row) for row in range(len(arrays.customer_ids))]
        for cid, mine in zip(arrays.customer_ids, recent, strict=True):
            everything, kept = History(catalog, alone[cid], now_us), History(catalog, mine, now_us)
            assert (kept.counts, kept.ages) == (everything.counts, everything.ages)
    assert recent == [[], [], []] and catalog.horizon_us < 39 * DAY_US
