"""Stage taxonomy: the default file, custom files, and errors that name the file and key."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from features.errors import ConfigError
from features.mapping import identity_mapping
from features.taxonomy import Taxonomy, load_taxonomy
from tests.conftest import LoadFn

DEFAULT_STAGES = ("awareness", "consideration", "decision", "purchase", "retention", "advocacy")


def write(tmp_path: Path, text: str, name: str = "taxonomy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the default ---------------------------------------------------------------------------
def test_default_has_six_stages_in_order() -> None:
    tax = load_taxonomy()
    assert tax.stages == DEFAULT_STAGES
    assert [tax.stage_index(s) for s in DEFAULT_STAGES] == list(range(6))
    assert tax.source == "<default taxonomy.yaml>"


@pytest.mark.parametrize(
    ("event_type", "stage"),
    [
        ("ad_impression", "awareness"),
        ("ad_click", "awareness"),
        ("email_open", "awareness"),
        ("page_view", "consideration"),
        ("product_view", "consideration"),
        ("email_click", "consideration"),
        ("search", "consideration"),
        ("add_to_cart", "decision"),
        ("checkout", "decision"),
        ("purchase", "purchase"),
        ("account_login", "retention"),
        ("support_ticket", "retention"),
        ("survey_response", "retention"),
        ("review", "advocacy"),
        ("referral", "advocacy"),
    ],
)
def test_default_stage_of(event_type: str, stage: str) -> None:
    assert load_taxonomy().stage_of(event_type) == stage


def test_default_action_sent_is_known_but_signals_no_stage() -> None:
    tax = load_taxonomy()
    assert "action_sent" in tax.event_stage
    assert tax.stage_of("action_sent") is None
    assert "action_sent" not in tax.behavioural_event_types
    assert len(tax.behavioural_event_types) == len(tax.event_stage) - 1


def test_default_unknown_type_has_no_stage_and_policy_is_reject() -> None:
    tax = load_taxonomy()
    assert tax.stage_of("teleport") is None
    assert "teleport" not in tax.event_stage
    assert tax.unknown_event_types == "reject"
    assert tax.conversion_event_types == ("purchase",)


def test_stage_index_of_unknown_stage_raises() -> None:
    with pytest.raises(ValueError):
        load_taxonomy().stage_index("nirvana")


# -- a custom file ---------------------------------------------------------------------------
def test_custom_file_replaces_the_default(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
stages: [visit, buy, love]
event_types:
  visit_page: visit
  order: buy
  praise: love
  nudge: null
conversion_event_types: [order]
unknown_event_types: keep
""",
    )
    tax = load_taxonomy(path)
    assert tax.stages == ("visit", "buy", "love")
    assert tax.event_stage == {
        "visit_page": "visit", "order": "buy", "praise": "love", "nudge": None
    }
    assert tax.stage_of("order") == "buy"
    assert tax.stage_of("page_view") is None  # the default's types are gone, not merged
    assert tax.conversion_event_types == ("order",)
    assert tax.unknown_event_types == "keep"
    assert tax.behavioural_event_types == ("visit_page", "order", "praise")
    assert tax.source == str(path)


def test_custom_file_defaults_for_optional_keys(tmp_path: Path) -> None:
    path = write(tmp_path, "stages: [a, b]\nevent_types: {purchase: b, look: a}\n")
    tax = load_taxonomy(path)
    assert tax.conversion_event_types == ("purchase",)
    assert tax.unknown_event_types == "reject"


# -- invalid files -----------------------------------------------------------------------------
def test_unknown_stage_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "stages: [a, b]\nevent_types:\n  purchase: b\n  look: c\n")
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "event_types.look" in msg
    assert "'c'" in msg


@pytest.mark.parametrize("missing", ["stages", "event_types"])
def test_missing_key_names_file_and_key(tmp_path: Path, missing: str) -> None:
    body = {"stages": "stages: [a]\n", "event_types": "event_types: {purchase: a}\n"}
    path = write(tmp_path, "".join(v for k, v in body.items() if k != missing))
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    assert str(path) in str(info.value)
    assert f"missing required key {missing!r}" in str(info.value)


def test_bad_policy_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, "stages: [a]\nevent_types: {purchase: a}\nunknown_event_types: drop\n")
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    assert str(path) in str(info.value)
    assert "unknown_event_types" in str(info.value)
    assert "'drop'" in str(info.value)


def test_bad_yaml_names_file(tmp_path: Path) -> None:
    path = write(tmp_path, "stages: [a, b\nevent_types: {")
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_taxonomy(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- a\n- b\n", "expected a mapping at the top level"),
        ("", "expected a mapping at the top level"),
        ("stages: [a]\nevent_types: [purchase]\n", "'event_types' must map event type -> stage"),
        ("stages: [a, a]\nevent_types: {purchase: a}\n", "'stages' must be a non-empty list"),
        ("stages: []\nevent_types: {purchase: a}\n", "'stages' must be a non-empty list"),
        ("stages: [a, inactive]\nevent_types: {purchase: a}\n",
         "stages ['inactive'] use a reserved name"),
        ("stages: [entered, dropped]\nevent_types: {purchase: entered}\n",
         "stages ['dropped', 'entered'] use a reserved name"),
        (
            "stages: [a]\nevent_types: {buy: a}\n",
            "conversion_event_types names 'purchase', which is not under event_types",
        ),
    ],
)
def test_other_invalid_files(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    assert str(path) in str(info.value)
    assert expected in str(info.value)


@pytest.mark.parametrize(
    ("tail", "expected"),
    [
        # No conversion type: every conversion label would be 0 without a word.
        ("conversion_event_types: []\n", "conversion_event_types is empty: with no conversion "
         "event type no customer ever converts"),
        # A string is not a list of one (it was read as its letters).
        ("conversion_event_types: purchase\n",
         "conversion_event_types must be a list of event types, got 'purchase'"),
        # Earlier than purchase: the rule only ever moves a repeat to a later stage.
        ("repeat_conversion_stage: a\n", "repeat_conversion_stage 'a' is not later than the "
         "stage of any conversion event type (purchase: b); a repeat conversion is only ever "
         "moved to a later stage, so the rule would do nothing: name a stage after 'b', or "
         "remove the rule"),
        ("repeat_conversion_stage: b\n", "repeat_conversion_stage 'b' is not later than"),
    ],
)
def test_conversion_settings_that_change_nothing_are_refused(
        tmp_path: Path, tail: str, expected: str) -> None:
    path = write(tmp_path, "stages: [a, b, c]\nevent_types: {look: a, purchase: b}\n" + tail)
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    assert str(info.value).startswith(f"{path}: {expected}")


def test_a_later_repeat_stage_is_accepted(tmp_path: Path) -> None:
    text = "stages: [a, b, c]\nevent_types: {look: a, purchase: b}\n"
    assert load_taxonomy(write(tmp_path, text + "repeat_conversion_stage: c\n")
                         ).repeat_conversion_stage == "c"


def test_event_type_names_are_spelled_as_the_loader_spells_a_rows_type(tmp_path: Path) -> None:
    # The loader reads a row's "Add To Cart" as add_to_cart: a key kept as written never matched.
    path = write(tmp_path, "stages: [a, b]\nevent_types:\n  Add To Cart: a\n  Big-Purchase: b\n"
                 "conversion_event_types: [Big-Purchase]\n")
    tax = load_taxonomy(path)
    assert tax.event_stage == {"add_to_cart": "a", "big_purchase": "b"}
    assert tax.conversion_event_types == ("big_purchase",)


def test_two_keys_of_one_event_type_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "stages: [a, b]\nevent_types:\n  add_to_cart: a\n  Add To Cart: b\n"
                 "  purchase: b\n")
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    assert str(info.value) == (
        f"{path}: event_types: 'add_to_cart' and 'Add To Cart' are the same event type "
        "'add_to_cart' once spelled as the loader spells event types (lower case, spaces and "
        "dashes as _)")


def test_a_key_yaml_reads_as_a_date_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "stages: [a]\nevent_types: {purchase: a, 2025-01-01: a}\n")
    with pytest.raises(ConfigError, match=r"event_types: the key datetime.date\(2025, 1, 1\) is "
                       r"not text .* quote it"):
        load_taxonomy(path)


def test_a_taxonomy_not_in_utf8_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "taxonomy.yaml"
    path.write_bytes(b"stages: [a]\n# caf\xe9\nevent_types: {purchase: a}\n")
    with pytest.raises(ConfigError) as info:
        load_taxonomy(path)
    assert str(info.value) == f"{path}: line 2: not UTF-8 text (byte 0xe9); save the file as UTF-8"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="taxonomy file not found"):
        load_taxonomy(tmp_path / "nope.yaml")


# -- with_policy -------------------------------------------------------------------------------
def test_with_policy() -> None:
    tax = load_taxonomy()
    assert tax.with_policy(None) is tax
    assert tax.with_policy("reject") is tax
    keep = tax.with_policy("keep")
    assert keep.unknown_event_types == "keep"
    assert tax.unknown_event_types == "reject"  # the original is unchanged (frozen)
    assert keep.stages == tax.stages
    assert keep.event_stage == tax.event_stage
    assert keep.source == tax.source
    assert keep.with_policy("reject").unknown_event_types == "reject"


def test_with_invalid_policy_raises() -> None:
    with pytest.raises(ConfigError, match="must be 'reject' or 'keep'"):
        load_taxonomy().with_policy("ignore")  # type: ignore[arg-type]


def test_taxonomy_is_immutable() -> None:
    tax = Taxonomy(stages=("a",), event_stage={"purchase": "a"})
    with pytest.raises(AttributeError):
        tax.stages = ("b",)  # type: ignore[misc]


def test_rows_load_under_a_key_written_with_spaces(tmp_path: Path, load: LoadFn) -> None:
    tax = load_taxonomy(write(tmp_path, "stages: [a, b]\nevent_types:\n  Add To Cart: a\n"
                              "  purchase: b\n"))
    src = tmp_path / "ev.csv"
    src.write_text("customer_id,ts,event_type\nc1,2025-01-01T00:00:00Z,Add to cart\n"
                   "c1,2025-01-02T00:00:00Z,Basket\n", encoding="utf-8")
    # A mapping's rename to the key as the taxonomy wrote it finds it too.
    renamed = replace(identity_mapping(), event_types={"Basket": "Add To Cart"})
    got = load(src, renamed, tax)
    assert got.rejects == [] and got.column("event_type") == ["add_to_cart", "add_to_cart"]
