"""The dashboard's segment table in headless Chromium: filters, sorting, drill-down, export."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from tests.serving.dashboard.browser_setup import Server, Tab
from tests.serving.dashboard.dashboard_page import (
    open_dashboard,
    screenshot,
    set_filter,
    table_rows,
    table_total,
)


def test_a_filter_changes_the_table_to_the_apis_segments(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    everyone = server.get("segments", params={"by": "tier,stage"}).json()
    for dim in everyone["snapshot"]["dimensions"]:  # a filter and a cut per dimension
        assert page.locator(f"#filter-{dim}").count() == page.locator(f"#by-{dim}").count() == 1
    assert table_total(page) == everyone["total"]["customers"]
    assert len(table_rows(page)) == len(everyone["segments"])
    set_filter(page, "tier", ["high"])
    high = server.get("segments", params={"by": "tier,stage", "tier": "high"}).json()
    assert table_total(page) == high["total"]["customers"] < everyone["total"]["customers"]
    rows = table_rows(page)
    assert {r["key:tier"] for r in rows} == {"high"}
    assert [(r["key:stage"], int(r["customers"])) for r in rows] == \
        [(s["key"]["stage"], s["customers"]) for s in high["segments"]]
    # Cutting by region instead of stage re-queries with the filter kept.
    page.uncheck("#by-stage")
    page.check("#by-region")
    page.wait_for_function("() => { const q = new URLSearchParams(document.querySelector("
                           "'#segment-table').dataset.query); return q.get('by') === "
                           "'tier,region' && document.querySelector('#segment-table')"
                           ".dataset.state === 'ready'; }")
    by_region = server.get("segments", params={"by": "tier,region", "tier": "high"}).json()
    assert {r["key:region"] for r in table_rows(page)} == \
        {s["key"]["region"] for s in by_region["segments"]}
    assert table_total(page) == by_region["total"]["customers"]
    # Sorting by a column header sorts the rows (client side).
    page.click("#segment-table th[data-col=customers] button")
    sizes = [int(r["customers"]) for r in table_rows(page)]
    assert sizes == sorted(sizes, reverse=True)
    page.click("#segment-table th[data-col=customers] button")
    sizes = [int(r["customers"]) for r in table_rows(page)]
    assert sizes == sorted(sizes)


def test_clicking_a_segment_drills_down_to_its_customers(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    set_filter(page, "tier", ["high", "medium"])
    row = page.locator("#segment-table tbody tr.segment-row").first
    key = json.loads(row.get_attribute("data-key") or "{}")
    size = int(row.locator("td[data-col=customers]").get_attribute("data-value") or -1)
    assert set(key) == {"tier", "stage"} and size > 0
    row.click()
    drill = page.locator("#drilldown")
    drill.wait_for(state="visible")
    page.wait_for_selector("#drilldown[data-state=ready]")
    assert int(drill.get_attribute("data-total") or -1) == size
    filters = [(dim, value) for dim, value in key.items()]
    api = server.get("segments/customers", params=[*filters, ("limit", "50")]).json()
    ids = page.eval_on_selector_all("#drill-table tbody tr",
                                    "rs => rs.map(r => r.dataset.customer)")
    assert ids == [c["customer_id"] for c in api["customers"]]
    for dim, value in key.items():
        cells = page.eval_on_selector_all(f"#drill-table tbody td[data-col={dim}]",
                                          "cs => cs.map(c => c.dataset.value)")
        assert cells and set(cells) == {value}, dim
    shot = screenshot(page.locator("#segments"), "dashboard-drilldown.png")
    assert shot.stat().st_size > 10_000
    if size > 50:  # the next page is the API's next page
        page.click("#drill-next")
        page.wait_for_selector("#drilldown[data-state=ready][data-offset='50']")
        nxt = server.get("segments/customers",
                         params=[*filters, ("limit", "50"), ("offset", "50")]).json()
        ids = page.eval_on_selector_all("#drill-table tbody tr",
                                        "rs => rs.map(r => r.dataset.customer)")
        assert ids == [c["customer_id"] for c in nxt["customers"]]


def _csv_rows(data: bytes) -> list[dict[str, str]]:
    assert data.startswith(b"\xef\xbb\xbf")  # the byte-order mark Excel needs
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))


def _csv_ids(data: bytes) -> list[str]:
    return [row["customer_id"] for row in _csv_rows(data)]


def test_export_downloads_the_filtered_customers(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    set_filter(page, "tier", ["high"])
    stages = server.get("dashboard/data").json()["dimensions"]["stage"]
    chosen = [s for s in stages if s != "(none)"][:2]
    set_filter(page, "stage", chosen)
    with page.expect_download() as info:
        page.click("#export")
    download = info.value
    path = download.path()
    got = _csv_ids(Path(path).read_bytes())
    r = server.get("segments/export", params=[("tier", "high"), ("stage", ",".join(chosen))])
    want = _csv_ids(r.content)
    assert got == want and got
    expected_name = r.headers["content-disposition"].split('filename="')[1].rstrip('"')
    assert download.suggested_filename == expected_name
    as_of = server.get("dashboard/data").json()["snapshot"]["as_of"][:10]
    assert expected_name.startswith(f"segment-{as_of}-")  # named after the as-of date
    # The drill-down's export holds that one segment, in the order chosen there.
    page.locator("#segment-table tbody tr.segment-row").first.click()
    page.wait_for_selector("#drilldown[data-state=ready]")
    segment = json.loads(page.get_attribute("#drilldown", "data-filters") or "{}")
    page.select_option("#drill-sort", "churn")
    page.wait_for_selector("#drill-table th.sorted[data-col=churn]")
    with page.expect_download() as info:
        page.click("#drill-export")
    rows = _csv_rows(Path(info.value.path()).read_bytes())
    params = [(k, ",".join(v)) for k, v in segment.items()]
    by_churn = _csv_ids(server.get("segments/export", params=[*params, ("sort", "churn")]).content)
    assert [row["customer_id"] for row in rows] == by_churn and by_churn
    # The segment is large enough for the order to matter (else this proves nothing).
    assert by_churn != _csv_ids(server.get("segments/export", params=params).content)
    churn = [float(row["churn"]) for row in rows]
    assert churn == sorted(churn, reverse=True)


def test_export_this_table_writes_the_segment_rows(tab: Tab, server: Server) -> None:
    """The table's CSV is written in the page from the answer it shows: every segment, in the
    table's order, rounded, with the as-of date, under a name saying the cut and filters."""
    open_dashboard(tab, server)
    page = tab.page
    api = server.get("segments", params={"by": "tier,stage"}).json()
    as_of = api["snapshot"]["as_of"][:10]
    with page.expect_download() as info:
        page.click("#export-table")
    assert info.value.suggested_filename == f"segments-{as_of}-by-tier+stage-all.csv"
    rows = _csv_rows(Path(info.value.path()).read_bytes())
    assert [(r["tier"], r["stage"], int(r["customers"])) for r in rows] == \
        [(s["key"]["tier"], s["key"]["stage"], s["customers"]) for s in api["segments"]]
    for row, seg in zip(rows, api["segments"], strict=True):
        assert float(row["mean_risk"]) == pytest.approx(seg["mean_risk"], abs=5e-5)
        assert float(row["revenue_at_risk_total"]) == pytest.approx(seg["revenue_at_risk"],
                                                                    abs=5e-3)
        assert float(row["expected_value_total"]) == pytest.approx(seg["expected_value"],
                                                                   abs=5e-3)
        assert len(row["mean_risk"].partition(".")[2]) <= 4
        assert len(row["revenue_at_risk_total"].partition(".")[2]) <= 2
        assert row["as_of"] == as_of and row["change_customers"] != ""
    # Sorted on screen by size: the file follows.
    page.click("#segment-table th[data-col=customers] button")
    with page.expect_download() as info:
        page.click("#export-table")
    sizes = [int(r["customers"]) for r in _csv_rows(Path(info.value.path()).read_bytes())]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == len(api["segments"])
    # Segment values come from ingested data or a marketer: text that a spreadsheet would run
    # stays text (=, +, -, @ first, a minus before a digit too), as in the service's export;
    # a number column holds numbers only, a negative one unprefixed.
    cells = page.evaluate("""async () => {
        const m = await import(new URL("dashboard/assets/csv.js", document.baseURI).href);
        return [...["=1+1", "+1", "@A1", "-x", "-2", "-2+3+cmd|' /C calc'!A0", "-1+1",
                    "north"].map((v) => m.csvCell(v)),
                m.csvCell(-2.5, 2), m.csvCell(null, 4), m.csvCell("12", 2, false),
                m.csvCell(null, undefined, true),
                m.csvText([{ name: "persona", get: (r) => r.p, text: true },
                           { name: "change", get: (r) => r.c, digits: 1 }],
                          [{ p: "-1+cmd|x", c: -0.25 }, { p: null, c: null }])];
    }""")
    assert cells == ['"\'=1+1"', '"\'+1"', '"\'@A1"', '"\'-x"', '"\'-2"',
                     '"\'-2+3+cmd|\' /C calc\'!A0"', '"\'-1+1"', '"north"', "-2.5", "", "",
                     '"(none)"', '\ufeff"persona","change"\n"\'-1+cmd|x",-0.3\n"(none)",\n']
