"""Hand-built histories and helpers shared by the feature kernel tests (test_kernel*.py).

Every expected value in those tests is computed by hand from the definitions in docs/features.md
with the shipped spec (windows 7/30/90 days, session gap 30 min, response window 72 h, CSAT low
<= 2) and taxonomy (stage codes: awareness 0, consideration 1, decision 2, purchase 3,
retention 4, advocacy 5). The ``spec`` and ``online`` fixtures live in this package's conftest.py.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from features.online import OnlineFeatures

T = datetime(2024, 6, 1, tzinfo=UTC)
US = timedelta(microseconds=1)
Event = dict[str, Any]


def ago(days: float = 0, hours: float = 0, minutes: float = 0, us: int = 0) -> datetime:
    """T minus a duration (``us``: extra microseconds further back)."""
    return T - timedelta(days=days, hours=hours, minutes=minutes, microseconds=us)


def ev(at: datetime, event_type: str, channel: str = "direct", value: float | None = None,
       action: str | None = None, properties: str | None = None) -> Event:
    """One event in the contract (a tz-aware ts)."""
    return {"event_id": f"{event_type}@{at.isoformat()}/{channel}/{action}", "customer_id": "c1",
            "ts": at, "event_type": event_type, "channel": channel, "value": value,
            "action": action, "properties": properties}



def vec(online: OnlineFeatures, events: list[Event] | pa.Table,
        cutoff: datetime = T) -> dict[str, Any]:
    return online.vector("c1", events, cutoff)


def same(a: dict[str, Any], b: dict[str, Any]) -> None:
    """Two vectors are identical (NaN equals NaN)."""
    assert a.keys() == b.keys()
    diff = {k: (a[k], b[k]) for k in a
            if not (a[k] == b[k] or (isinstance(a[k], float) and isinstance(b[k], float)
                                      and math.isnan(a[k]) and math.isnan(b[k])))}
    assert diff == {}


def isnan(x: object) -> bool:
    return isinstance(x, float) and math.isnan(x)

