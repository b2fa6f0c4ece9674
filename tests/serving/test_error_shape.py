"""Every 422 lists its problems in ``errors`` (the service's own checks had none, where the
schema's had), the trigger dry run checks its times and ids as /predict does and documents its
answer, and the request timeout answers in the service's error shape."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from serving import trigger_routes
from serving.errors import BadRequestError, NotFoundError
from serving.keys import Role
from serving.schemas import ErrorOut
from serving.trigger_dry_run import DryRun, dry_run
from tests.serving.conftest import AS_OF, Served, app_of
from tests.serving.test_app import customers, error

LATER = "9999-12-31T23:59:59Z"  # 8,000 years after the service's clock


def listed(got: dict[str, Any], field: str) -> None:
    """The one problem, in ``errors`` too, named apart from its message."""
    ErrorOut.model_validate(got)
    assert got["errors"] == [{"field": field, "message": got["message"].removeprefix(
        f"{field}: ")}], got


def test_a_service_check_lists_its_one_problem() -> None:
    named = BadRequestError("as_of: later than the clock", "as_of")
    assert named.errors == [{"field": "as_of", "message": "later than the clock"}]
    unnamed = BadRequestError("nothing to score")
    assert unnamed.field is None
    assert unnamed.errors == [{"field": "body", "message": "nothing to score"}]
    given = [{"field": "a", "message": "x"}, {"field": "b", "message": "y"}]
    assert BadRequestError("a: x", "a", given).errors == given
    assert NotFoundError("no such rule", "rule").errors is None  # only 422s list problems


@pytest.mark.parametrize(("method", "path", "params", "role", "field"), [
    ("post", "/predict", {"as_of": "2025-12-01T00:00:00Z"}, Role.predict, "as_of"),
    ("get", "/triggers/firings", {"bogus": "1"}, Role.marketer, "bogus"),
    ("get", "/triggers/firings", {"rule": "no_such_rule"}, Role.marketer, "rule"),
    ("get", "/triggers/test", {"rule": "quiet_14_days", "as_of": LATER}, Role.marketer, "as_of"),
])
def test_the_services_own_422s_list_errors(app_client: TestClient, served: Served, method: str,
                                            path: str, params: dict[str, str], role: Role,
                                            field: str) -> None:
    who = customers(served, 1)[0]
    h = served.headers(role)
    if method == "post":
        r = app_client.post(path, json={"customer_id": who, **params}, headers=h)
    else:
        r = app_client.get(path, params={"customer_id": who, **params} if "test" in path
                           else params, headers=h)
    listed(error(r, 422, "bad_request", field), field)


def test_the_422_schema_is_the_error_shape(app_client: TestClient) -> None:
    schema = app_client.get("/openapi.json").json()
    errors = schema["components"]["schemas"]["ErrorOut"]["properties"]["errors"]
    assert "every 422" in errors["description"]
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            answer = operation["responses"].get("422")
            if answer is not None:
                assert answer["content"]["application/json"]["schema"] == {
                    "$ref": "#/components/schemas/ErrorOut"}, (method, path)


# -- the trigger dry run -------------------------------------------------------------------

def test_the_dry_run_refuses_a_time_after_the_clock(app_client: TestClient,
                                                    served: Served) -> None:
    """It answered would_fire true: the customer inactive for 8,000 years."""
    h = served.headers(Role.marketer)
    base = {"rule": "quiet_14_days", "customer_id": customers(served, 1)[0]}
    got = error(app_client.get("/triggers/test", params={**base, "as_of": LATER}, headers=h),
                422, "bad_request", "as_of")
    assert "after the service's clock" in got["message"]
    since = error(app_client.get("/triggers/test", params={**base, "since": LATER}, headers=h),
                  422, "bad_request", "since")
    assert since["message"] == "since must be before as_of"
    assert app_client.get("/triggers/test", params={**base, "as_of": AS_OF.isoformat()},
                          headers=h).status_code == 200


def _same_types(got: Any, expected: Any, where: str = "") -> None:
    """Equal, with the same JSON types (1 is not 1.0) and keys in the same order."""
    assert type(got) is type(expected) or (isinstance(got, float) and isinstance(expected, float)
                                           ), (where, got, expected)
    if isinstance(expected, dict):
        assert list(got) == list(expected), where
        for key in expected:
            _same_types(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(got) == len(expected), where
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _same_types(g, e, f"{where}[{i}]")
    else:
        assert got == expected, where


@pytest.mark.parametrize("rule", ["quiet_14_days", "entered_decision", "churn_risk_high",
                                  "loyalty_offer_eligible"])
def test_the_dry_run_answer_has_a_schema_and_is_the_dry_runs_dict(
        app_client: TestClient, served: Served, rule: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[DryRun] = []
    original = dry_run

    def recorded(*args: Any) -> DryRun:
        ran.append(original(*args))
        return ran[-1]

    monkeypatch.setattr(trigger_routes, "dry_run", recorded)
    who = customers(served, 3)[2]
    r = app_client.get("/triggers/test", params={"rule": rule, "customer_id": f" {who}\t"},
                       headers=served.headers(Role.marketer))
    assert r.status_code == 200, r.text  # the id trimmed, as every route's
    _same_types(r.json(), ran[0].to_dict())
    assert r.json()["customer_id"] == who
    schema = app_of(app_client).openapi()["paths"]["/triggers/test"]["get"]
    assert schema["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/DryRunOut"}
    blank = app_client.get("/triggers/test", params={"rule": rule, "customer_id": "  "},
                           headers=served.headers(Role.marketer))
    error(blank, 422, "bad_request", "customer_id")
