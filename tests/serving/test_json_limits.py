"""JSON bodies the parsers cannot take as they are: nesting deeper than the service's limit (was
a 500 from a RecursionError and a traceback of thousands of lines, on the fast path from 600
levels and on every JSON route from ~1,100), and an integer longer than Python converts (was a
422 saying "not valid UTF-8 JSON", with no position). Each is a 422 ``bad_request`` in the
service's shape, saying why and, where known, where."""

from __future__ import annotations

import json
import sys
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from serving.errors import BadRequestError
from serving.json_keys import (
    MAX_DEPTH,
    SMALL_BODY,
    check_structure,
    long_integer_at,
    may_be_refused,
    repeated_key,
    structure_problem,
)
from serving.keys import Role
from serving.schemas import ErrorOut
from tests.serving.conftest import Served, state_of
from tests.serving.test_app import customers, error

JSON = {"Content-Type": "application/json"}


def nested(levels: int) -> str:
    """An array value ``levels`` deep (``[[...]]``)."""
    return "[" * levels + "]" * levels


def properties(levels: int) -> dict[str, Any]:
    """An object ``levels`` deep."""
    out: dict[str, Any] = {}
    for _ in range(levels - 1):
        out = {"a": out}
    return out


def predict_body(levels: int) -> bytes:
    """The audit's body: the attributes value ``levels`` deep, the body one more."""
    return f'{{"customer_id": "C1", "attributes": {nested(levels)}}}'.encode()


def event_body(served: Served, tag: str, levels: int) -> bytes:
    """An /events body whose deepest value is at ``levels`` (the body, events, the event and
    its properties are the first four levels)."""
    who = customers(served, 1)[0]
    return json.dumps({"events": [{
        "event_id": f"deep-{tag}", "customer_id": who, "ts": "2025-11-01T00:00:00Z",
        "event_type": "page_view", "properties": properties(levels - 3)}]}).encode()


def deep(got: dict[str, Any]) -> None:
    problem = f"nested deeper than {MAX_DEPTH} levels"
    assert got["message"] == f"body: {problem} (arrays and objects within one another)"
    assert got["errors"] == [{"field": "body", "message": problem}]
    ErrorOut.model_validate(got)


# -- the walkers ---------------------------------------------------------------------------

@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 600, 5_000, 100_000])
def test_too_deep_is_found_without_running_out_of_stack(levels: int) -> None:
    body = nested(levels).encode()
    assert structure_problem(body) == ("deep", "" if levels > 1_000 else "[0]" * MAX_DEPTH)
    assert repeated_key(body) is None
    with pytest.raises(BadRequestError, match=f"nested deeper than {MAX_DEPTH}"):
        check_structure(body)


def test_the_limit_itself_is_allowed_exactly() -> None:
    at_limit, over = nested(MAX_DEPTH).encode(), nested(MAX_DEPTH + 1).encode()
    assert structure_problem(at_limit) is None
    check_structure(at_limit)
    assert not may_be_refused(at_limit, orjson.loads(at_limit))
    assert may_be_refused(over, orjson.loads(over))


def test_a_repeat_deep_in_the_limit_is_still_named() -> None:
    body = json.dumps(properties(MAX_DEPTH)).replace("{}", '{"k": 1, "k": 2}').encode()
    where = repeated_key(body)
    assert where is not None and where.endswith(".a.k") and where.count(".") == MAX_DEPTH - 1


@pytest.mark.parametrize("levels", [600, 1_000])
def test_the_fast_check_hands_a_deep_body_on(levels: int) -> None:
    """orjson reads ~1,000 levels; the bound's walk was recursive (two frames a level)."""
    body = predict_body(levels)
    assert len(body) <= SMALL_BODY  # the walk, not the exact parse, decides
    assert may_be_refused(body, orjson.loads(body))
    wide = f'{{"customer_id": "C1", "pad": "{"x" * SMALL_BODY}", "a": {nested(600)}}}'.encode()
    assert may_be_refused(wide, orjson.loads(wide))


# -- the routes ----------------------------------------------------------------------------

@pytest.mark.parametrize("fast", [True, False])
@pytest.mark.parametrize("levels", [MAX_DEPTH, 600, 1_100, 5_000])
def test_predict_refuses_a_deep_body(app_client: TestClient, served: Served, fast: bool,
                                     levels: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(state_of(app_client).settings, "fast_predict", fast)
    r = app_client.post("/predict", content=predict_body(levels),
                        headers={**served.headers(Role.predict), **JSON})
    deep(error(r, 422, "bad_request", "body"))


@pytest.mark.parametrize("levels", [1_100, 5_000])
@pytest.mark.parametrize(("path", "role"), [("/predict/batch", Role.predict),
                                            ("/events", Role.ingest),
                                            ("/recommend", Role.predict)])
def test_every_json_route_refuses_a_body_its_parser_cannot_read(
        app_client: TestClient, served: Served, path: str, role: Role, levels: int) -> None:
    body = f'{{"customer_ids": ["C1"], "x": {nested(levels)}}}'.encode()
    deep(error(app_client.post(path, content=body, headers={**served.headers(role), **JSON}),
               422, "bad_request", "body"))


def test_the_key_is_checked_before_the_depth(app_client: TestClient, served: Served) -> None:
    r = app_client.post("/events", content=predict_body(5_000),
                        headers={"X-API-Key": "nope", **JSON})
    error(r, 401, "invalid_key")


def test_events_take_properties_up_to_the_limit(app_client: TestClient, served: Served) -> None:
    h = {**served.headers(Role.ingest), **JSON}
    ok = app_client.post("/events", content=event_body(served, "at", MAX_DEPTH), headers=h)
    assert ok.status_code == 200 and ok.json()["inserted"] == 1, ok.text
    over = app_client.post("/events", content=event_body(served, "over", MAX_DEPTH + 1),
                           headers=h)
    deep(error(over, 422, "bad_request", "body"))


# -- numbers and bytes the parser refuses --------------------------------------------------

@pytest.mark.parametrize(("path", "role"), [("/predict", Role.predict), ("/events", Role.ingest)])
def test_a_number_too_long_to_convert_is_named_with_its_place(
        app_client: TestClient, served: Served, path: str, role: Role) -> None:
    digits = sys.get_int_max_str_digits() + 700
    body = b'{"customer_id": "C1",\n "as_of": ' + b"7" * digits + b"}"
    got = error(app_client.post(path, content=body, headers={**served.headers(role), **JSON}),
                422, "bad_request", "body")
    problem = f"a number with more than {sys.get_int_max_str_digits():,} digits"
    assert got["message"].startswith(f"body: {problem}"), got["message"]
    assert got["message"].endswith("at line 2, column 11 (character 32)"), got["message"]
    assert len(got["errors"]) == 1 and got["errors"][0]["field"] == "body"
    assert got["errors"][0]["message"] == got["message"].removeprefix("body: ")


@pytest.mark.parametrize("decoy", [
    'a, 7',  # text with a comma: the regex it was found by read a value start
    '\\", 7',  # after an escaped quote: still inside the string
    ':[7',
])
def test_digits_in_a_string_are_not_the_number_named(
        app_client: TestClient, served: Served, decoy: str) -> None:
    """A string whose text looks like the start of a long number (after ", " or ":") was
    named as the number's place: only a number outside strings is one."""
    digits = sys.get_int_max_str_digits() + 1
    long = "7" * digits
    body = (f'{{"customer_id": "C1", "note": "{decoy}{long}",\n "as_of": {long}}}'
            ).encode()
    got = error(app_client.post("/predict", content=body,
                                headers={**served.headers(Role.predict), **JSON}),
                422, "bad_request", "body")
    before = body[:body.rindex(b'"as_of": ') + len(b'"as_of": ')].decode()
    assert got["message"].endswith(f"at line 2, column 11 (character {len(before)})"), \
        got["message"][:200]


def test_the_place_of_a_long_number_skips_strings_and_fractions() -> None:
    limit = 5
    assert long_integer_at('{"a": "1234567", "b": 123456}', limit) == 22
    assert long_integer_at('["\\"123456", 1234567.5, 1e123456, -123456]', limit) == 34
    assert long_integer_at('{"1234567": 12345, "c": [1.0, "x"]}', limit) is None
    assert long_integer_at('[-12345, 123456]', limit) == 9


def test_a_body_that_is_not_utf8_says_where(app_client: TestClient, served: Served) -> None:
    r = app_client.post("/predict", content=b'{"customer_id":\n "C\xe9"}',
                        headers={**served.headers(Role.predict), **JSON})
    got = error(r, 422, "bad_request", "body")
    assert got["message"] == "body: not valid UTF-8 JSON at line 2, column 4 (character 19)"
    assert got["errors"] == [{"field": "body", "message": got["message"][6:]}]
