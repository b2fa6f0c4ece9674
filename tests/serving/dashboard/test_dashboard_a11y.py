"""The dashboard as a marketer with a keyboard or a screen reader meets it (WCAG 2.1 AA as the
yardstick), in headless Chromium: names as the browser computes them (its accessibility tree),
sorting and the drill-down by keyboard, focus that stays where the marketer was, errors in live
regions, charts with a table of their figures, tiers told apart without colour, and the contrast
of every piece of text on the page."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tests.serving.dashboard.browser_setup import Server, Tab
from tests.serving.dashboard.dashboard_page import open_dashboard, table_rows

if TYPE_CHECKING:
    from playwright.sync_api import Page

CONTROLS = {"textbox", "checkbox", "combobox", "button", "DisclosureTriangle", "radio", "link"}
ACTIVE = "() => document.activeElement"
# The text of the element `sel` when it sits in a live region (else null): what a screen reader
# announces without the marketer moving there.
LIVE_TEXT = """(sel) => {
    const el = document.querySelector(sel);
    const region = el && el.closest(
        '[aria-live]:not([aria-live=off]), [role=alert], [role=status]');
    return region ? el.textContent : null;
}"""
# Every rendered piece of text (HTML and SVG) whose contrast with what is behind it is below
# WCAG's 4.5:1 (3:1 for large text): [element, text, ratio]. Disabled controls are exempt.
LOW_CONTRAST = """() => {
    const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
    const opaque = (c) => c.length === 3 || (c.length === 4 && c[3] > 0);
    const behind = (el) => {
        for (let e = el; e; e = e.parentElement) {
            const c = rgb(getComputedStyle(e).backgroundColor);
            if (opaque(c)) return c.slice(0, 3);
        }
        return [255, 255, 255];
    };
    const lum = (c) => {
        const [r, g, b] = c.map((v) => {
            v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
        return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const ratio = (a, b) => {
        const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
    const low = [];
    const seen = new Set();
    const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walk.nextNode(); n; n = walk.nextNode()) {
        const el = n.parentElement;
        if (!n.textContent.trim() || seen.has(el)) continue;
        seen.add(el);
        if (!el.getClientRects().length || el.closest(
            '.visually-hidden, button:disabled, [aria-disabled=true], title')) continue;
        const cs = getComputedStyle(el);
        if (cs.visibility === 'hidden') continue;
        const svg = el.closest('svg');
        const bg = behind(svg ? svg.parentElement : el);
        let fg = rgb(svg ? cs.fill : cs.color);
        if (fg.length === 4) fg = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
        const size = parseFloat(cs.fontSize);
        const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
        const r = ratio(fg, bg);
        if (r < (large ? 3 : 4.5)) {
            low.push([`${el.tagName}.${el.getAttribute('class') || ''}`,
                      n.textContent.trim().slice(0, 30), Math.round(r * 100) / 100]);
        }
    }
    return [seen.size, low];
}"""


def ax_nodes(page: Page) -> list[dict[str, Any]]:
    """Chromium's accessibility tree of the page (what a screen reader is given), ignored
    nodes too (a group's name is found through them)."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes: list[dict[str, Any]] = cdp.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        cdp.detach()
    return nodes


def ax(node: dict[str, Any], key: str) -> str:
    return str((node.get(key) or {}).get("value", ""))


def ax_group(node: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> str | None:
    """The name of the nearest named group around `node` (a fieldset, a role=group)."""
    parent = by_id.get(node.get("parentId", ""))
    while parent is not None:
        if ax(parent, "role") == "group" and ax(parent, "name"):
            return ax(parent, "name")
        parent = by_id.get(parent.get("parentId", ""))
    return None


def number(text: str) -> int:
    return int(text.replace(",", ""))


def test_controls_are_named_filters_name_their_group_and_headers_their_scope(
        tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    page.locator("#segment-table tbody tr.segment-row").first.click()
    page.wait_for_selector("#drilldown[data-state=ready]")
    page.click("#filter-tier summary")
    nodes = ax_nodes(page)
    by_id = {n["nodeId"]: n for n in nodes}
    controls = [n for n in nodes if ax(n, "role") in CONTROLS and not n.get("ignored")]
    assert len(controls) > 30
    assert [ax(n, "role") for n in controls if not ax(n, "name").strip()] == []
    groups = {ax(n, "name"): ax_group(n, by_id) for n in controls if ax(n, "role") == "checkbox"}
    tiers = server.get("dashboard/data").json()["dimensions"]["tier"]
    # A filter's checkboxes are bare values ("High"): their group says what they filter.
    assert {groups[t.capitalize()] for t in tiers} == {"Filter by tier"}
    assert groups["Acquisition channel"] == "Cut by"
    clear = [ax(n, "name") for n in controls if ax(n, "name").startswith("All")]
    assert clear == ["All: no tier filter"]
    # Every header cell of every table says what it heads.
    page.wait_for_selector("#kpi-table tbody tr")
    unscoped = page.eval_on_selector_all("th", """ths => ths.filter(t => !['col', 'row',
        'colgroup', 'rowgroup'].includes(t.getAttribute('scope'))).map(t => t.textContent)""")
    assert page.locator("th").count() > 50 and unscoped == []


def test_a_refused_key_is_read_with_the_field_and_focus_moves_on(tab: Tab,
                                                                  server: Server) -> None:
    page = tab.page
    page.goto(f"{server.url}/dashboard#key=jk_not-a-key")
    page.wait_for_selector("body[data-state=key]")
    assert page.evaluate(f"({ACTIVE})().id") == "key-input"
    field = next(n for n in ax_nodes(page)
                 if ax(n, "role") == "textbox" and not n.get("ignored"))
    assert ax(field, "name") == "API key"
    assert ax(field, "description").startswith("The service refused this key")
    properties = {p["name"]: p["value"].get("value") for p in field.get("properties", [])}
    assert properties.get("invalid") == "true"
    assert page.evaluate(LIVE_TEXT, "#key-error").startswith("The service refused this key")
    # Typed and sent with the keyboard: the dashboard opens and the keyboard is on its heading
    # (the form it was in is gone), not back at the top of the page.
    page.keyboard.type(server.key())
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-state=ready]")
    assert page.evaluate(f"({ACTIVE})().id") == "page-title"
    assert page.inner_text("#page-title").startswith("Marketer dashboard: scores as of")


def test_sorting_by_keyboard_says_the_order_and_keeps_the_focus(tab: Tab,
                                                                 server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page

    def sorted_by() -> list[list[str]]:
        heads: list[list[str]] = page.eval_on_selector_all(
            "#segment-table thead th[aria-sort]",
            "ths => ths.map(t => [t.dataset.col, t.getAttribute('aria-sort')])")
        return heads

    # Unsorted by the marketer: the service's order, revenue at risk largest first, is said.
    assert sorted_by() == [["revenue_at_risk", "descending"]]
    page.focus("#segment-table th[data-col=customers] button")
    page.keyboard.press("Enter")
    assert sorted_by() == [["customers", "descending"]]
    assert page.evaluate(f"({ACTIVE})().closest('th')?.dataset.col") == "customers"
    sizes = [int(r["customers"]) for r in table_rows(page)]
    assert sizes == sorted(sizes, reverse=True)
    page.wait_for_function("() => document.querySelector('#announce').textContent"
                           " === 'Segments sorted by Customers, largest first'")
    assert page.evaluate(LIVE_TEXT, "#announce")
    page.keyboard.press("Space")  # the keyboard is still there: the other way round
    assert sorted_by() == [["customers", "ascending"]]
    sizes = [int(r["customers"]) for r in table_rows(page)]
    assert sizes == sorted(sizes)
    # The sort marks are for the eye: the button's name is the column's.
    assert page.inner_text("#segment-table th[data-col=customers] .sort-mark") == "▲"
    assert page.get_attribute("#segment-table th[data-col=customers] .sort-mark",
                              "aria-hidden") == "true"


def test_the_drilldown_takes_the_focus_and_escape_gives_it_back(tab: Tab,
                                                                server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    row = page.locator("#segment-table tbody tr.segment-row").nth(1)
    key = row.get_attribute("data-key")
    row.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#drilldown[data-state=ready]")
    page.wait_for_function("() => document.activeElement.id === 'drill-title'")
    title = page.eval_on_selector("#drill-title", """h => [h.textContent,
        h.matches(':focus-visible'), getComputedStyle(h).outlineStyle]""")
    assert title[0].endswith("in this segment") and title[1] and title[2] != "none"
    assert row.get_attribute("aria-current") == "true"
    page.keyboard.press("Tab")  # on into the panel
    assert page.evaluate(f"({ACTIVE})().id") == "drill-sort"
    page.keyboard.press("Escape")
    assert page.is_hidden("#drilldown")
    assert page.evaluate(f"({ACTIVE})().dataset.key") == key
    assert row.get_attribute("aria-current") is None
    # Open again from the row, close with the close button: the keyboard is back on the row.
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.activeElement.id === 'drill-title'")
    page.focus("#drill-close")
    page.keyboard.press("Enter")
    assert page.is_hidden("#drilldown")
    assert page.evaluate(f"({ACTIVE})().dataset.key") == key


def _not_found(message: str) -> Any:
    body = json.dumps({"code": "not_found", "message": message, "field": None})
    return lambda route: route.fulfill(status=404, content_type="application/json", body=body)


def test_errors_are_announced_and_the_export_keeps_the_focus(tab: Tab, server: Server) -> None:
    page = tab.page
    page.route("**/segments/customers*", _not_found("the customer list is unavailable"))
    page.route("**/triggers/firings*", _not_found("the firings are unavailable"))
    page.route("**/segments/export*", _not_found("the export is unavailable"))
    open_dashboard(tab, server)
    page.locator("#segment-table tbody tr.segment-row").first.click()
    page.wait_for_selector("#drilldown[data-state=error]")
    assert "the customer list is unavailable" in page.evaluate(LIVE_TEXT, "#drill-range")
    page.wait_for_function("() => document.querySelector('#triggers-meta').textContent")
    assert "the firings are unavailable" in page.evaluate(LIVE_TEXT, "#triggers-meta")
    page.focus("#export")
    page.keyboard.press("Enter")
    page.wait_for_function("() => document.querySelector('#segment-status')"
                           ".textContent.startsWith('The export failed')")
    assert "the export is unavailable" in page.evaluate(LIVE_TEXT, "#segment-status")
    assert page.evaluate(f"({ACTIVE})().id") == "export"  # a disabled button drops the focus
    assert page.inner_text("#export") == "Export customers (CSV)"


def figures(page: Page, chart: str) -> list[list[str]]:
    """The rows of the table a chart's SVG points to (aria-details: its disclosure, opened
    here)."""
    box = page.get_attribute(f"#{chart} svg", "aria-details")
    assert box == f"{chart}-figures-box"
    page.eval_on_selector(f"#{box}", "d => { d.open = true; }")
    page.wait_for_selector(f"#{chart}-figures tbody tr")  # drawn on the (queued) toggle event
    table = page.eval_on_selector(f"#{box}", "d => d.querySelector('table').id")
    assert table == f"{chart}-figures"
    caption = page.eval_on_selector(f"#{table}", "t => t.caption && t.caption.textContent")
    assert caption, chart  # the table is named for a screen reader's table list
    rows: list[list[str]] = page.eval_on_selector_all(
        f"#{table} tbody tr", "rs => rs.map(r => [...r.cells].map(c => c.textContent))")
    return rows


def test_each_chart_has_a_table_of_its_figures(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    data = server.get("dashboard/data").json()
    jm = data["journey_map"]
    assert [(r[0], number(r[1])) for r in figures(page, "funnel")] == \
        [(f["stage"], f["reached"]) for f in jm["funnel"]]
    assert sorted((r[0], r[1], number(r[2])) for r in figures(page, "sankey")) == \
        sorted((f["source"], f["target"], f["customers"]) for f in jm["flows"] if f["customers"])
    attribution = jm["attribution"]
    assert [r[0] for r in figures(page, "attribution")] == \
        [c["label"] for c in attribution["by_channel"]["labels"]]
    page.click("#attr-touchpoint")
    assert [r[0] for r in figures(page, "attribution")] == \
        [c["label"] for c in attribution["by_touchpoint"]["labels"]]
    assert page.text_content("#attribution-figures thead th:first-child") == "Touchpoint"
    assert {r[0]: number(r[1]) for r in figures(page, "tiers")} == \
        {t["key"]["tier"]: t["customers"] for t in data["tiers"]}
    totals: dict[str, int] = {}
    for s in data["stage_tiers"]:
        totals[s["key"]["stage"]] = totals.get(s["key"]["stage"], 0) + s["customers"]
    assert {r[0]: number(r[-1]) for r in figures(page, "stage-tiers")} == totals
    # Each disclosure names its chart; a keyboard opens it, and it follows a redrawing.
    summaries = page.eval_on_selector_all("details.chart-data summary",
                                          "ss => ss.map(s => s.textContent)")
    assert len(summaries) == len(set(summaries)) == 5
    assert "Table of the figures: stage funnel" in summaries
    page.eval_on_selector("#funnel-figures-box", "d => { d.open = false; }")
    assert not page.is_visible("#funnel-figures")
    page.focus("#funnel-figures-box summary")
    page.keyboard.press("Enter")
    assert page.is_visible("#funnel-figures")
    page.click("#attr-channel")
    assert [r[0] for r in figures(page, "attribution")] == \
        [c["label"] for c in attribution["by_channel"]["labels"]]


def test_risk_tiers_differ_by_more_than_colour(tab: Tab, server: Server) -> None:
    """The bars stacked by tier: red against green is lost on many eyes, so each tier has a
    pattern of its own (plain, striped, dotted), in the bars and in the legend."""
    open_dashboard(tab, server)
    marks = tab.page.eval_on_selector("#stage-tiers svg", """svg => {
        const mark = (fill) => {
            const m = /^url\\(#(.+)\\)$/.exec(fill || '');
            const p = m && svg.querySelector(`pattern[id="${m[1]}"]`);
            return p ? `${p.getAttribute('class')}:${p.children.length}` : 'plain';
        };
        const legend = [...svg.querySelectorAll('.legend text')].map(
            (t) => [t.textContent, mark(t.previousElementSibling.getAttribute('fill'))]);
        const bars = [...svg.querySelectorAll('rect.bar')].map(
            (r) => [`${r.dataset.tier} risk`, mark(r.getAttribute('fill'))]);
        return [legend, bars];
    }""")
    legend = dict(marks[0])
    assert set(legend) == {"low risk", "medium risk", "high risk"}
    assert len(set(legend.values())) == 3  # three different marks, not three hues
    assert all(legend[tier] == mark for tier, mark in marks[1])  # bars as the legend says


def test_all_text_on_the_page_is_readable(tab: Tab, server: Server) -> None:
    """Every piece of text drawn (HTML and SVG, with the drill-down, a filter and the chart
    tables open) against what is behind it."""
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#kpi-table tbody tr")
    page.wait_for_function("() => document.querySelector('#triggers-meta').textContent")
    page.wait_for_selector("#drift:not([data-state=loading])")
    page.wait_for_function("() => document.querySelector('#backtest-meta').textContent"
                           " !== 'Loading…'")
    for box in page.locator("details.chart-data").all():
        box.evaluate("d => { d.open = true; }")
    page.locator("#segment-table tbody tr.segment-row").first.click()
    page.wait_for_selector("#drilldown[data-state=ready]")
    page.click("#filter-tier summary")
    seen, low = page.evaluate(LOW_CONTRAST)
    assert seen > 500 and low == []
    page.click("#sign-out")  # the key form and its error
    page.fill("#key-input", "jk_not-a-key")
    page.press("#key-input", "Enter")
    page.wait_for_selector("#key-error:not([hidden])")
    assert page.evaluate(LOW_CONTRAST)[1] == []


def test_focus_is_visible_wherever_tab_goes(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    seen: list[str] = []
    for _ in range(45):
        page.keyboard.press("Tab")
        ring = page.evaluate("""() => {
            const el = document.activeElement;
            const cs = getComputedStyle(el);
            return [el.id || el.tagName + '.' + (el.className || ''), el.matches(':focus-visible'),
                    cs.outlineStyle, parseFloat(cs.outlineWidth)];
        }""")
        seen.append(ring[0])
        assert ring[1] and ring[2] != "none" and ring[3] >= 2, ring
    assert {"sign-out", "attr-touchpoint", "by-tier", "export", "TR.segment-row"} <= set(seen)


def test_regrouping_the_kpis_keeps_the_keyboard_on_the_button(tab: Tab,
                                                               server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#kpi-by button[data-by=month]")
    page.focus("#kpi-by button[data-by=month]")
    page.keyboard.press("Enter")
    page.wait_for_selector("#kpi-table[data-by=month]")
    assert page.evaluate(f"({ACTIVE})().dataset.by") == "month"
    assert page.get_attribute("#kpi-by button[data-by=month]", "aria-pressed") == "true"


def test_escape_closes_a_filter_and_the_keyboard_stays_on_it(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    page.focus("#filter-tier summary")
    page.keyboard.press("Enter")
    assert page.get_attribute("#filter-tier", "open") is not None
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # ticks the first tier
    page.wait_for_selector("#filter-tier.active")
    page.keyboard.press("Escape")
    assert page.get_attribute("#filter-tier", "open") is None
    # On the filter's summary, not on a checkbox now hidden inside it.
    assert page.evaluate(f"(a => [a.tagName, a.parentElement.id])(({ACTIVE})())") == \
        ["SUMMARY", "filter-tier"]
