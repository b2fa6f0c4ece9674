"""The revenue-at-risk tile of a snapshot whose store knows no revenue (no conversion carries
a value): its tiers' revenue at risk is null, and the tile shows a dash, not a 0 that reads as a
real figure, with no change beside it."""

from __future__ import annotations

import json
from typing import Any

from tests.serving.dashboard.browser_setup import Server, Tab
from tests.serving.dashboard.dashboard_page import open_dashboard

DASH = "\u2014"


def _fulfil(body: Any) -> Any:
    text = json.dumps(body)
    return lambda route: route.fulfill(status=200, content_type="application/json", body=text)


def test_unknown_revenue_at_risk_is_a_dash(tab: Tab, server: Server) -> None:
    data = server.get("dashboard/data").json()
    assert data["tiers"] and any(t["change"] for t in data["tiers"])
    for tier in data["tiers"]:
        tier["revenue_at_risk"] = tier["expected_value"] = None
    tab.page.route("**/dashboard/data*", _fulfil(data))
    open_dashboard(tab, server)
    tile = tab.page.locator("#kpi-revenue-at-risk")
    assert tile.locator(".kpi-value").inner_text() == DASH
    assert tile.locator(".delta").count() == 0
    # A known figure beside it still shows: the customers tile counts them.
    assert tab.page.inner_text("#kpi-customers .kpi-value") not in ("", DASH)


def test_known_revenue_at_risk_is_shown(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    shown = tab.page.inner_text("#kpi-revenue-at-risk .kpi-value")
    assert shown not in ("", DASH)
