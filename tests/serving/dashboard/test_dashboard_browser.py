"""Opening the dashboard in headless Chromium: the key, its KPIs, a wrong key, no snapshot yet."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from serving.keys import Role
from tests.serving.dashboard.browser_setup import Server, Tab
from tests.serving.dashboard.dashboard_page import kpi, open_dashboard, screenshot


def test_the_page_loads_from_the_fragment_key_with_the_apis_figures(tab: Tab,
                                                                    server: Server) -> None:
    started = time.perf_counter()
    rendered_ms = open_dashboard(tab, server)
    wall = time.perf_counter() - started
    page = tab.page
    customers = page.get_attribute("[data-testid=kpi-customers] .kpi-value", "data-value")
    print(f"\nnavigation to first full render: {rendered_ms:.0f} ms measured in the page "
          f"({wall * 1000:.0f} ms wall clock), {customers} customers")
    assert rendered_ms < 5000  # a sanity bound; the 1M-customer figure is a benchmark's
    # The key left the address bar and lives in this tab's session storage.
    assert "key=" not in page.url
    assert page.evaluate("sessionStorage.getItem('journey.apiKey')") == server.key()

    data = server.get("dashboard/data").json()
    total = server.get("segments", params={"by": "tier"}).json()["total"]
    n = data["snapshot"]["customers"]
    text, raw = kpi(page, "customers")
    assert int(raw) == n == total["customers"] and text == f"{n:,}"
    _, raw = kpi(page, "revenue-at-risk")
    assert float(raw) == pytest.approx(total["revenue_at_risk"], rel=1e-9)
    high = next(t for t in data["tiers"] if t["key"]["tier"] == "high")
    text, raw = kpi(page, "high-risk")
    assert float(raw) == pytest.approx(high["customers"] / n)
    assert text == f"{100 * high['customers'] / n:.1f}%"
    kpis = data["journey_map"]["kpis"]
    for tile, name in (("conversion", "conversion_rate"), ("retention", "retention_rate")):
        text, raw = kpi(page, tile)
        assert float(raw) == pytest.approx(kpis[name]["value"])
        assert text == f"{100 * kpis[name]['value']:.1f}%"
    # Change since the previous snapshot, with its sign.
    delta = page.locator("[data-testid=kpi-customers] .delta")
    assert int(float(delta.get_attribute("data-value") or "nan")) == \
        total["change"]["customers"]
    for name, score in (("csat", kpis.get("csat")), ("nps", kpis.get("nps"))):
        shown = page.locator(f"[data-testid=kpi-{name}]").count() == 1
        assert shown == bool(score and score.get("count")), name
    if kpis.get("nps") and kpis["nps"]["count"]:
        assert float(kpi(page, "nps")[1]) == pytest.approx(kpis["nps"]["score"])
    assert data["snapshot"]["as_of"][:10] == kpi(page, "snapshot")[0]
    screenshot(page, "dashboard-full.png", full_page=True)


def test_a_wrong_key_shows_the_error_and_the_key_form(tab: Tab, server: Server) -> None:
    page = tab.page
    page.goto(f"{server.url}/dashboard#key=jk_not-a-key")
    page.wait_for_selector("body[data-state=key]")
    message = httpx.get(f"{server.url}/dashboard/data", headers={"X-API-Key": "jk_not-a-key"},
                        trust_env=False).json()["message"]
    assert message in page.inner_text("#key-error")
    assert page.is_visible("#key-form") and not page.is_visible("#content")
    assert page.evaluate("sessionStorage.getItem('journey.apiKey')") is None
    # A predict key is refused too (403), with the role named.
    page.fill("#key-input", server.key(Role.predict))
    page.click("#key-submit")
    page.wait_for_function("() => document.querySelector('#key-error').textContent"
                           ".includes('marketer')")
    assert page.is_visible("#key-form")
    # The right key in the form opens the dashboard.
    page.fill("#key-input", server.key())
    page.click("#key-submit")
    page.wait_for_selector("body[data-state=ready]")
    assert page.is_visible("#kpis")


def test_without_a_snapshot_the_page_says_to_run_journey_score(tab: Tab, server: Server) -> None:
    page = tab.page
    body = {"code": "no_snapshot", "message": "no score snapshot yet: an admin runs `journey "
            "score` (service stopped) or POST admin/score on this service", "field": None}
    # The server has snapshots: answer the page's data calls as a fresh service would.
    for pattern in ("**/dashboard/data*", "**/segments?*"):
        page.route(pattern, lambda route: route.fulfill(
            status=404, content_type="application/json", body=json.dumps(body)))
    page.goto(f"{server.url}/dashboard#key={server.key()}")
    page.wait_for_selector("body[data-state=no-snapshot]")
    text = page.inner_text("#message")
    assert "journey score" in text and not page.is_visible("#content")
