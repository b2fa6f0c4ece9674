"""Loading event types, channels and properties: renaming, normalisation, defaults and packing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from features.mapping import load_preset, mapping_from_dict
from features.taxonomy import Taxonomy

if TYPE_CHECKING:
    from tests.conftest import LoadFn

from tests.features.loader_cases import utc


# -- event types, channels, properties -------------------------------------------------------------
def test_event_type_renaming_and_normalisation(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "customer_id,ts,event_type\n"
        "c,2024-01-01,Bought\n"
        "c,2024-01-01,Add To Cart\n"
        "c,2024-01-01,product-view\n"
        "c,2024-01-01,  Page   View  \n"
        "c,2024-01-01,PURCHASE\n"
        "c,2024-01-01,Sneezed\n"
        "c,2024-01-01,bought\n",
        encoding="utf-8",
    )
    mapping = mapping_from_dict(
        {
            "columns": {f: f for f in ("customer_id", "ts", "event_type")},
            "event_types": {"Bought": "purchase", "Sneezed": "teleport"},
        },
        "m",
    )
    got = load(path, mapping)
    assert got.column("event_type") == [
        "purchase",
        "add_to_cart",
        "product_view",
        "page_view",
        "purchase",
    ]
    # A renamed type must still be in the taxonomy, and renaming matches the raw value exactly
    # (case included); the reject shows the raw value.
    assert got.reject_tuples() == [
        (7, "event_type", "event_type unknown to the taxonomy", "Sneezed"),
        (8, "event_type", "event_type unknown to the taxonomy", "bought"),
    ]


def test_unknown_event_type_kept_under_keep_policy(
    tmp_path: Path, load: LoadFn, taxonomy: Taxonomy
) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "customer_id,ts,event_type\nc,2024-01-01,Pop-up Email Viewed\nc,2024-01-01,page_view\n",
        encoding="utf-8",
    )
    rejected = load(path)
    assert rejected.column("event_type") == ["page_view"]
    assert rejected.reject_tuples() == [
        (2, "event_type", "event_type unknown to the taxonomy", "Pop-up Email Viewed")
    ]
    kept = load(path, tax=taxonomy.with_policy("keep"))
    assert kept.column("event_type") == ["pop_up_email_viewed", "page_view"]
    assert kept.rejects == []
    assert taxonomy.with_policy("keep").stage_of("pop_up_email_viewed") is None


def test_channel_default_constant_and_lowercasing(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "customer_id,ts,event_type,channel\nc,2024-01-01,page_view,\n"
        "c,2024-01-01,page_view,Paid Social\n",
        encoding="utf-8",
    )
    assert load(path).column("channel") == ["unknown", "paid social"]
    cols = {f: f for f in ("customer_id", "ts", "event_type", "channel")}
    with_default = mapping_from_dict({"columns": cols, "defaults": {"channel": "Web"}}, "m")
    assert load(path, with_default).column("channel") == ["web", "paid social"]
    constant = mapping_from_dict(
        {
            "columns": {f: f for f in ("customer_id", "ts", "event_type")},
            "constants": {"channel": "store"},
        },
        "m",
    )
    assert load(path, constant).column("channel") == ["store", "store"]


def test_properties_packing_of_extra_columns(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(
        "customer_id,date,number_of_cds,dollar_value,ignored\n"
        "00001,19970101,1,11.77,x\n"
        "00002,19970112,,12.00,y\n",
        encoding="utf-8",
    )
    got = load(path, load_preset("purchases"))
    assert got.column("customer_id") == ["00001", "00002"]  # leading zeros kept
    assert got.column("ts") == [utc(1997, 1, 1), utc(1997, 1, 12)]
    assert got.column("value") == [11.77, 12.0]
    props = [json.loads(str(p)) for p in got.column("properties")]
    assert props == [{"number_of_cds": "1"}, {"number_of_cds": None}]


def test_extra_columns_merge_into_a_properties_object(tmp_path: Path, load: LoadFn) -> None:
    path = tmp_path / "e.csv"
    path.write_text(
        "customer_id,ts,event_type,props,sku\n"
        'c1,2024-01-01,purchase,"{""a"": 1, ""sku"": ""old""}",X\n'
        "c2,2024-01-01,purchase,,Y\n"
        'c3,2024-01-01,purchase,"[1, 2]",Z\n'
        "c4,2024-01-01,purchase,garbage,W\n"
        "c5,2024-01-01,purchase,42,V\n",
        encoding="utf-8",
    )
    mapping = mapping_from_dict(
        {
            "columns": {
                "customer_id": "customer_id",
                "ts": "ts",
                "event_type": "event_type",
                "properties": "props",
            },
            "properties": ["sku"],
        },
        "m",
    )
    got = load(path, mapping)
    assert got.column("customer_id") == ["c1", "c2"]
    props = [json.loads(str(p)) for p in got.column("properties")]
    assert props == [{"a": 1, "sku": "X"}, {"sku": "Y"}]
    # A base that is not a JSON object is rejected, not silently replaced by the extras.
    assert sorted(got.reject_tuples()) == [
        (4, "properties", "properties is not a JSON object", "[1, 2]"),
        (5, "properties", "properties is not a JSON object", "garbage"),
        (6, "properties", "properties is not a JSON object", "42"),
    ]
