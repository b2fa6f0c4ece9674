"""Driving the dashboard page; importing it skips the test module without Playwright or Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.serving.dashboard.browser_setup import CHROMIUM, ROOT, Server, Tab

try:
    from playwright.sync_api import Locator, Page
except ImportError:  # pragma: no cover - depends on the machine
    pytest.skip("the playwright package is not installed (pip install playwright; its browser "
                "download is not needed)", allow_module_level=True)

if not CHROMIUM.is_file():  # pragma: no cover - depends on the machine
    pytest.skip(f"no Chromium at {CHROMIUM} (Debian package `chromium`)", allow_module_level=True)

ARTIFACTS = ROOT / "var" / "test-artifacts"


def open_dashboard(tab: Tab, server: Server, key: str | None = None) -> float:
    """Open the page with the key in the fragment; the milliseconds from navigation to the
    first full render (KPIs, charts and the segment table), as the page measured them."""
    tab.page.goto(f"{server.url}/dashboard#key={key or server.key()}")
    tab.page.wait_for_selector("body[data-state=ready]")
    ms: float = tab.page.evaluate(
        "performance.getEntriesByName('journey:ready')[0].startTime")
    return ms


def screenshot(target: Page | Locator, name: str, **kwargs: Any) -> Path:
    """A PNG of the page (or of one element) under var/test-artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    # The sticky top bar would be painted over a tall element's capture: let it scroll away
    # (through the CSSOM: the page's Content-Security-Policy refuses injected style sheets).
    page = target if isinstance(target, Page) else target.page
    page.evaluate("document.querySelector('.topbar').style.position = 'static'")
    try:
        target.screenshot(path=str(path), **kwargs)
    finally:
        page.evaluate("document.querySelector('.topbar').style.position = ''")
    print(f"\nscreenshot: {path}")
    return path


def kpi(page: Page, name: str) -> tuple[str, str]:
    """A KPI tile's displayed value and its raw value."""
    value = page.locator(f"#kpis [data-testid=kpi-{name}] .kpi-value")
    return value.inner_text(), value.get_attribute("data-value") or ""


def set_filter(page: Page, dim: str, values: list[str]) -> None:
    """Tick exactly ``values`` in a dimension's filter and wait for the table to show them."""
    page.click(f"#filter-{dim} summary")
    for box in page.locator(f"#filter-{dim} input[type=checkbox]").all():
        want = box.get_attribute("value") in values
        if box.is_checked() != want:
            box.set_checked(want)
    page.keyboard.press("Escape")
    wait_table(page, {dim: values})


def wait_table(page: Page, filters: dict[str, list[str]]) -> None:
    """Wait until the segment table shows the answer for ``filters`` (merged with the page's)."""
    page.wait_for_function(
        """(filters) => {
            const t = document.querySelector('#segment-table');
            if (t.dataset.state !== 'ready') return false;
            const q = new URLSearchParams(t.dataset.query || '');
            const same = (a, b) => a.length === b.length && a.every(x => b.includes(x));
            return Object.entries(filters).every(
                ([k, v]) => same((q.get(k) || '').split(',').filter(Boolean), v));
        }""", arg=filters)


def table_rows(page: Page) -> list[dict[str, str]]:
    """The segment table's rows: column id -> raw value."""
    rows: list[dict[str, str]] = page.eval_on_selector_all(
        "#segment-table tbody tr.segment-row",
        "rows => rows.map(r => Object.fromEntries([...r.cells].map(c => "
        "[c.dataset.col, c.dataset.value])))")
    return rows


def table_total(page: Page) -> int:
    return int(page.get_attribute("#segment-table tfoot td[data-col=customers]", "data-value")
               or -1)
