"""The service's dependencies: the state, and the API key's role check (one dependency per
route: each level of FastAPI's resolution costs on every request)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader

from serving.errors import ForbiddenError, InvalidKeyError, MissingKeyError
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
        return state

    setattr(check, KEY_CHECK, True)
    return check


# The service state, for a key of one of the roles (admin may everything).
Ingester = Annotated[ServiceState, Depends(require(Role.ingest))]
Scorer = Annotated[ServiceState, Depends(require(Role.predict))]
Reader = Annotated[ServiceState, Depends(require(Role.predict, Role.marketer))]
Watcher = Annotated[ServiceState, Depends(require(Role.marketer))]
Admin = Annotated[ServiceState, Depends(require())]


