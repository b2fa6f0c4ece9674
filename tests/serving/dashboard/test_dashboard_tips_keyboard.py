"""The page's explanations without a mouse, in headless Chromium (tips.js, topbar.js): what was
a `title` only (a KPI tile's note, a segment's top-action share, a p-value's test) is reached
by the keyboard, shown as a tooltip while the keyboard or the pointer is on it, hidden with
Escape, and read by a screen reader as the element's description. What scrolls into view (a
fragment, the keyboard's focus) stops below the sticky top bar."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from tests.serving.dashboard.browser_setup import Server, Tab
from tests.serving.dashboard.dashboard_page import open_dashboard
from tests.serving.dashboard.test_dashboard_a11y import ax, ax_nodes

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Where the keyboard is and what it is told: the focused element's id (a row's data-key), the
# text its aria-describedby resolves to, and the tooltips on screen: [text, box].
FOCUS = """() => {
    const a = document.activeElement;
    const box = (e) => { const r = e.getBoundingClientRect();
                         return [r.left, r.top, r.right, r.bottom]; };
    const ids = (a.getAttribute('aria-describedby') || '').split(/\\s+/).filter(Boolean);
    const shown = [...document.querySelectorAll('[role=tooltip]')]
        .filter((t) => t.checkVisibility() && t.getClientRects().length);
    return {
        id: a.id || a.dataset.key || a.tagName,
        described: ids.map((id) => document.getElementById(id)?.textContent ?? null),
        tips: shown.map((t) => [t.textContent, box(t)]),
        box: box(a),
        visible: a.matches(':focus-visible'),
        stop: a.tabIndex,
    };
}"""
# The first role=tooltip element an element's aria-describedby names (null when none).
TIP_OF = """(el) => {
    const id = (el.getAttribute('aria-describedby') || '').split(/\\s+/)
        .find((i) => document.getElementById(i)?.getAttribute('role') === 'tooltip');
    return id ? document.getElementById(id).textContent : null;
}"""
BAR = "() => document.querySelector('.topbar').getBoundingClientRect().bottom"
# The elements a tooltip describes that the keyboard cannot reach: neither a Tab stop nor an
# arrow key's step inside a group (a roving tabindex) whose one stop is among its items.
UNREACHED = """() => [...document.querySelectorAll('[role=tooltip]')]
    .map((t) => document.querySelector(`[aria-describedby~="${t.id}"]`))
    .filter((el) => !(el.tabIndex === 0 || (el.tabIndex === -1 && el.parentElement
        .closest('[aria-description]')?.querySelector('.tip-stop[tabindex="0"]'))))
    .map((el) => el.outerHTML.slice(0, 80))"""


def focus(page: Page) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate(FOCUS)
    return state


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def description(page: Page, role: str, name_starts: str) -> str:
    """The accessible description Chromium gives the node of `role` whose name starts so."""
    node = next(n for n in ax_nodes(page) if ax(n, "role") == role and not n.get("ignored")
                and ax(n, "name").startswith(name_starts))
    return squash(ax(node, "description"))


def tab_to(page: Page, selector: str, presses: int = 60) -> None:
    """Press Tab until the focus is inside `selector`."""
    for _ in range(presses):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => !!document.activeElement.closest(s)", selector):
            return
    raise AssertionError(f"Tab never reached {selector}")


def test_tab_reaches_a_kpi_tile_which_shows_and_describes_its_note(tab: Tab,
                                                                   server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    tab_to(page, "#kpis")
    # The tiles are one Tab stop, entered at the first; the arrow keys walk them.
    assert focus(page)["id"] == "kpi-snapshot"
    assert page.eval_on_selector_all("#kpis .kpi", "ts => ts.map(t => t.tabIndex)").count(0) == 1
    for _ in range(8):
        if focus(page)["id"] == "kpi-revenue-at-risk":
            break
        page.keyboard.press("ArrowRight")
    now = focus(page)
    assert now["id"] == "kpi-revenue-at-risk" and now["visible"]
    note = now["described"][0]
    assert "expected value \u00d7 churn probability, summed" in note
    assert "Change since the previous snapshot" in note  # the change's note, in the tile's
    # Shown on screen, at the tile, below the sticky top bar, inside the viewport.
    assert [t[0] for t in now["tips"]] == [note]
    left, top, right, bottom = now["tips"][0][1]
    assert right > left and bottom > top + 8
    assert top >= page.evaluate(BAR) and right <= page.viewport_size["width"]  # type: ignore[index]
    assert abs(top - now["box"][3]) < 20 or abs(bottom - now["box"][1]) < 20
    # A screen reader: the tile is a group named by its figures, described by its note.
    assert description(page, "group", "Revenue at risk") == squash(note)
    # Escape hides it; the keyboard stays on the tile, and the next tile shows its own.
    page.keyboard.press("Escape")
    after = focus(page)
    assert after["tips"] == [] and after["id"] == "kpi-revenue-at-risk"
    page.keyboard.press("ArrowRight")
    page.keyboard.press("End")
    last = focus(page)
    assert last["tips"] and last["tips"][0][0] == last["described"][0]
    # Tab leaves the tiles at once, Shift+Tab comes back to the tile last read.
    page.keyboard.press("Tab")
    assert not page.evaluate("!!document.activeElement.closest('#kpis')")
    assert focus(page)["tips"] == []
    page.keyboard.press("Shift+Tab")
    assert focus(page)["id"] == last["id"]


def test_hovering_a_tile_shows_the_same_tooltip_and_no_title_doubles_it(
        tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    tile = page.locator("#kpi-revenue-at-risk")
    note = tile.evaluate(TIP_OF)
    assert note and tile.get_attribute("title") is None
    assert page.eval_on_selector_all("#kpis [title]", "ts => ts.length") == 0
    tile.hover()
    shown = focus(page)["tips"]
    assert [t[0] for t in shown] == [note]
    # Hoverable (WCAG 1.4.13): the pointer may move onto the tooltip and it stays.
    left, top, right, bottom = shown[0][1]
    page.mouse.move((left + right) / 2, (top + bottom) / 2, steps=4)
    page.wait_for_timeout(600)
    assert [t[0] for t in focus(page)["tips"]] == [note]
    page.mouse.move(5, page.viewport_size["height"] - 5, steps=4)  # type: ignore[index]
    page.wait_for_function("() => ![...document.querySelectorAll('[role=tooltip]')]"
                           ".some((t) => t.checkVisibility())")


def test_a_segments_top_action_note_is_read_and_shown_with_its_row(tab: Tab,
                                                                   server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    query = parse_qsl(page.get_attribute("#segment-table", "data-query") or "")
    seg = server.get("segments", params=query).json()  # the table's own answer
    rows = page.locator("#segment-table tbody tr.segment-row")
    key = rows.nth(1).get_attribute("data-key") or ""
    segment = next(s for s in seg["segments"] if s["key"] == json.loads(key))
    assert segment["top_action"], "the served world's segments have top actions"
    rows.nth(0).focus()
    page.keyboard.press("Tab")  # on to the next row, by keyboard
    now = focus(page)
    assert now["id"] == key and now["visible"]
    share = round(100 * segment["top_action_share"])
    note = f"{segment['top_action']}: {share}% of the segment's customers"
    # The note first, then what Enter does; the rows stay one Tab stop each (no cell is one).
    assert now["described"] == [note, page.inner_text("#segment-hint")]
    assert [t[0] for t in now["tips"]] == [note]
    cell = rows.nth(1).locator("td.action").bounding_box()
    assert cell is not None
    left, top, _, _ = now["tips"][0][1]
    assert abs(left - cell["x"]) < 2 or abs(top - (cell["y"] + cell["height"])) < 20
    assert page.eval_on_selector_all("#segment-table tbody td[tabindex]", "ts => ts.length") == 0
    # The total row is no Tab stop: its action's cell is, with the total's note.
    if seg["total"].get("top_action"):
        total = page.locator("#segment-table tfoot td.action")
        assert total.get_attribute("tabindex") == "0"
        assert total.evaluate(TIP_OF).endswith("of the segment's customers")
    name = page.get_attribute(f"#segment-table tr[data-key='{key}']", "aria-label") or ""
    assert description(page, "row", name) == squash(f"{note} {now['described'][1]}")
    page.keyboard.press("Escape")
    assert focus(page)["tips"] == [] and focus(page)["id"] == key
    # A mouse hovers the action's cell for it; no title doubles it.
    assert page.eval_on_selector_all("#segment-table td[title]", "ts => ts.length") == 0
    rows.nth(1).locator("td.action").hover()
    assert [t[0] for t in focus(page)["tips"]] == [note]


def test_the_stage_headers_note_is_read_and_shown_on_its_sort_button(tab: Tab,
                                                                     server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    page.focus("#segment-table th[data-col=customers] button")
    page.keyboard.press("Shift+Tab")  # back to the stage column's button, by keyboard
    now = focus(page)
    assert page.evaluate("document.activeElement.closest('th').dataset.col") == "key:stage"
    assert now["described"][0].startswith("Stage of the latest activity")
    assert [t[0] for t in now["tips"]] == now["described"][:1]


def test_every_note_on_the_page_is_reached_by_the_keyboard(tab: Tab, server: Server) -> None:
    """No explanation left in a `title` (but the stage header's, the mouse's there); each
    tooltip describes an element that is a Tab stop or an arrow key's step from one."""
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#kpi-table tbody tr")
    page.wait_for_function("() => document.querySelector('#triggers-meta').textContent")
    page.wait_for_selector("#drift:not([data-state=loading])")
    page.wait_for_selector("#persona-cards .persona, #personas-meta:not(:empty)")
    page.locator("#segment-table tbody tr.segment-row").first.click()
    page.wait_for_selector("#drilldown[data-state=ready]")
    titles = page.eval_on_selector_all(
        "body [title]", "ts => ts.filter(t => t instanceof HTMLElement)"
        ".map(t => t.closest('[data-col]')?.dataset.col || t.id || t.tagName)")
    assert titles == ["key:stage"]
    assert page.evaluate(UNREACHED) == []
    for where in ("#segments .card-head", "#kpi-table", "#drill-table thead"):
        assert page.locator(f"{where} [aria-describedby^=tip-]").count() >= 1, where
    # The journey-KPI table: one Tab stop; down keeps the column, and shows the cell's note.
    stops = page.eval_on_selector_all("#kpi-table .tip-stop", "ts => ts.map(t => t.tabIndex)")
    assert stops.count(0) == 1 and len(stops) > 4
    page.focus("#kpi-by button")
    tab_to(page, "#kpi-table")
    first = focus(page)
    assert first["tips"] and first["tips"][0][0] == first["described"][0]
    column = page.evaluate("document.activeElement.cellIndex")
    page.keyboard.press("ArrowDown")
    below = focus(page)
    assert page.evaluate("document.activeElement.cellIndex") == column
    assert below["box"][1] > first["box"][1] and below["tips"][0][0] == below["described"][0]


def test_a_fragment_and_the_focus_scroll_targets_below_the_top_bar(tab: Tab,
                                                                  server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    bar = page.evaluate(BAR)
    assert bar > 30
    # A fragment: the section's top lands below the bar, not under it.
    page.evaluate("location.hash = 'segments'")
    page.wait_for_function("(bar) => Math.abs(document.querySelector('#segments')"
                           ".getBoundingClientRect().top - bar) < 40", arg=bar)
    top = page.evaluate("document.querySelector('#segments').getBoundingClientRect().top")
    assert bar <= top < bar + 40
    # The keyboard going back up onto a row the bar covers: the row is brought out from under it.
    rows = page.locator("#segment-table tbody tr.segment-row")
    y = page.evaluate("(r) => r.getBoundingClientRect().top + window.scrollY",
                      rows.nth(3).element_handle())
    page.evaluate("(y) => window.scrollTo(0, y - 20)", y)  # row 3 now sits under the bar
    page.evaluate("(r) => r.focus({preventScroll: true})", rows.nth(4).element_handle())
    page.keyboard.press("Shift+Tab")
    box = rows.nth(3).bounding_box()
    assert box is not None and focus(page)["id"] == rows.nth(3).get_attribute("data-key")
    assert box["y"] >= bar


def test_the_room_follows_the_bar_when_it_wraps(tab: Tab, server: Server) -> None:
    page = tab.page
    page.set_viewport_size({"width": 420, "height": 800})
    open_dashboard(tab, server)
    bar = page.evaluate(BAR)
    assert bar > 90  # the bar on several lines
    page.evaluate("location.hash = 'personas'")
    page.wait_for_function("(bar) => Math.abs(document.querySelector('#personas')"
                           ".getBoundingClientRect().top - bar) < 40", arg=bar)
    top = page.evaluate("document.querySelector('#personas').getBoundingClientRect().top")
    assert bar <= top < bar + 40
