"""The dashboard's charts and panels in headless Chromium: KPI groups, personas, drift, backtest."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

import pytest

from tests.serving.conftest import AS_OF
from tests.serving.dashboard.browser_setup import Server, Tab
from tests.serving.dashboard.conftest import EARLIER
from tests.serving.dashboard.dashboard_page import open_dashboard, screenshot

if TYPE_CHECKING:
    from playwright.sync_api import Page

SHAPES = """svg => [...svg.querySelectorAll('rect, path, circle')].filter(s => {
    const b = s.getBBox(); return b.width > 0 && b.height > 0; }).length"""


def test_every_chart_draws_an_svg_from_the_data(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    for chart in ("#funnel", "#sankey", "#attribution", "#tiers", "#stage-tiers"):
        svg = page.locator(f"{chart} svg")
        assert svg.count() == 1, chart
        box = svg.bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50, chart
        assert svg.evaluate(SHAPES) >= 3, chart
    jm = server.get("journey-map").json()["journey_map"]
    assert page.locator("#funnel .funnel-row").count() == len(jm["funnel"])
    nodes = {f["source"] for f in jm["flows"]} | {f["target"] for f in jm["flows"]}
    shown = set(page.eval_on_selector_all("#sankey .node", "ns => ns.map(n => n.dataset.node)"))
    assert shown == nodes and {"active", "dropped"} & shown
    assert page.locator("#sankey .link").count() == len(jm["flows"])
    assert "entered" in shown  # customers first seen past awareness do not appear from nowhere
    channels = [c["label"] for c in jm["attribution"]["by_channel"]["labels"]]
    rows = page.eval_on_selector_all("#attribution .attr-row", "rs => rs.map(r => r.dataset.label)")
    assert rows == channels  # largest Markov share first
    page.click("#attr-touchpoint")
    types = [c["label"] for c in jm["attribution"]["by_touchpoint"]["labels"]]
    rows = page.eval_on_selector_all("#attribution .attr-row", "rs => rs.map(r => r.dataset.label)")
    assert rows == types
    assert page.locator("#attribution svg").evaluate(SHAPES) >= 3
    tiers = {s["key"]["tier"] for s in server.get("dashboard/data").json()["tiers"]}
    assert set(page.eval_on_selector_all("#tiers .tier-row", "rs => rs.map(r => r.dataset.tier)")) \
        == tiers


def kpi_groups(page: Page) -> list[tuple[str, int]]:
    """The journey KPI table's rows: (group, customers)."""
    rows: list[list[str]] = page.eval_on_selector_all(
        "#kpi-table tbody tr", "rows => rows.map(r => [r.cells[0].textContent, "
        "r.cells[1].textContent])")
    return [(g, int(n.replace(",", ""))) for g, n in rows]


def test_journey_kpis_follow_the_group_toggle(tab: Tab, server: Server) -> None:
    open_dashboard(tab, server)
    page = tab.page
    # The served world has no persona model: the KPIs come grouped by stage and the persona
    # panel says how to get personas.
    page.wait_for_selector("#kpi-table[data-by=stage]")
    assert "journey personas" in page.inner_text("#personas-meta")
    for by in ("stage", "acquisition_channel", "month"):
        if by != "stage":
            page.click(f"#kpi-by button[data-by={by}]")
            page.wait_for_selector(f"#kpi-table[data-by={by}]")
        want = server.get("kpis", params={"by": by}).json()
        got = kpi_groups(page)
        assert [n for _, n in got] == [g["customers"] for g in want["groups"]]
        assert got[0][0].startswith(want["groups"][0]["group"])
        assert page.get_attribute(f"#kpi-by button[data-by={by}]", "aria-pressed") == "true"
    conversion = want["overall"]["conversion_rate"]
    foot = page.inner_text("#kpi-table tfoot")
    assert f"{100 * conversion['value']:.1f}%" in foot
    assert f"{100 * conversion['ci95'][0]:.1f}%" in foot  # the interval is shown
    screenshot(page.locator("#kpi-groups"), "dashboard-kpis.png")


def test_persona_cards_describe_each_persona(tab: Tab, server: Server) -> None:
    """The cards of a real persona model's answer (fitted here on the world's vectors and shaped
    by the service's own code); only its transport is stubbed, as the served world has none."""
    from features.batch import BatchEngine
    from features.store import EventStore
    from models.actions import load_catalog
    from models.personas import PersonaModel
    from serving.champions import ModelSet, ServedPersona
    from serving.marketing import Marketing
    from serving.marketing_schemas import PersonasOut

    world = server.served.world
    with EventStore(world.store, read_only=True) as es:
        vectors = BatchEngine(es, world.spec).features(AS_OF)
    model = PersonaModel(k_max=4, n_init=2, silhouette_sample=1000,
                         stages=tuple(world.spec.stages)).fit(vectors)
    settings = server.served.settings(world.store)
    marketing = Marketing(settings, world.spec, load_catalog(settings.action_catalog))
    out = PersonasOut.model_validate(marketing.personas(
        ModelSet({}, persona=ServedPersona(model, "7"))))
    # As a snapshot scored with this persona model fills them (the route's own test checks
    # where they come from; this one checks the card shows them).
    out.scores_as_of = AS_OF.isoformat()
    out.personas[0].churn_mean, out.personas[0].expected_value_mean = 0.2345, 1234.0
    body = out.model_dump_json()
    tab.page.route("**/personas", lambda route: route.fulfill(
        status=200, content_type="application/json", body=body))
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#persona-cards article")
    cards = page.locator("#persona-cards article")
    assert cards.count() == model.k_
    for prof, name in zip(model.profiles_, model.default_names_, strict=True):
        text = page.inner_text(f"[data-testid=persona-{prof['id']}]")
        assert name in text and f"{prof['customers']:,} customers" in text
        # The id `journey personas --rename ID NAME` takes, on the card.
        card = page.locator(f"[data-testid=persona-{prof['id']}]")
        assert card.locator(".persona-id").inner_text() == f"ID {prof['id']}"
        assert card.locator(".persona-name").inner_text() == name
        assert all(trait in text for trait in prof["traits"])
    assert f"{model.k_} personas" in page.inner_text("#personas-meta")
    assert f"scores as of {AS_OF.date().isoformat()}" in page.inner_text("#personas-meta")
    first = page.locator("[data-testid=persona-0]")
    assert first.locator("dd[data-fact=churn]").inner_text() == "23.5%"
    assert first.locator("dd[data-fact=value]").inner_text() == "1,234"
    facts = first.locator("dl").inner_text()
    assert "Expected value (per customer)" in facts
    assert f"Revenue, last {model.window_days} days (per customer)" in facts
    screenshot(page.locator("#personas"), "dashboard-personas.png")


def test_the_drift_panel_shows_the_reports_columns_and_thresholds(tab: Tab,
                                                                   server: Server) -> None:
    """The two scoring runs put a sample of customers in the drift window: the panel lists the
    scores and the most moved features as /v1/drift reports them, with the thresholds."""
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#drift-table tbody tr th")
    report = server.get("drift").json()["report"]
    rows = {r["name"]: r for r in report["rows"]}
    shown = page.eval_on_selector_all("#drift-table tbody tr",
                                      "rows => rows.map(r => [r.cells[0].textContent, "
                                      "r.dataset.status])")
    scores = [name for name, r in rows.items() if r["kind"] == "score"]
    assert [name for name, _ in shown[:len(scores)]] == sorted(
        scores, key=lambda n: (["alarm", "warn", "ok", "too_few"].index(rows[n]["status"]),
                               -(rows[n]["psi"] or -1)))
    assert all(rows[name]["status"] == status for name, status in shown)
    alarms = sum(r["status"] == "alarm" for r in report["rows"])
    badge = page.inner_text("#drift-badge")
    assert (f"{alarms} alarm" in badge) if report["alarm"] else ("alarm" not in badge)
    assert f"{report['window_size']:,} rows" in page.inner_text("#drift-meta")
    assert "alarm at PSI ≥ 0.25" in page.inner_text("#drift-thresholds")
    tick = page.eval_on_selector("#drift-table .psi-tick.alarm", "el => el.style.left")
    assert tick.endswith("%")  # placed through the CSSOM (the CSP refuses inline styles)
    screenshot(page.locator("#drift"), "dashboard-drift.png")


def test_the_backtest_card_draws_each_version_over_time(tab: Tab, server: Server) -> None:
    """Realized metrics computed by models.backtest on outcomes drawn from the predictions
    (a well calibrated v1, an overconfident v2), served as GET /backtest would."""
    import numpy as np

    from models.backtest import realized
    from serving.backtest_routes import BacktestOut

    rng = np.random.default_rng(3)
    points = []
    for target in ("churn", "conversion"):
        for version, days, sharpen in (("1", (0, 14), 1.0), ("2", (28,), 2.5)):
            for day in days:
                p = rng.uniform(0.02, 0.98, 2000)
                y = rng.uniform(size=p.size) < p
                shown = p ** sharpen / (p ** sharpen + (1 - p) ** sharpen)
                as_of = (EARLIER + timedelta(days=day)).isoformat()
                points.append({"target": target, "model_version": version, "as_of": as_of,
                               "horizon_days": 30, "label": "churned_inactive",
                               "snapshot": f"s{day}", "evaluated_at": AS_OF.isoformat(),
                               **realized(y, shown)})
    body = BacktestOut.model_validate({"results": points}).model_dump_json()
    tab.page.route("**/backtest", lambda route: route.fulfill(
        status=200, content_type="application/json", body=body))
    open_dashboard(tab, server)
    page = tab.page
    page.wait_for_selector("#backtest-table tbody tr")
    assert page.locator("#backtest-table tbody tr").count() == len(points)
    for target in ("churn", "conversion"):
        for chart in ("auc", "ece", "rel"):
            assert page.locator(f"#backtest-{chart}-{target} svg").count() == 1
        assert page.locator(f"#backtest-auc-{target} svg path.bt-line").count() == 2  # versions
        # Text alternatives: the table below holds every point; the deciles have their own.
        for chart in ("auc", "ece"):
            assert page.get_attribute(f"#backtest-{chart}-{target} svg", "aria-details") == \
                "backtest-table"
        figures = f"backtest-rel-{target}-figures"
        assert page.get_attribute(f"#backtest-rel-{target} svg", "aria-details") == \
            f"{figures}-box"
        page.click(f"#{figures}-box summary")  # the table is drawn when it is opened
        page.wait_for_selector(f"#{figures} tbody tr")  # on the toggle event, after the click
        newest = [p for p in points if p["target"] == target][-1]
        deciles = page.eval_on_selector_all(f"#{figures} tbody tr",
                                            "rs => rs.map(r => r.cells[3].textContent)")
        assert deciles == [f"{int(b['n']):,}" for b in newest["reliability"]] and deciles
    assert f"{len(points)} (model, version, prediction time)" in page.inner_text("#backtest-meta")
    screenshot(page.locator("#backtest"), "dashboard-backtest.png")


def test_without_results_the_backtest_card_says_what_to_run(tab: Tab, server: Server) -> None:
    tab.page.route("**/backtest", lambda route: route.fulfill(
        status=200, content_type="application/json", body='{"results": []}'))
    open_dashboard(tab, server)
    tab.page.wait_for_function(
        "() => document.querySelector('#backtest-meta').textContent.includes('journey backtest')")
    # Not a bare table of headings: the table and every chart say there is nothing yet.
    assert tab.page.inner_text("#backtest-table tbody") == "No backtest results yet."
    assert tab.page.locator("#backtest .chart .chart-empty").count() == 6


@pytest.mark.parametrize("width", [1024, 1440])
def test_sankey_labels_do_not_overlap(tab: Tab, server: Server, width: int) -> None:
    tab.page.set_viewport_size({"width": width, "height": 900})
    open_dashboard(tab, server)
    # A node's name and count, as one box per node.
    boxes = tab.page.eval_on_selector_all("#sankey .node", """ns => ns.map(n => {
        const bs = [...n.querySelectorAll('text')].map(t => t.getBBox());
        return [n.dataset.node, Math.min(...bs.map(b => b.x)), Math.min(...bs.map(b => b.y)),
                Math.max(...bs.map(b => b.x + b.width)), Math.max(...bs.map(b => b.y + b.height))];
    })""")
    assert len(boxes) >= 5
    for i, (a, *ra) in enumerate(boxes):
        for b, *rb in boxes[i + 1:]:
            apart = ra[2] <= rb[0] or rb[2] <= ra[0] or ra[3] <= rb[1] or rb[3] <= ra[1]
            assert apart, f"Sankey labels {a!r} and {b!r} overlap at {width} px"
    screenshot(tab.page.locator("#sankey"), f"sankey-{width}.png")
