"""A customer's past contacts as the contact policy reads them: a send of an action the spec
does not know is no send of any catalog action, but still a contact on its channel."""

from __future__ import annotations

from datetime import UTC, datetime

from features.events import Encoder
from features.spec import load_spec
from models.actions import load_catalog
from models.catalog import DAY_US
from models.contact_policy import History
from models.contacts import contacts_from_arrays

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
