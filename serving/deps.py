"""The service's dependencies: the state, and the API key's role check (one dependency per
route: each level of FastAPI's resolution costs on every request)."""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from fastapi.security import APIKeyHeader

from serving.errors import (
    BadRequestError,
    ForbiddenError,
    InvalidKeyError,
    MissingKeyError,
    UnsupportedMediaError,
)
from serving.http import KEY_CHECK
from serving.json_keys import check_structure
from serving.keys import Principal, Role
from serving.schemas import ErrorOut
from serving.state import ServiceState

API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False,
                       description="An API key from `journey keys create` (or send it as "
                       "`Authorization: Bearer <key>`).")
# Roles a route admits besides those its dependency names, by route path: the scraper's
# monitor key reads /metrics, declared with the marketer's ``Watcher`` (serving/routes.py).
GRANTED: dict[str, frozenset[Role]] = {"/metrics": frozenset({Role.monitor})}
# What a route that checks a key can answer besides its own; one with a JSON body also 413
# and 415. Routes without a key document only their own answers (/healthz: none).
KEYED_ERRORS: dict[int | str, dict[str, Any]] = {
    s: {"model": ErrorOut} for s in (401, 403, 422, 503)
}
BODY_ERRORS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorOut} for s in (413, 415)}


def documented_errors(path: str, handler: Any) -> dict[int | str, dict[str, Any]]:
    """The shared errors a route documents, by what it takes: a key, a body."""
    dependant = get_dependant(path=path, call=handler)
    if not checks_key(dependant):
        return {}
    return {**KEYED_ERRORS, **(BODY_ERRORS if dependant.body_params else {})}


def checks_key(dependant: Dependant) -> bool:
    return any(getattr(d.call, KEY_CHECK, False) or checks_key(d)
               for d in dependant.dependencies)


def without_default_422(schema: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI schema without FastAPI's own 422 (``HTTPValidationError``), which it adds
    to every operation with a parameter that documents no 422 itself: those are the keyless
    routes, whose path parameters take any text, so none answers 422 (and none in that
    shape: every error is an ``ErrorOut``)."""
    default = "#/components/schemas/HTTPValidationError"
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            answer = operation.get("responses", {}).get("422", {})
            if answer.get("content", {}).get("application/json", {}).get("schema", {}).get(
                    "$ref") == default:
                del operation["responses"]["422"]
    schemas = schema.get("components", {}).get("schemas", {})
    if default not in json.dumps(schema.get("paths", {})):
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
    return schema


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


def check_body_headers(request: Request) -> bool:
    """Refuse a body the route cannot read as JSON, by its headers: a form-encoded body
    (curl's default) or a compressed one were answered 422 about its content. After the key
    check, as the body's other faults are. True when the route has read a JSON body."""
    route = request.scope.get("route")
    if not (isinstance(route, APIRoute) and route.body_field is not None):
        return False
    headers = request.headers
    if headers.get("content-length", "0").strip() == "0" and "transfer-encoding" not in headers:
        # No body (HTTP/1.1: neither header, or a zero length, e.g. `curl -X POST` with no
        # data): a route whose body is optional takes none; one that needs it says so.
        return False
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedMediaError(f"Content-Encoding {encoding} is not supported; send the "
                                    "body uncompressed", "Content-Encoding")
    given = headers.get("content-type")
    media = (given or "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not (media.startswith("application/")
                                            and media.endswith("+json")):
        said = f"not {given}" if given else "and the request has none"
        raise UnsupportedMediaError(f"Content-Type must be application/json, {said}",
                                    "Content-Type")
    return True


# Where ``KeyGate`` leaves the holder it found in the request's ASGI scope state: the route's
# check and the /predict fast path read it instead of hashing the key a second time.
PRINCIPAL = "journey.principal"


def gate_principal(scope: Mapping[str, Any]) -> Principal | None:
    """The key holder ``KeyGate`` authenticated for this request, if it did."""
    found: Principal | None = scope.get("state", {}).get(PRINCIPAL)
    return found


def bearer(authorization: str | None) -> str | None:
    """The key of an ``Authorization: Bearer <key>`` header (what Prometheus and most HTTP
    clients send for a token), else None."""
    if authorization is None:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def key_in(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    """The request's API key from its raw ASGI headers: the first X-API-Key, as the route's
    own check reads it, else an Authorization Bearer token."""
    authorization: str | None = None
    for name, value in headers:
        if name == b"x-api-key":
            return value.decode("latin-1")
        if name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
    return bearer(authorization)


def authenticate(state: ServiceState, key: str | None) -> Principal:
    """The key's holder, or the error to answer: the key file cannot be read (503), no key,
    or one the file does not hold (401). Both the route's check and ``KeyGate`` (which
    answers before the body is read) ask here, so they answer alike."""
    state.keys.check()
    if not key:
        raise MissingKeyError("this route needs an API key in the X-API-Key header (or as "
                              "Authorization: Bearer)")
    who = state.keys.authenticate(key)
    if who is None:
        raise InvalidKeyError("the API key is not valid")
    return who


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, ServiceState]]:
    """A dependency that checks the key's role and gives the service state (one dependency
    per route: each level of FastAPI's resolution costs on every request)."""
    allowed = frozenset(roles)

    async def check(request: Request,
                    key: Annotated[str | None, Depends(API_KEY)]) -> ServiceState:
        state: ServiceState = request.app.state.journey
        who = gate_principal(request.scope) or authenticate(
            state, key if key is not None else bearer(request.headers.get("authorization")))
        if not who.may(allowed) and not who.may(_granted(request)):
            wanted = allowed | _granted(request) | {Role.admin}
            needed = ", ".join(sorted(r.value for r in wanted))
            raise ForbiddenError(
                f"key {who.name!r} has role {who.role.value}; this route needs one of: {needed}")
        check_query(request)
        if check_body_headers(request):
            # The framework's parser kept the last of a key given twice, and read nesting
            # deep enough to exhaust the stack of whatever walks it next: refuse the body.
            check_structure(await request.body())
        return state

    setattr(check, KEY_CHECK, True)
    return check


def _granted(request: Request) -> frozenset[Role]:
    return GRANTED.get(getattr(request.scope.get("route"), "path", ""), frozenset())


# The service state, for a key of one of the roles (admin may everything).
Ingester = Annotated[ServiceState, Depends(require(Role.ingest))]
Scorer = Annotated[ServiceState, Depends(require(Role.predict))]
Reader = Annotated[ServiceState, Depends(require(Role.predict, Role.marketer))]
Watcher = Annotated[ServiceState, Depends(require(Role.marketer))]
Admin = Annotated[ServiceState, Depends(require())]


