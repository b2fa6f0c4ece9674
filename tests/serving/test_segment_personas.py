"""Personas of hand-built snapshots keyed by id: a persona renamed after scoring shows under its
new name at once (segments, filters, export, KPIs, the service's book), keeps its changes
since the previous snapshot, and old snapshots (names only) read the same way."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from models.persona_words import names_path, write_name
from serving.segments import SegmentBook, SegmentQueryError
from serving.segments_personas import relabel_kpis, snapshot_personas
from serving.snapshots import Snapshot, previous_of, write_snapshot

DIMS = ("tier", "persona")
SCORED = ["window shoppers", "email clickers", "unassigned"]  # ids 0, 1, then unassigned


def table(ids: list[int], churn: list[float], names: list[str], with_ids: bool = True
          ) -> pa.Table:
    """Customers c0.. with persona ``ids`` (-1 unassigned), as a scoring run writes them."""
    k = len(names) - 1
    codes = np.array([i if i >= 0 else k for i in ids], np.int32)
    cols: dict[str, Any] = {
        "customer_id": [f"c{i}" for i in range(len(ids))],
        "tier": pa.array(["high" if c >= 0.6 else "low" for c in churn]).dictionary_encode(),
        "churn": churn, "expected_value": [100.0] * len(ids),
        "revenue_at_risk": [100.0 * c for c in churn], "recency_days": [1.0] * len(ids),
        "top_action": pa.nulls(len(ids), pa.string()),
        "persona": pa.DictionaryArray.from_arrays(pa.array(codes), pa.array(names)),
    }
    if with_ids:
        cols["persona_id"] = pa.array(ids, pa.int32())
    return pa.table(cols)


def snapshot(root: Path, ids: list[int], churn: list[float], names: list[str],
             version: str = "1", with_ids: bool = True, **meta: Any) -> Snapshot:
    info = {"as_of": "2025-02-01T00:00:00Z", "models": {"journey-personas": version}, **meta}
    if with_ids:
        info["persona_names"] = names
    return write_snapshot(root, table(ids, churn, names, with_ids), None, info, keep=9)


def rename(home: Path, pid: int, name: str, version: str = "1") -> Path:
    path = names_path(home)
    write_name(path, version, pid, name, SCORED[:-1])
    return path


def test_a_rename_shows_at_once_in_segments_filters_and_the_export(tmp_path: Path) -> None:
    snap = snapshot(tmp_path / "scores", [0, 1, 1, -1], [0.2, 0.7, 0.9, 0.5], SCORED)
    names = rename(tmp_path, 1, "Bargain & email fans")  # after the scoring run
    book = SegmentBook(snap, DIMS, names_file=names)
    assert book.present["persona"] == ["window shoppers", "Bargain & email fans", "unassigned"]
    rows, _ = book.segments(["persona"], {})
    fans = next(s for s in rows if s.key["persona"] == "Bargain & email fans")
    assert fans.customers == 2 and fans.mean_risk == pytest.approx(0.8)
    _, total = book.segments([], {"persona": ["bargain & EMAIL fans"]})
    assert total.customers == 2
    text = b"".join(book.csv({"persona": ["Bargain & email fans"]})).decode("utf-8-sig")
    got = [(r["persona"], r["persona_id"]) for r in csv.DictReader(io.StringIO(text))]
    assert got == [("Bargain & email fans", "1")] * 2  # the id: a number, for joins
    _, page = book.page({}, "churn", 10, 0)
    assert [r["persona"] for r in page] == ["Bargain & email fans"] * 2 + [
        "unassigned", "window shoppers"]


def test_changes_after_a_rename_compare_the_same_persona(tmp_path: Path) -> None:
    """Renamed between two scoring runs, a persona is still itself: its change is against its
    own former figures, not "new" (as when snapshots were compared by name)."""
    root = tmp_path / "scores"
    snapshot(root, [0, 1, -1], [0.2, 0.5, 0.5], SCORED)
    names = rename(tmp_path, 1, "email fans")
    now = snapshot(root, [0, 1, 1, -1], [0.2, 0.7, 0.9, 0.5],
                   ["window shoppers", "email fans", "unassigned"])
    book = SegmentBook(now, DIMS, previous_of(root, now), names)
    rows, _ = book.segments(["persona"], {})
    fans = next(s for s in rows if s.key["persona"] == "email fans")
    assert fans.change == pytest.approx({"customers": 1, "mean_risk": 0.8 - 0.5,
                                         "revenue_at_risk": 160.0 - 50.0})
    _, filtered = book.segments([], {"persona": ["email fans"]})
    assert filtered.change is not None and filtered.change["customers"] == 1


def test_snapshots_scored_before_ids_read_their_ids_from_the_names_order(
        tmp_path: Path) -> None:
    root = tmp_path / "scores"
    snapshot(root, [0, 1, -1], [0.2, 0.5, 0.5], SCORED, with_ids=False)
    now = snapshot(root, [0, 1, 1], [0.2, 0.7, 0.9], SCORED, with_ids=False)
    names = rename(tmp_path, 0, "browsers")
    book = SegmentBook(now, DIMS, previous_of(root, now), names)
    assert book.personas is not None and book.personas.names == (
        "browsers", "email clickers", "unassigned")
    rows, _ = book.segments(["persona"], {})
    browsers = next(s for s in rows if s.key["persona"] == "browsers")
    assert browsers.change is not None and browsers.change["customers"] == 0


def test_a_previous_snapshot_of_another_persona_model_is_not_compared(tmp_path: Path) -> None:
    """Another persona model's id 0 is another persona, even under the same default name."""
    root = tmp_path / "scores"
    snapshot(root, [0, 0, 1], [0.2, 0.5, 0.5], SCORED, version="1")
    now = snapshot(root, [0, 1], [0.2, 0.7], SCORED, version="2")
    rows, _ = SegmentBook(now, DIMS, previous_of(root, now)).segments(["persona"], {})
    first = next(s for s in rows if s.key["persona"] == "window shoppers")
    assert first.change is not None and first.change["customers"] == 1
    assert math.isnan(first.change["mean_risk"])  # new: no former mean to compare with


def test_the_names_file_the_run_recorded_is_read_by_default(tmp_path: Path) -> None:
    """`journey segments` builds its book from the snapshot alone: the run recorded where
    renames are kept."""
    names = rename(tmp_path, 0, "regulars")
    snap = snapshot(tmp_path / "scores", [0, 1], [0.2, 0.7], SCORED,
                    persona_names_file=str(names))
    assert SegmentBook(snap, DIMS).present["persona"] == ["regulars", "email clickers"]


def test_a_damaged_names_file_keeps_the_scored_names(tmp_path: Path) -> None:
    bad = tmp_path / "names.json"
    bad.write_text("{not json")
    snap = snapshot(tmp_path / "scores", [0, 1], [0.2, 0.7], SCORED)
    found = snapshot_personas(snap.meta, snap.customers(), bad)
    assert found is not None and found.names == tuple(SCORED)


def test_kpi_groups_take_the_current_names_by_id_or_scored_name() -> None:
    data: dict[str, Any] = {"by": {"persona": [{"group": "email clickers", "id": 1},
                               {"group": "window shoppers"},  # written before ids
                               {"group": "unassigned", "id": -1}],
                   "stage": [{"group": "decision"}]}}
    out = relabel_kpis(data, SCORED, ["shoppers", "fans", "unassigned"])
    assert [g["group"] for g in out["by"]["persona"]] == ["fans", "shoppers", "unassigned"]
    assert out["by"]["stage"] == data["by"]["stage"]
    assert data["by"]["persona"][0]["group"] == "email clickers"  # a copy


def _marketing(home: Path) -> Any:
    from features.spec import load_spec
    from features.taxonomy import load_taxonomy
    from models.actions import load_catalog
    from serving.marketing import Marketing
    from serving.settings import ServeSettings

    spec = load_spec(None, load_taxonomy(None))
    return Marketing(ServeSettings(home=home, scores=home / "scores"), spec, load_catalog())


def test_the_service_shows_a_rename_without_a_new_scoring_run(tmp_path: Path) -> None:
    """The service's book, KPIs and persona figures follow the names file as it changes."""
    kpis = {"by": {"persona": [{"group": "email clickers", "id": 1}]}}
    root = tmp_path / "scores"
    write_snapshot(root, table([0, 1, 1], [0.2, 0.6, 0.8], SCORED), None,
                   {"as_of": "2025-02-01T00:00:00Z", "models": {"journey-personas": "1"},
                    "persona_names": SCORED}, keep=3, kpis=kpis)
    marketing = _marketing(tmp_path)
    marketing.config = replace(marketing.config, dimensions=DIMS)  # the table's columns
    assert "email clickers" in marketing.book().present["persona"]
    rename(tmp_path, 1, "Bargain & email fans")
    assert "Bargain & email fans" in marketing.book().present["persona"]
    _, data, by = marketing.kpis("persona")
    assert by == "persona" and data["by"]["persona"][0]["group"] == "Bargain & email fans"
    as_of, scores = marketing._persona_scores("1")
    assert as_of == "2025-02-01T00:00:00Z"
    assert scores[1]["churn_mean"] == pytest.approx(0.7)  # by id, whatever its name
    assert marketing._persona_scores("2") == (None, {})  # another persona model's snapshot
    assert json.loads(names_path(tmp_path).read_text()) == {"1": {"1": "Bargain & email fans"}}


def test_a_persona_may_be_filtered_by_its_id(tmp_path: Path) -> None:
    """Cards show the id `--rename` takes; a filter may use it, and it survives a rename."""
    snap = snapshot(tmp_path / "scores", [0, 1, 1, -1], [0.2, 0.7, 0.9, 0.5], SCORED)
    book = SegmentBook(snap, DIMS, names_file=rename(tmp_path, 1, "Bargain hunters"))
    assert book.canonical({"persona": ["1"]}) == {"persona": ["Bargain hunters"]}
    _, total = book.segments([], {"persona": ["1", "Bargain hunters"]})
    assert total.customers == 2
    assert len(book.rows({"persona": ["0"]}, "churn")) == 1
    with pytest.raises(SegmentQueryError, match=r"not a value of persona .* or an id 0 to 1"):
        book.canonical({"persona": ["2"]})  # the unassigned have no id


def test_a_persona_named_like_an_id_keeps_its_name(tmp_path: Path) -> None:
    names = ["1", "email clickers", "unassigned"]
    snap = snapshot(tmp_path / "scores", [0, 1, 1], [0.2, 0.7, 0.9], names)
    book = SegmentBook(snap, DIMS)
    _, total = book.segments([], {"persona": ["1"]})
    assert total.customers == 1  # the persona named "1" (id 0), not id 1
