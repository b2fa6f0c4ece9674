"""Routes declared on a RouteTable land flat on the app, in order, with their options."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from serving.app import create_app
from serving.route_table import RouteTable


def test_install_adds_each_route_to_the_app_itself() -> None:
    table = RouteTable()

    @table.get("/a", tags=["x"], summary="A")
    async def a() -> dict[str, str]:
        return {"route": "a"}

    @table.post("/b", status_code=201)
    async def b() -> dict[str, str]:
        return {"route": "b"}

    app = FastAPI()
    table.install(app)
    added = [r for r in app.router.routes if isinstance(r, APIRoute)]
    assert [(r.path, r.methods, r.endpoint) for r in added] == [
        ("/a", {"GET"}, a), ("/b", {"POST"}, b)]
    assert added[0].tags == ["x"] and added[0].summary == "A"
    client = TestClient(app)
    assert client.get("/a").json() == {"route": "a"}
    reply = client.post("/b")
    assert (reply.status_code, reply.json()) == (201, {"route": "b"})
    assert client.get("/b").status_code == 405


def test_the_service_routes_are_flat() -> None:
    # The hot-routes-first order (tests/serving/test_app.py) needs the routes on the app.
    routes = create_app(background=False).router.routes
    api = [r for r in routes if isinstance(r, APIRoute)]
    # Every route the app serves is a route of its own (no nested, included router).
    assert all(type(r).__name__ in {"APIRoute", "Route"} for r in routes)
    assert {"/healthz", "/segments", "/triggers/test", "/backtest", "/drift"} <= {
        r.path for r in api}
