"""`journey personas` (fit, show, rename) and `journey kpis` through typer's CliRunner on the
small world, with its champions in a home of the module's own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from models.persona_words import names_path, read_names
from serving.snapshots import latest
from tests.journey.cli_helpers import ANSI, fails, ok, run
from tests.serving.conftest import AS_OF, Served, build_served
from tests.training.world import Trained, UpliftTrained, World, clean_env, one_thread

pytestmark = pytest.mark.slow  # needs the trained world


@pytest.fixture(scope="module")
def home(world: World, trained: Trained, uplift_trained: UpliftTrained,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = build_served(world, trained, uplift_trained, tmp_path_factory.mktemp("cli-home"))
    with clean_env(), one_thread(), pytest.MonkeyPatch.context() as mp:
        mp.setenv("JOURNEY_HOME", str(served.home))
        mp.setenv("JOURNEY_STORE", str(world.store))
        mp.setenv("JOURNEY_SNAPSHOTS", str(served.home / "snapshots"))  # not the shared ones
        mp.setenv("JOURNEY_MLFLOW_TRACKING_URI", served.tracking_uri)
        yield served


@pytest.fixture(scope="module")
def settings_file(home: Served) -> Path:
    f = home.home / "personas.yaml"
    f.write_text("k_max: 4\nn_init: 2\nsilhouette_sample: 1000\n")
    return f


@pytest.fixture(scope="module")
def fitted(home: Served, settings_file: Path) -> list[str]:
    lines = ok("personas", "--as-of", AS_OF.date().isoformat(), "--config", settings_file)
    assert lines[0] == "computing features as of 2025-11-15 ..."  # no snapshot there yet
    return lines[1:]


def test_personas_fits_registers_and_describes(fitted: list[str]) -> None:
    assert fitted[0].startswith("journey-personas v1 (champion), fitted as of 2025-11-15")
    assert "personas (k by silhouette, highest wins: 3: " in fitted[1]
    assert "customers assigned" in fitted[2] and "unassigned" in fitted[2]
    heads = [line for line in fitted if line.startswith("[")]
    assert heads[0].startswith("[0] ") and 3 <= len(heads) <= 4
    assert any("x the average" in line for line in fitted)
    assert any("typical stage:" in line for line in fitted)
    assert any("main channels:" in line for line in fitted)


def test_a_second_fit_is_not_champion_unless_promoted(fitted: list[str],
                                                     settings_file: Path) -> None:
    again = ok("personas", "--as-of", AS_OF.date().isoformat(), "--config", settings_file)
    assert again[0].startswith("journey-personas v2,") and "(champion)" not in again[0]
    assert again[-1].startswith("not the champion")
    promoted = ok("personas", "--as-of", AS_OF.date().isoformat(), "--config", settings_file,
                  "--promote")
    assert promoted[0].startswith("journey-personas v3 (champion)")


def test_rename_and_show(home: Served, fitted: list[str]) -> None:
    done = ok("personas", "--rename", "1", "night owls")
    assert done[0].startswith("persona 1 of journey-personas v")
    version = done[0].split(" v")[1].split()[0]
    assert read_names(names_path(home.home), version) == {1: "night owls"}
    shown = ok("personas", "--show")
    assert "[1] night owls" in shown
    assert "does not exist" in fails("personas", "--rename", "9", "x")
    assert "already used" in fails("personas", "--rename", "0", "night owls")


def test_kpis_after_scoring(home: Served, fitted: list[str]) -> None:
    assert "no score snapshot" in fails("kpis")
    ok("score", "--as-of", AS_OF.isoformat(), "--no-actions")
    snap = latest(home.home / "scores")
    assert snap is not None and snap.kpis() is not None
    assert "persona" in snap.customers().column_names
    lines = ok("kpis", "--by", "persona")
    # The dashboard's Journey KPIs table: its headings, everyone at the foot.
    assert lines[0].startswith("KPIs by persona") and lines[1].split()[:2] == ["Group",
                                                                             "Customers"]
    assert "Repeat purchase" in lines[1] and "CSAT (mean rating)" in lines[1]
    note = next(i for i, line in enumerate(lines) if line.startswith("CLV, as this snapshot "
                                                                       "defines it: "))
    assert note > 2 and all(len(line) <= 100 for line in lines[note:])  # wrapped
    assert lines[note - 1].startswith("All customers ")
    assert any(line.startswith("unassigned") for line in lines)
    assert "%" in lines[note - 1] and "[" in lines[note - 1]
    months = ok("kpis", "--by", "month")
    assert any("(so far)" in line for line in months)  # the dashboard's word
    assert not any("(partial)" in line for line in months)
    assert "grouped by" in fails("kpis", "--by", "colour")


def test_show_and_kpis_read_the_newest_snapshot_by_persona_id(home: Served,
                                                             fitted: list[str]) -> None:
    """--show adds churn risk and expected value from the newest snapshot (as the dashboard's
    cards); a persona renamed after that scoring run keeps them, and the KPIs show its new
    name without another run."""
    if latest(home.home / "scores") is None:
        ok("score", "--as-of", AS_OF.isoformat(), "--no-actions")
    ok("personas", "--rename", "2", "renamed after scoring")
    shown = ok("personas", "--show")
    assert shown[-1].startswith("churn risk and expected value from score snapshot ")
    at = shown.index(next(line for line in shown if line.startswith("[2] ")))
    assert shown[at] == "[2] renamed after scoring"
    block = shown[at:shown.index("", at)]  # a blank line ends each persona
    assert any("churn risk " in line and "% (mean)" in line and "expected value" in line
               for line in block)
    kpis = ok("kpis", "--by", "persona")
    assert any(line.startswith("renamed after scoring ") for line in kpis)


def test_bad_settings_file_names_the_key(home: Served, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("k_min: 9\nk_max: 4\n")
    assert "k_max (4) must be at least k_min (9)" in fails("personas", "--config", f)
    f.write_text("window_days: 45\n")  # not a feature window: no counts to build on
    said = fails("personas", "--config", f)
    assert f"{f}: window_days: 45 is not one of the feature spec's windows_days" in said
    f.write_text("min_events: 100000\n")  # tuned on one log, too strict on another
    result = run("personas", "--config", f)  # stdout: the feature snapshot it read
    said = ANSI.sub("", result.stderr)
    assert result.exit_code == 2 and "or more events in the 90 days" in said, said
    assert "later" not in said  # the default cutoff is the data's end: none is later
    assert "(min_events: " in said and said.rstrip().endswith(
        f"The settings are in {f}: change a copy and pass it with --config")


def test_show_rounds_the_share_once(capsys: pytest.CaptureFixture[str]) -> None:
    """A model fitted before shares were kept unrounded stored 0.3405 for 2,541 of 7,463
    (34.05%), which printed 34.1%; the share now comes from the counts, as in the API."""
    from types import SimpleNamespace

    from journey.personas_cli import _print

    model = SimpleNamespace(k_=1, criterion={"values": {2: 0.4}}, n_active_=7463,
                            n_customers_=8000, min_events=3, window_days=90)
    prof = {"id": 0, "customers": 2541, "share": 0.3405, "traits": [], "channels": []}
    _print(model, [prof], ["night owls"], "personas")  # type: ignore[arg-type]
    assert "2,541 customers (34.0%)" in capsys.readouterr().out


def test_kpi_rows_read_as_on_the_dashboard() -> None:
    """Intervals with the dashboard's dash and decimals, NPS "to", money in whole units, the
    month not over yet "(so far)"."""
    from journey.personas_cli import _kpi_row

    def rate(v: float, lo: float, hi: float) -> dict[str, object]:
        return {"value": v, "ci95": [lo, hi]}

    row = {"group": "2025-11", "partial": True, "customers": 1234,
           "conversion_rate": rate(0.123, 0.101, 0.146), "retention_rate": {"value": None},
           "repeat_purchase_rate": rate(0.5, 0.4, 0.6), "clv": {"value": 263.4},
           "csat": {"mean": 3.66, "mean_ci95": [3.63, 3.7]},
           "nps": {"score": 15.2, "ci95": [5.0, 25.4]}}
    assert _kpi_row(row) == ["2025-11 (so far)", "1,234", "12.3% [10.1%\u201314.6%]", "-",
                             "50.0% [40.0%\u201360.0%]", "263", "3.66 [3.63\u20133.70]",
                             "+15 [+5 to +25]"]
