"""What the dashboard's words and colours tell a marketer, in headless Chromium: which stage a
panel counts, what money is a total of, NPS with its sign, a drift panel without data, and the
page's accessibility (one h1, named tables, text contrast, KPI labels not cut)."""

from __future__ import annotations

import json

import pytest

from tests.serving.dashboard.browser_setup import Server, Tab
from tests.serving.dashboard.dashboard_page import kpi, open_dashboard

# Each element matching a selector: its text colour and the first opaque background behind it.
COLOURS = """selectors => {
    const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
    const opaque = (c) => c.length === 3 || (c.length === 4 && c[3] > 0);
    const behind = (el) => {
        for (let e = el; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (opaque(c)) return c.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const out = [];
    for (const sel of selectors) {
        for (const el of document.querySelectorAll(sel)) {
            if (!el.getClientRects().length || !el.textContent.trim()) continue;
            out.push([sel, el.textContent.trim().slice(0, 40),
                      rgb(getComputedStyle(el).color).slice(0, 3), behind(el)]);
        }
    }
    return out;
}"""
SMALL_TEXT = (".hint", ".card-meta", ".foot span", "#kpi-table .ci", ".kpi-sub", ".status",
              ".pill.tier-low", ".pill.tier-medium", ".pill.tier-high",
              "#trigger-table td.firing-delivered", ".drift-badge", "td.muted", ".chip")


def _luminance(rgb: list[float]) -> float:
    def channel(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.03928 else float(((c + 0.055) / 1.055) ** 2.4)
    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(fg: list[float], bg: list[float]) -> float:
    hi, lo = sorted((_luminance(fg), _luminance(bg)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_stage_and_money_labels_say_what_they_count(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    head = page.locator("#segment-table th[data-col='key:stage']")
    assert head.inner_text().startswith("Current stage")
    assert "furthest stage reached" in (head.get_attribute("title") or "")
    assert page.inner_text("label:has(#by-stage)").strip() == "Current stage"
    assert "Current stage" in page.inner_text("#filter-stage summary")
    assert page.inner_text("#stage-tiers >> xpath=preceding-sibling::h3[1]").startswith(
        "Current stage by risk tier")
    assert "reached" in page.inner_text("#funnel >> xpath=preceding-sibling::figcaption")
    assert page.inner_text("#segment-table th[data-col=expected_value]") == \
        "Expected value (total)"
    # The button's label; its sort mark (the table's default order) is the eye's only.
    assert page.eval_on_selector("#segment-table th[data-col=revenue_at_risk] button",
                                 "b => b.firstChild.textContent") == "Revenue at risk (total)"
    page.locator("#segment-table tbody tr.segment-row").first.click()
    page.wait_for_selector("#drilldown[data-state=ready]")
    assert page.inner_text("#drill-table th[data-col=stage]") == "Current stage"
    assert page.inner_text("#drill-table th[data-col=expected_value]") == \
        "Expected value (per customer)"
    # CSAT is a share of satisfied ratings on the tile, a mean rating in the KPI table.
    assert "CSAT (mean rating)" in page.inner_text("#kpi-table thead")
    if page.locator("#kpi-csat").count():
        assert page.inner_text("#kpi-csat .kpi-label") == "CSAT (satisfied)"


def test_nps_has_its_sign_in_the_tile_and_the_table(tab: Tab, server: Server) -> None:
    nps = server.get("journey-map").json()["journey_map"]["kpis"].get("nps")
    if not nps or not nps["count"]:
        pytest.skip("the served world has no NPS answers")
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#kpi-table tfoot .nps-score")
    tile = kpi(page, "nps")[0]
    assert page.inner_text("#kpi-table tfoot .nps-score") == tile
    assert tile.lstrip("+-\u2212").isdigit()
    if nps["score"] >= 0.5:
        assert tile.startswith("+")
    elif nps["score"] <= -0.5:  # Intl's minus: U+2212 or "-" by the locale data
        assert tile[0] in "-\u2212"


def test_an_empty_drift_window_is_not_enough_data(tab: Tab, server: Server) -> None:
    """Nothing scored in the live window: every monitored column missing, no rows compared.
    That is no evidence of "no drift"."""
    out = server.get("drift").json()
    if not out["available"]:
        pytest.skip("drift is unavailable on the served world")
    report = out["report"]
    report.update(rows=[], alarm=False, window_size=0, start=None, end=None,
                  missing_columns=[r["name"] for r in report["rows"]])
    tab.page.route("**/drift", lambda route: route.fulfill(
        status=200, content_type="application/json", body=json.dumps(out)))
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#drift:not([data-state=loading])")
    assert page.get_attribute("#drift", "data-state") == "nodata"
    assert page.inner_text("#drift-badge") == "not enough data"
    background = page.eval_on_selector("#drift-badge", "b => getComputedStyle(b).backgroundColor")
    assert background == "rgb(241, 243, 245)"  # grey, not the green of "no drift"
    assert "No scored customers" in page.inner_text("#drift-table tbody")
    meta = page.inner_text("#drift-meta")  # was "Live window: 0 rows nothing scored yet,"
    assert meta.startswith("Live window: nothing scored yet. Compared with ")
    assert "0 rows" not in meta


def test_one_h1_named_tables_and_readable_small_text(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#kpi-table tbody tr")
    page.wait_for_function("() => document.querySelector('#triggers-meta').textContent")
    page.wait_for_selector("#drift:not([data-state=loading])")  # its badge is probed below
    as_of = server.get("dashboard/data").json()["snapshot"]["as_of"][:10]
    h1 = page.eval_on_selector_all("h1", "hs => hs.filter(h => !h.closest('[hidden]'))"
                                   ".map(h => h.textContent)")
    assert len(h1) == 1 and as_of in h1[0]
    unnamed = page.eval_on_selector_all(
        "table", "ts => ts.filter(t => !((t.getAttribute('aria-label') || '').trim() || "
        "(t.caption && t.caption.textContent.trim()))).map(t => t.id)")
    assert unnamed == []
    # Probes for states the served world may not show: a delivered firing, each tier's pill.
    page.evaluate("""() => {
        const row = document.createElement('tr');
        row.innerHTML = '<td class="firing-delivered">delivered</td>';
        document.querySelector('#trigger-table tbody').append(row);
        const cell = document.querySelector('#segment-table tbody td');
        for (const t of ['low', 'medium', 'high']) {
            const pill = document.createElement('span');
            pill.className = `pill tier-${t}`;
            pill.textContent = t;
            cell.append(pill);
        }
    }""")
    found = page.evaluate(COLOURS, list(SMALL_TEXT))
    assert {sel for sel, *_ in found} >= set(SMALL_TEXT) - {".chip", "td.muted"}
    low = [(sel, text, round(contrast(fg, bg), 2)) for sel, text, fg, bg in found
           if contrast(fg, bg) < 4.5]
    assert low == []


@pytest.mark.parametrize("width", [1366, 1400])
def test_kpi_labels_wrap_instead_of_being_cut(tab: Tab, server: Server, width: int) -> None:
    tab.page.set_viewport_size({"width": width, "height": 900})
    open_dashboard(tab, server)
    cut = tab.page.eval_on_selector_all(
        "#kpis .kpi-label", "ls => ls.filter(l => l.scrollWidth > l.clientWidth + 1 || "
        "l.scrollHeight > l.clientHeight + 1).map(l => l.textContent)")
    assert cut == []
