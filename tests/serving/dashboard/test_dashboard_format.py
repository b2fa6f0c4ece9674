"""How the dashboard writes its figures, in headless Chromium: short money in every locale
(a German browser too) within its tile, the segment table within its card, change colours that
agree with the rounded change shown, CSAT intervals with even decimals, and the trigger firings
in plain words."""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import pytest

from tests.serving.dashboard.browser_setup import Server, Tab
from tests.serving.dashboard.dashboard_page import open_dashboard, screenshot

FORMAT = 'new URL("dashboard/assets/format.js", document.baseURI).href'
# Each tile value, segment cell and chart label that reads a change: [text, class].
DELTAS = """() => [...document.querySelectorAll(
    '#kpis .delta, #segment-table td[data-col^="d_"], #tiers tspan.delta')]
    .map(e => [e.textContent, e.getAttribute('class') || ''])"""
TO = "\u2013"  # the en dash of an interval
OVERFLOWING = """() => [...document.querySelectorAll('#kpis .kpi-value')]
    .filter(v => v.scrollWidth > v.clientWidth + 1).map(v => v.textContent)"""


def _fulfil(body: Any) -> Any:
    text = json.dumps(body)
    return lambda route: route.fulfill(status=200, content_type="application/json", body=text)


@pytest.mark.parametrize("width", [1366, 1400])
def test_money_is_short_in_a_german_browser_and_every_tile_fits(tab_de: Tab, server: Server,
                                                               width: int) -> None:
    """de-DE's compact notation does not shorten thousands: revenue at risk read 260.028,6 and
    ran out of its tile. The page's own thresholds shorten it in every locale."""
    data = server.get("dashboard/data").json()
    for tier in data["tiers"]:  # a shop a thousand times the served world's
        tier["revenue_at_risk"] *= 1000
        if tier["change"]:
            tier["change"]["revenue_at_risk"] *= 1000
    tab_de.page.route("**/dashboard/data*", _fulfil(data))
    tab_de.page.set_viewport_size({"width": width, "height": 900})
    open_dashboard(tab_de, server)
    page = tab_de.page
    shown = page.inner_text("#kpi-revenue-at-risk .kpi-value")
    assert re.fullmatch(r"-?\d{1,3}(,\d)?[KMB]", shown), shown
    assert page.evaluate(OVERFLOWING) == []
    assert "," in page.inner_text("#kpi-high-risk .kpi-value")  # German digits: 12,3 %
    short = page.evaluate(f"""async () => {{
        const {{ fmt }} = await import({FORMAT});
        return [260028.6, 36708.5, 4821049, 999960, 9876, 1.5e9, -98765]
            .map((v) => fmt.moneyShort(v));
    }}""")
    assert short[:6] == ["260K", "36,7K", "4,8M", "1M", "9.876", "1,5B"]
    assert short[6].endswith("98,8K") and short[6][0] in "-\u2212"
    screenshot(page.locator("#kpis"), f"dashboard-kpis-de-{width}.png")


def test_change_colours_follow_the_rounded_change_shown(tab: Tab, server: Server) -> None:
    """A change that reads "0.0 pp" or "0" is flat (grey), not a rise or a fall: its colour
    comes from the value as shown, not the unrounded one."""
    page = tab.page
    segs = server.get("segments", params={"by": "tier,stage"}).json()
    for i, s in enumerate(segs["segments"]):  # tiny changes that round to nothing
        s["change"] = {"customers": 0, "mean_risk": 0.0004 * (-1) ** i,
                       "revenue_at_risk": 0.3 * (-1) ** i}
    data = server.get("dashboard/data").json()
    for tier in data["tiers"]:
        tier["change"] = {"customers": 0, "mean_risk": 1e-5, "revenue_at_risk": 0.1}
    page.route("**/segments?*", _fulfil(segs))
    page.route("**/dashboard/data*", _fulfil(data))
    open_dashboard(tab, server)
    deltas = page.evaluate(DELTAS)
    assert len(deltas) > 10
    zero = [(text, cls) for text, cls in deltas if not re.search(r"[1-9]", text)]
    assert zero and all("flat" in cls for _, cls in zero), zero
    tiles = page.eval_on_selector_all("#kpis .delta", "ds => ds.map(d => d.textContent)")
    assert tiles and all(t.startswith("■") for t in tiles)  # no ▲ over a "0.0 pp"
    classes = page.evaluate(f"""async () => {{
        const {{ fmt }} = await import({FORMAT});
        const c = await import(new URL("dashboard/assets/charts.js", document.baseURI).href);
        return [["pp", 0.0004], ["pp", -0.0006], ["money", -0.4], ["money", 0.6],
                ["moneyShort", 12349], ["count", 0]]
            .map(([k, v]) => c.deltaClass(fmt.shown(k, v), true));
    }}""")
    assert classes == ["delta flat", "delta good", "delta flat", "delta bad", "delta bad",
                       "delta flat"]


def test_the_segment_table_fits_its_card_at_1400_px(tab: Tab, server: Server) -> None:
    """With the change columns and the top action, the table was wider than its card and its
    last column cut off; it fits at 1400 px, and narrower it scrolls sideways."""
    page = tab.page
    page.set_viewport_size({"width": 1400, "height": 900})
    open_dashboard(tab, server)
    assert page.locator("#segment-table th[data-col=d_revenue_at_risk]").count() == 1
    assert page.locator("#segment-table th[data-col=top_action]").count() == 1
    fit = page.eval_on_selector("#segments .table-wrap", """w => {
        const last = w.querySelector('th[data-col=top_action]').getBoundingClientRect();
        return [w.scrollWidth, w.clientWidth, last.right, w.getBoundingClientRect().right];
    }""")
    assert fit[0] <= fit[1] + 1 and fit[2] <= fit[3] + 1, fit
    screenshot(page.locator("#segments"), "dashboard-segments-1400.png")
    page.set_viewport_size({"width": 900, "height": 900})
    reach = page.eval_on_selector("#segments .table-wrap", """w => {
        w.scrollLeft = w.scrollWidth;
        const last = w.querySelector('th[data-col=top_action]').getBoundingClientRect();
        return [getComputedStyle(w).overflowX, last.right <= w.getBoundingClientRect().right + 1];
    }""")
    assert reach == ["auto", True]


def test_csat_intervals_keep_two_decimals(tab: Tab, server: Server) -> None:
    """3.63 to 3.70, not 3.63 to 3.7: both ends and the mean with the same decimals."""
    kpis = server.get("kpis").json()
    kpis["overall"]["csat"] = {**(kpis["overall"]["csat"] or {}), "mean": 3.6,
                               "mean_ci95": [3.63, 3.7], "count": 12,
                               "satisfied": {"value": 0.5, "count": 6, "of": 12,
                                             "ci95": [0.2, 0.8]}}
    tab.page.route("**/kpis*", _fulfil(kpis))
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#kpi-table tfoot tr")
    assert page.inner_text("#kpi-table tfoot td:nth-child(7)") == f"3.60 3.63{TO}3.70"
    ends = page.eval_on_selector_all("#kpi-table td:nth-child(7) .ci",
                                     "cs => cs.map(c => c.textContent)")
    for text in ends:
        assert re.fullmatch(rf"\d\.\d\d{TO}\d\.\d\d", text), text


FIRED = "2026-12-05T16:51:07.123456Z"
FIRINGS: dict[str, Any] = {
    "matched": 3, "next_before": None,
    "counts": {"delivered": 1, "dead": 1, "retrying": 1, "pending": 0},
    "firings": [
        {"firing_id": "f1", "rule": "entered_decision", "customer_id": "-2+3+cmd",
         "as_of": "2026-01-01T00:00:00Z", "fired_at": FIRED, "source": "events",
         "status": "dead",
         "details": {"reason": "stage none -> decision", "stage": "decision",
                     "previous_stage": None},
         "deliveries": [{"endpoint": "automation", "status": "dead", "attempts": 3,
                         "http_status": None, "last_error": "ConnectError: refused",
                         "next_attempt_at": None, "updated_at": FIRED}]},
        {"firing_id": "f2", "rule": "churn_risk_high", "customer_id": "C2",
         "as_of": "2026-01-01T00:00:00Z", "fired_at": FIRED, "source": "scoring run",
         "status": "retrying",
         "details": {"reason": "churn 0.550 -> 0.630 crossed 0.6 upward", "threshold": 0.6,
                     "direction": "up", "churn_before": 0.55, "churn": 0.63},
         "deliveries": [{"endpoint": "crm", "status": "retrying", "attempts": 1,
                         "http_status": 500, "last_error": "HTTP 500",
                         "next_attempt_at": "2026-12-05T16:52:00Z", "updated_at": FIRED}]},
        {"firing_id": "f3", "rule": "entered_decision", "customer_id": "C3",
         "as_of": "2026-01-01T00:00:00Z", "fired_at": "2026-12-05T16:49:00Z",
         "source": "events", "status": "delivered",
         "details": {"reason": "stage consideration -> decision", "stage": "decision",
                     "previous_stage": "consideration"},
         "deliveries": [{"endpoint": "automation", "status": "delivered", "attempts": 1,
                         "http_status": 200, "last_error": None, "next_attempt_at": None,
                         "updated_at": FIRED}]},
    ]}


def _firing_rows(page: Any) -> list[list[str]]:
    rows: list[list[str]] = page.eval_on_selector_all(
        "#trigger-table tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.innerText))")
    return rows


def test_trigger_firings_say_when_why_and_what_failed(tab: Tab, server: Server) -> None:
    """When each firing happened (not the service's clock on every row), why in words, the
    last error of a failed or retrying delivery in view, and plurals that agree."""
    body = copy.deepcopy(FIRINGS)
    page = tab.page
    page.route("**/triggers/firings*", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(body)))
    open_dashboard(tab, server)
    page.wait_for_selector("#trigger-table tbody tr[data-firing]")
    assert page.inner_text("#trigger-table thead th:first-child") == "Fired"
    rows = _firing_rows(page)
    assert [r[0] for r in rows] == ["2026-12-05 16:51 UTC"] * 2 + ["2026-12-05 16:49 UTC"]
    assert [r[3] for r in rows] == [
        "Reached decision (first stage seen)",
        "Churn risk rose from 55.0% to 63.0%, above 60%",
        "Moved from consideration to decision"]
    assert "failed" in rows[0][4] and "automation: ConnectError: refused (3 attempts)" in rows[0][4]
    assert "crm: HTTP 500 (1 attempt; next try 2026-12-05 16:52 UTC)" in rows[1][4]
    assert rows[2][4] == "delivered"
    assert page.is_visible("#trigger-table .firing-error")  # not only in a tooltip
    meta = page.inner_text("#triggers-meta")
    assert meta.startswith("3 firings: 1 delivered, 1 in progress, 1 failed")
    assert "evaluated as of 2026-01-01 00:00 UTC" in meta  # said once, not on every row
    assert "evaluated" not in page.inner_text("#trigger-table tbody")
    screenshot(page.locator("#triggers"), "dashboard-triggers.png")
    # Evaluations at different times: each row says its own, where it differs from the firing.
    one = body["firings"][0]
    body.update(counts={"delivered": 0, "dead": 2, "retrying": 0, "pending": 0},
                firings=[one, {**one, "firing_id": "f4", "as_of": FIRED}])
    page.reload()
    page.wait_for_selector("#trigger-table tbody tr[data-firing=f4]")
    rows = _firing_rows(page)
    assert "evaluated as of 2026-01-01 00:00 UTC" in rows[0][0]
    assert "evaluated" not in rows[1][0]  # the same minute as it fired
    assert "evaluated" not in page.inner_text("#triggers-meta")
    words = page.evaluate("""async () => {
        const t = await import(new URL("dashboard/assets/triggers.js", document.baseURI).href);
        return [t.plural(1, "firing"), t.plural(11, "firing"),
                t.firingReason({reason: "stage none -> decision"}),
                t.firingReason({days: 30, inactive_days: 31.2,
                                last_activity: "2025-12-01T10:00:00Z"})];
    }""")
    assert words == ["1 firing", "11 firings", "stage none → decision",
                     "No activity for 31 days (last on 2025-12-01)"]
