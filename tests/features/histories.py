"""Random event histories that stress the feature engines: ties, events exactly at the
cutoff, unknown channels and event types, actions on customer events (blank and padded ones
too), scores, bad JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa

from features.schema import EVENT_SCHEMA

CUTOFF = datetime(2025, 6, 1, tzinfo=UTC)
TYPES = [
    "ad_impression",
    "page_view",
    "product_view",
    "add_to_cart",
    "checkout",
    "purchase",
    "account_login",
    "support_ticket",
    "review",
    "survey_response",
    "referral",
    "action_sent",
    "email_open",
    "webinar",
]  # webinar: unknown to the taxonomy
CHANNELS = ["search", "email", "app", "direct", "tiktok", None]
# Blank and padded actions as the service stored them before it cleaned them: every engine
# reads them as the loader would have stored them (blank: no action; padded: trimmed).
ACTIONS = ["discount_email", "loyalty_offer", "mystery_action", "", "  ", " discount_email ",
           "\tloyalty_offer\n"]


def random_history(
    rng: np.random.Generator, customer: str, n: int, start: str = "e"
) -> list[dict[str, Any]]:
    """n events within ~200 days before (and a few at or after) the cutoff, with ties."""
    events: list[dict[str, Any]] = []
    base = rng.integers(0, 200 * 86_400, size=n)
    for i in range(n):
        tie = i > 0 and rng.random() < 0.3
        if tie:  # the same instant as the previous event (half the time the same type too)
            offset = base[i] = base[i - 1]
        elif rng.random() < 0.05:  # exactly at the cutoff or after it
            offset = -int(rng.integers(0, 3)) * 3600
        else:
            offset = base[i]
        etype = events[-1]["event_type"] if tie and rng.random() < 0.5 else str(rng.choice(TYPES))
        action = (
            str(rng.choice(ACTIONS)) if (etype == "action_sent" or rng.random() < 0.05) else None
        )
        props = None
        if etype in ("support_ticket", "review", "survey_response"):
            key = {"support_ticket": "csat", "review": "rating", "survey_response": "nps"}[etype]
            props = random_properties(rng, key)
        events.append(
            {
                "event_id": f"{start}{customer}-{i}",
                "customer_id": customer,
                "ts": CUTOFF - timedelta(seconds=int(offset)),
                "event_type": etype,
                "channel": rng.choice(np.array(CHANNELS, dtype=object)),
                "value": float(np.round(rng.uniform(1, 300), 2))
                if etype == "purchase" and rng.random() < 0.9
                else None,
                "action": action,
                "properties": props if props != "{bad json" else None,
            }
        )
    return events


# Score values by the engines' one rule (features.spec.SCORE_NUMBER): numbers and ASCII decimal
# text count; other text (Spark's ANSI cast used to fail the job on it), Unicode digits,
# padded or underscored numbers, non-finite values do not.
TEXT_VALUES = ["7", "+4", ".5", "5.", "1e1", "-0", "Infinity", "-inf", "NaN", "n/a", " 3 ",
               "1_000", "\u0663", "3\\n", "", "0x10", "1e400"]


def random_properties(rng: np.random.Generator, key: str) -> str | None:
    """Properties holding a score under ``key``, mostly as a plain number; else in the forms
    every engine must read alike (or not at all)."""
    score, r = int(rng.integers(0, 11)), rng.random()
    if r < 0.7:
        return f'{{"{key}": {score}}}'
    if r < 0.8:
        return f'{{"{key}": "{rng.choice(TEXT_VALUES)}"}}'
    forms = [
        f'{{"{key}": {score}, "{key}": 1}}',  # a key written twice: the first counts
        f'{{"{key}": {score}.25e0, "other": {{"{key}": 1}}}}',
        f'{{"{key}": true}}', f'{{"{key}": [{score}]}}', f'{{"{key}": null}}',
        f'{{"{key}": {{"value": {score}}}}}',
        f'{{"{key}": {score}, "x": NaN}}',  # not standard JSON: no score in any engine
        f'{{"{key}": {score},}}',
        "{bad json",
    ]
    props = str(rng.choice(forms))
    return None if props == "{bad json" else props


def to_table(events: list[dict[str, Any]]) -> pa.Table:
    rows = [{**e, "channel": e["channel"] or "unknown"} for e in events]
    return pa.Table.from_pylist(rows, schema=EVENT_SCHEMA)
