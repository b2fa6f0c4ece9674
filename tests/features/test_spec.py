"""The feature spec (load, hash, errors that name file and key) and the layout derived from it."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pytest
import yaml

from features.errors import ConfigError
from features.layout import BLOCKS, CATEGORICAL, layout
from features.spec import OTHER, load_spec
from features.taxonomy import load_taxonomy

DEFAULT_TEXT = resources.files("features.config").joinpath("features.yaml").read_text()
TAXONOMY_TEXT = resources.files("features.config").joinpath("taxonomy.yaml").read_text()


def write_spec(tmp_path: Path, changes: dict[str, object] | None = None,
               name: str = "features.yaml") -> Path:
    raw = yaml.safe_load(DEFAULT_TEXT) | (changes or {})
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


# -- the default ---------------------------------------------------------------------------------
def test_default_spec_loads() -> None:
    spec = load_spec()
    assert spec.windows_days == (7, 30, 90)
    assert spec.session_gap_minutes == 30.0
    assert spec.response_window_hours == 72.0
    assert spec.channel_vocab[-1] == OTHER
    assert spec.action_vocab == (*spec.actions, OTHER)
    assert "discount_email" in spec.actions
    assert [s.name for s in spec.scores] == ["csat", "rating", "nps"]
    assert spec.scores[0].event_type == "support_ticket"
    assert spec.scores[0].low == 2.0
    assert spec.scores[1].low is None
    assert spec.attributes == ("region", "device", "acquisition_channel")
    assert spec.stages == load_taxonomy().stages
    assert spec.event_types == tuple(load_taxonomy().event_stage)
    assert spec.source == "<default features.yaml>"


# -- the definition hash -------------------------------------------------------------------------
def test_hash_is_stable(tmp_path: Path) -> None:
    first = load_spec().hash
    assert len(first) == 16
    assert load_spec().hash == first
    # the same definitions from another file (the source is not part of the definition)
    copy = tmp_path / "copy.yaml"
    copy.write_text(DEFAULT_TEXT, encoding="utf-8")
    assert load_spec(copy).hash == first
    tax = tmp_path / "tax.yaml"
    tax.write_text(TAXONOMY_TEXT, encoding="utf-8")
    assert load_spec(copy, load_taxonomy(tax)).hash == first


def test_hash_changes_with_the_windows(tmp_path: Path) -> None:
    base = load_spec().hash
    assert load_spec(write_spec(tmp_path, {"windows_days": [7, 30, 60]})).hash != base
    assert load_spec(write_spec(tmp_path, {"windows_days": [7, 30]})).hash != base


def test_hash_changes_with_other_definitions(tmp_path: Path) -> None:
    base = load_spec().hash
    hashes = {
        load_spec(write_spec(tmp_path, {"session_gap_minutes": 20})).hash,
        load_spec(write_spec(tmp_path, {"response_window_hours": 48})).hash,
        load_spec(write_spec(tmp_path, {"channels": ["search", "email"]})).hash,
        load_spec(write_spec(tmp_path, {"attributes": ["region"]})).hash,
    }
    assert base not in hashes
    assert len(hashes) == 4


def test_hash_changes_with_the_taxonomy(tmp_path: Path) -> None:
    base = load_spec().hash
    raw = yaml.safe_load(TAXONOMY_TEXT)
    variants = []
    moved = raw | {"event_types": raw["event_types"] | {"email_click": "awareness"}}
    variants.append(moved)
    added = raw | {"event_types": raw["event_types"] | {"webinar": "consideration"}}
    variants.append(added)
    variants.append(raw | {"conversion_event_types": ["purchase", "checkout"]})
    hashes = set()
    for i, variant in enumerate(variants):
        path = tmp_path / f"tax{i}.yaml"
        path.write_text(yaml.safe_dump(variant), encoding="utf-8")
        hashes.add(load_spec(None, load_taxonomy(path)).hash)
    assert base not in hashes
    assert len(hashes) == len(variants)


# -- invalid files -------------------------------------------------------------------------------
def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write_spec(tmp_path, {"window_days": [7]})
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert "window_days" in str(err.value)


@pytest.mark.parametrize("windows", [[30, 7], [7, 7, 30], [0, 7], [-7, 30], []])
def test_windows_must_increase(tmp_path: Path, windows: list[int]) -> None:
    path = write_spec(tmp_path, {"windows_days": windows})
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert "windows_days" in str(err.value)


def test_score_with_unknown_event_type(tmp_path: Path) -> None:
    path = write_spec(tmp_path, {"scores": {"ces": {"event_type": "chat", "key": "ces"}}})
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    message = str(err.value)
    assert str(path) in message
    assert "scores.ces.event_type" in message
    assert "'chat'" in message


def test_score_without_key(tmp_path: Path) -> None:
    path = write_spec(tmp_path, {"scores": {"ces": {"event_type": "support_ticket"}}})
    with pytest.raises(ConfigError, match=r"line \d+: scores\.ces\.key: is required") as err:
        load_spec(path)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(("changes", "key"), [
    ({"channels": "search"}, "channels"),  # a string is not a list of names
    ({"actions": ["discount_email", 3]}, "actions"),
    ({"attributes": {"region": 1}}, "attributes"),
    ({"windows_days": 7}, "windows_days"),
    ({"windows_days": ["a"]}, "windows_days"),
    ({"session_gap_minutes": "half an hour"}, "session_gap_minutes"),
    ({"response_window_hours": 0}, "response_window_hours"),
    ({"scores": ["csat"]}, "scores"),
    ({"scores": {"csat": {"event_type": "support_ticket", "key": "csat", "low": "bad"}}},
     "scores.csat.low"),
])
def test_wrong_types_name_file_and_key(tmp_path: Path, changes: dict[str, object],
                                       key: str) -> None:
    path = write_spec(tmp_path, changes)
    with pytest.raises(ConfigError) as err:
        load_spec(path)
    assert str(path) in str(err.value)
    assert key in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="feature spec not found"):
        load_spec(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("windows_days: [7, 30\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML") as err:
        load_spec(bad)
    assert str(bad) in str(err.value)
    listed = tmp_path / "list.yaml"
    listed.write_text("- 7\n- 30\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_spec(listed)
    empty = tmp_path / "empty.yaml"  # the defaults alone: no channels, actions or scores
    empty.write_text("# to do\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"empty.yaml: empty; a feature spec lists"):
        load_spec(empty)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"windows_days: [7]\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin.yaml: line 2: not UTF-8 text"):
        load_spec(latin)


# -- layout --------------------------------------------------------------------------------------
@pytest.mark.parametrize("changes", [None, {"windows_days": [1, 14]},
                                     {"scores": {}, "actions": [], "channels": []}])
def test_layout_names_are_unique_and_match_width(tmp_path: Path,
                                                 changes: dict[str, object] | None) -> None:
    spec = load_spec(write_spec(tmp_path, changes))
    lay = layout(spec)
    assert len(set(lay.names)) == len(lay.names) == lay.width
    assert lay.all_names == (*lay.names, *CATEGORICAL)
    assert len(lay.offsets) == len(BLOCKS)
    assert list(lay.offsets) == sorted(lay.offsets)
    first = dict(zip(BLOCKS, lay.offsets.tolist(), strict=True))
    assert lay.names[first["rfm"]] == "tenure_days"
    assert lay.names[first["stage"]] == "stage_current"
    assert lay.names[first["act_tail"]] == "days_since_action"
    w = spec.windows_days
    assert lay.names[first["types"]] == f"n_{spec.event_types[0]}_{w[0]}d"
    assert f"act_{OTHER}_{w[-1]}d" in lay.names
    assert sum(lay.score_columns) == lay.width - first["scores"]


def test_default_layout_width() -> None:
    spec = load_spec()
    n_w, n_t, n_s, n_c = 3, len(spec.event_types), len(spec.stages), len(spec.channel_vocab)
    expected = (3 + 3 * n_w + 4 + n_w * (n_t + n_s + n_c) + 4 + 4 + 4 + n_w + n_w + n_w
                + len(spec.action_vocab) + 3 + (4 + 3 + 3))
    assert layout(spec).width == expected == 155
    assert layout(spec).score_columns == (4, 3, 3)
