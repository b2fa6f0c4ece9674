"""The charts' figures without a mouse, in headless Chromium: a chart is one Tab stop, the
arrow keys (Home, End) walk its marks, the focused mark shows its tooltip at the mark and
Escape or leaving hides it, and every mark is named by its tooltip's text in the accessibility
tree. A mouse still gets the browser's own tooltip and nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from tests.serving.conftest import AS_OF
from tests.serving.dashboard.browser_setup import Server, Tab
from tests.serving.dashboard.conftest import EARLIER
from tests.serving.dashboard.dashboard_page import open_dashboard
from tests.serving.dashboard.test_dashboard_a11y import LOW_CONTRAST, ax, ax_nodes

if TYPE_CHECKING:
    from playwright.sync_api import Page

OVERVIEW = ["funnel", "sankey", "attribution", "tiers", "stage-tiers"]
BACKTEST = [f"backtest-{c}-{t}" for t in ("churn", "conversion") for c in ("auc", "ece", "rel")]
# What the keyboard is on: its chart, its tooltip's text (its <title>) and the chart's marks
# that are Tab stops; and the page's tooltip: its text (null when hidden) and its box.
FOCUS = """() => {
    const a = document.activeElement;
    const svg = a.closest && a.closest('svg');
    const tip = document.querySelector('.chart-tip');
    const shown = tip && !tip.hidden;
    const box = (e) => { const r = e.getBoundingClientRect();
                         return [r.left, r.top, r.right, r.bottom]; };
    return {
        chart: svg ? svg.parentElement.id : (a.id || a.tagName),
        mark: svg && a.querySelector(':scope > title')?.textContent,
        stops: svg ? [...svg.querySelectorAll('[tabindex="0"]')].length : 0,
        tip: shown ? tip.textContent : null,
        tipBox: shown ? box(tip) : null,
        markBox: svg ? box(a) : null,
        width: document.documentElement.clientWidth,
    };
}"""
# Each chart's marks (the elements whose <title> is a tooltip), in the drawing's order.
MARKS = """(id) => [...document.querySelectorAll(`#${id} svg title`)].map((t) => {
    const m = t.parentElement;
    return {text: t.textContent, role: m.getAttribute('role'), tabindex: m.getAttribute('tabindex'),
            node: m.parentElement.dataset.node || null, source: m.dataset.source || null};
})"""
RING = """() => {
    const cs = getComputedStyle(document.activeElement);
    return [document.activeElement.matches(':focus-visible'), cs.outlineStyle,
            parseFloat(cs.outlineWidth), cs.outlineColor];
}"""


def focus(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(FOCUS)
    return state


def marks(page: Page, chart: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(MARKS, chart)
    return found


def serve_backtest(tab: Tab) -> None:
    """Backtest results for the page (the served store has none): per model, v1 at two
    prediction times and v2 at one, each with its deciles, as GET /backtest gives them."""
    import numpy as np

    from models.backtest import realized
    from serving.backtest_routes import BacktestOut

    rng = np.random.default_rng(5)
    points = []
    for target in ("churn", "conversion"):
        for version, day in (("1", 0), ("1", 14), ("2", 28)):
            p = rng.uniform(0.02, 0.98, 1000)
            points.append({"target": target, "model_version": version,
                           "as_of": (EARLIER + timedelta(days=day)).isoformat(),
                           "horizon_days": 30, "label": "churned_inactive",
                           "snapshot": f"s{day}", "evaluated_at": AS_OF.isoformat(),
                           **realized(rng.uniform(size=p.size) < p, p)})
    body = BacktestOut.model_validate({"results": points}).model_dump_json()
    tab.page.route("**/backtest", lambda route: route.fulfill(
        status=200, content_type="application/json", body=body))


def wait_backtest(page: Page) -> None:
    """The backtest charts drawn, and every panel above them too: a panel that renders later
    (triggers, personas and KPIs, drift load at the same time) moves the charts down under a
    tooltip placed a moment before, and a mark's tip was measured 730 px from its mark."""
    page.wait_for_selector("#backtest-rel-conversion svg")
    page.wait_for_load_state("networkidle")


def enter(page: Page, chart: str) -> dict[str, Any]:
    """Put the keyboard on `chart`'s Tab stop (focused by script, then Home: a key, so the
    focus is the keyboard's) and return where it is."""
    page.focus(f"#{chart} svg [tabindex='0']")
    page.keyboard.press("Home")
    return focus(page)


def walk(page: Page, chart: str) -> list[dict[str, Any]]:
    """Every stop of the arrow key through `chart`, from its first mark past its last."""
    seen = [enter(page, chart)]
    for _ in marks(page, chart):
        page.keyboard.press("ArrowRight")
        seen.append(focus(page))
    return seen


def relative_luminance(rgb: list[float]) -> float:
    def channel(v: float) -> float:
        v /= 255
        return v / 12.92 if v <= 0.03928 else float(((v + 0.055) / 1.055) ** 2.4)

    r, g, b = (channel(v) for v in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: list[float], b: list[float]) -> float:
    hi, lo = sorted([relative_luminance(a), relative_luminance(b)], reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def test_a_chart_is_one_tab_stop_and_the_arrow_keys_walk_its_marks(tab: Tab,
                                                                   server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    page.focus("#kpis .kpi[tabindex='0']")  # the KPI tiles' one stop, before the charts
    page.keyboard.press("Tab")  # the first chart of the page
    titles = [m["text"] for m in marks(page, "funnel")]
    assert focus(page) | {"tipBox": None, "markBox": None, "width": None} == {
        "chart": "funnel", "mark": titles[0], "stops": 1, "tip": titles[0],
        "tipBox": None, "markBox": None, "width": None}
    page.keyboard.press("Tab")  # one stop, not one per mark: on to its table of figures
    assert page.evaluate("() => document.activeElement.parentElement.id") == "funnel-figures-box"
    page.focus("#attr-touchpoint")
    page.keyboard.press("Tab")
    titles = [m["text"] for m in marks(page, "attribution")]
    assert len(titles) > 3 and focus(page)["mark"] == titles[0]
    seen = [focus(page)["mark"]]
    for _ in titles:  # one more press than marks: the last one stays
        page.keyboard.press("ArrowRight")
        seen.append(focus(page)["mark"])
    assert seen == [*titles, titles[-1]]
    page.keyboard.press("ArrowUp")
    assert focus(page)["mark"] == titles[-2]
    page.keyboard.press("Home")
    assert focus(page)["mark"] == titles[0]
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert focus(page)["mark"] == titles[2] and focus(page)["stops"] == 1
    # Tab leaves the chart; Shift+Tab comes back to the mark last read (a roving tabindex).
    page.keyboard.press("Tab")
    assert focus(page)["chart"] != "attribution"
    page.keyboard.press("Shift+Tab")
    assert focus(page)["mark"] == titles[2]
    page.keyboard.press("End")
    assert focus(page)["mark"] == titles[-1]


def test_every_marks_tooltip_shows_on_focus_at_the_mark(tab: Tab, server: Server) -> None:
    serve_backtest(tab)
    open_dashboard(tab, server)
    page = tab.page
    wait_backtest(page)
    for chart in OVERVIEW + BACKTEST:
        titles = [m["text"] for m in marks(page, chart)]
        seen = walk(page, chart)
        read = [s["mark"] for s in seen]
        assert read[-1] == read[-2] and sorted(read[:-1]) == sorted(titles), chart  # each once
        if chart != "sankey":  # the flows' order is the next test's
            assert read[:-1] == titles, chart
        for s in seen:
            assert s["chart"] == chart and s["stops"] == 1, s
            assert s["tip"] == s["mark"], s  # the hover's text, of the focused mark
            left, top, right, bottom = s["tipBox"]
            m_left, m_top, m_right, m_bottom = s["markBox"]
            # At the mark: across from its middle (or as near as the viewport lets it be),
            # just above or just below it.
            middle = (m_left + m_right) / 2
            assert left - 1 <= middle <= right + 1 or left <= 9 or right >= s["width"] - 9, s
            assert abs(m_top - bottom - 8) <= 1 or abs(top - m_bottom - 8) <= 1, s


def test_the_stage_flows_read_node_by_node(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    found = marks(page, "sankey")
    nodes = [m for m in found if m["node"]]
    order = [n["node"] for n in nodes]
    expected: list[str] = []
    for n in nodes:
        expected.append(n["text"])
        links = [m for m in found if m["source"] == n["node"]]
        expected += [m["text"] for m in sorted(
            links, key=lambda m: order.index(m["text"].split(" → ")[1].split(":")[0]))]
    assert len(expected) == len(found) > len(nodes) > 3
    assert [s["mark"] for s in walk(page, "sankey")][:-1] == expected


def test_escape_and_leaving_hide_the_tooltip_and_the_focus_ring_is_seen(
        tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    page.focus("#attribution-figures-box summary")
    page.keyboard.press("Tab")
    page.keyboard.press("ArrowDown")
    tiers = [m["text"] for m in marks(page, "tiers")]
    on = focus(page)
    assert on["chart"] == "tiers" and on["mark"] == on["tip"] == tiers[1]
    # Readable: the tooltip's text against its background, and the ring against the card.
    assert page.evaluate(LOW_CONTRAST)[1] == []
    visible, style, width, color = page.evaluate(RING)
    assert visible and style == "solid" and width >= 2
    ring = [float(v) for v in color[color.index("(") + 1:-1].split(",")[:3]]
    assert contrast(ring, [255, 255, 255]) >= 3  # WCAG 1.4.11, non-text contrast
    page.keyboard.press("Escape")  # dismissed where it is: the keyboard stays on the mark
    assert focus(page) | {"markBox": None} == on | {"tip": None, "tipBox": None, "markBox": None}
    page.keyboard.press("ArrowUp")
    assert focus(page)["tip"] == tiers[0]
    page.keyboard.press("Escape")
    page.keyboard.press("ArrowUp")  # at the first mark already: its tooltip again
    assert focus(page)["tip"] == tiers[0]
    page.keyboard.press("Tab")
    assert focus(page)["chart"] != "tiers" and focus(page)["tip"] is None


def test_every_chart_and_mark_is_named_for_assistive_tech(tab: Tab, server: Server) -> None:
    serve_backtest(tab)
    open_dashboard(tab, server)
    page = tab.page
    wait_backtest(page)
    texts: list[str] = []
    for chart in OVERVIEW + BACKTEST:
        found = marks(page, chart)
        assert len(found) >= 3, chart
        assert {m["role"] for m in found} <= {"graphics-symbol", "graphics-object"}, chart
        assert sorted(m["tabindex"] for m in found) == ["-1"] * (len(found) - 1) + ["0"], chart
        assert page.get_attribute(f"#{chart} svg", "role") == "graphics-document"
        texts += [m["text"] for m in found]
    nodes = [n for n in ax_nodes(page) if not n.get("ignored")]
    # As Chromium gives them to a screen reader: each mark named by its tooltip's text, said
    # once (not again as its description), each chart by its summary.
    named = [n for n in nodes if ax(n, "role") in ("graphics-symbol", "graphics-object")]
    assert sorted(ax(n, "name") for n in named) == sorted(texts)
    assert [ax(n, "name") for n in named if ax(n, "description")] == []
    charts = {ax(n, "name") for n in nodes if ax(n, "role") == "graphics-document"}
    assert len(charts) == len(OVERVIEW + BACKTEST)
    assert any(c.startswith("Stage funnel, customers who reached each stage") for c in charts)
    data = server.get("dashboard/data").json()
    tiers = ", ".join(f"{t['key']['tier']} {t['customers']:,} customers" for t in sorted(
        data["tiers"], key=lambda t: ["low", "medium", "high"].index(t["key"]["tier"])))
    assert f"Risk tiers: {tiers}" in charts


def test_a_mouse_gets_the_browsers_tooltip_and_no_other(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    bar = page.locator("#stage-tiers svg .chart-mark").nth(1)
    bar.hover()
    assert bar.locator(":scope > title").count() == 1  # what the browser shows on hover
    assert focus(page)["tip"] is None
    bar.click()  # focuses the mark, yet shows no ring and no second tooltip
    assert focus(page)["mark"] == marks(page, "stage-tiers")[1]["text"]
    assert focus(page)["tip"] is None
    assert page.evaluate(RING)[0] is False


def test_a_redrawing_keeps_the_keyboard_on_its_mark(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    enter(page, "attribution")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    before = focus(page)["mark"]
    page.evaluate("() => { document.querySelector('#attribution svg').dataset.old = '1'; }")
    page.set_viewport_size({"width": 1200, "height": 900})  # the charts are redrawn
    page.wait_for_selector("#attribution svg:not([data-old])", state="attached")
    page.wait_for_function("() => document.activeElement.closest('svg')")
    after = focus(page)
    assert after["chart"] == "attribution" and after["mark"] == after["tip"] == before
    assert page.evaluate(RING)[0]  # the ring too: the focus is still the keyboard's
