"""The service's dependencies: the state, and the API key's role check (one dependency per
route: each level of FastAPI's resolution costs on every request)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from serving.errors import BadRequestError, ForbiddenError, InvalidKeyError, MissingKeyError
from serving.http import KEY_CHECK
from serving.keys import Role
from serving.schemas import ErrorOut
from serving.state import ServiceState

API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False,
                       description="An API key from `journey keys create`.")
ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorOut} for s in (401, 403, 413, 422, 503)
}


def not_found(what: str) -> dict[int | str, dict[str, Any]]:
    """The 404 of a route that has one (clients and the schema tests rely on the list)."""
    return {404: {"model": ErrorOut, "description": what}}


async def get_state(request: Request) -> ServiceState:
    state: ServiceState = request.app.state.journey
    return state


StateDep = Annotated[ServiceState, Depends(get_state)]


OPEN_QUERY = "_journey_open_query"
_DECLARED: dict[int, frozenset[str] | None] = {}


def open_query(endpoint: Any) -> Any:
    """Mark a route that reads free-form query parameters itself (segment filters: any
    dimension name) and refuses unknown ones there."""
    setattr(endpoint, OPEN_QUERY, True)
    return endpoint


def _declared(route: object) -> frozenset[str] | None:
    """The query parameters a route declares, read once per route (None: any)."""
    key = id(route)
    if key not in _DECLARED:
        if not isinstance(route, APIRoute) or getattr(route.endpoint, OPEN_QUERY, False):
            _DECLARED[key] = None
        else:
            _DECLARED[key] = frozenset(_query_names(route.dependant))
    return _DECLARED[key]


def _query_names(dependant: Dependant) -> set[str]:
    names = {p.alias for p in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


def check_query(request: Request) -> None:
    """Refuse a query parameter the route does not take: a typo (``?statuss=dead``) would
    otherwise be ignored and the answer look like the one asked for. After the key check, so
    a caller without a valid key learns nothing of the route."""
    if not request.scope.get("query_string"):
        return
    allowed = _declared(request.scope.get("route"))
    if allowed is None:
        return
    for name in request.query_params:
        if name not in allowed:
            takes = ", ".join(sorted(allowed)) or "no query parameters"
            raise BadRequestError(f"unknown query parameter {name!r}; this route takes {takes}",
                                  name)


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, ServiceState]]:
    """A dependency that checks the key's role and gives the service state (one dependency
    per route: each level of FastAPI's resolution costs on every request)."""
    allowed = frozenset(roles)

    async def check(request: Request,
                    key: Annotated[str | None, Depends(API_KEY)]) -> ServiceState:
        state: ServiceState = request.app.state.journey
        if not key:
            raise MissingKeyError("this route needs an API key in the X-API-Key header")
        who = state.keys.authenticate(key)
        if who is None:
            raise InvalidKeyError("the API key is not valid")
        if not who.may(allowed):
            needed = ", ".join(sorted(r.value for r in allowed | {Role.admin}))
            raise ForbiddenError(
                f"key {who.name!r} has role {who.role.value}; this route needs one of: {needed}")
        check_query(request)
        return state

    setattr(check, KEY_CHECK, True)
    return check


# The service state, for a key of one of the roles (admin may everything).
Ingester = Annotated[ServiceState, Depends(require(Role.ingest))]
Scorer = Annotated[ServiceState, Depends(require(Role.predict))]
Reader = Annotated[ServiceState, Depends(require(Role.predict, Role.marketer))]
Watcher = Annotated[ServiceState, Depends(require(Role.marketer))]
Admin = Annotated[ServiceState, Depends(require())]


