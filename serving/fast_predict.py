"""POST /predict without FastAPI's per-request machinery.

Personalization systems call /predict in a page's request path. Around its ~0.3 ms of scoring,
FastAPI spent ~0.2 ms a request (more on a CPU that has idled since the last one): dependency
resolution, request and response objects, the content-type parse, the exception and exit-stack
middleware, routing. ``FastPredict`` answers the route's well-formed requests itself with the
route's own parts: the body validated by the route's model (``PredictIn``), the key checked by
the same ring and role, the same answer (``answers.predict_answer``) as the same JSON, and a
service error rendered by the same handler. Anything else (no declared length, another content
type, JSON or a body the model rejects, a body that may give a key twice or is nested too
deep, a key that does not pass) goes to FastAPI as it came, the body replayed, so each error
keeps its one source. It sits inside the metrics and body-limit middleware, which see the
request as the route's. The prediction's own bookkeeping (probability metrics, the drift
window's rows: ~30 us) runs once the answer is sent.
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.answers import predict_answer
from serving.deps import bearer, gate_principal
from serving.errors import ServiceError, TooLargeError
from serving.http import FastJSON, route_path, service_error_response
from serving.json_keys import may_be_refused
from serving.keys import Principal, Role
from serving.schemas import PredictIn
from serving.state import ServiceState

PATH = "/predict"
ROLES = frozenset({Role.predict})


class FastPredict:
    def __init__(self, app: ASGIApp, state: ServiceState, route: APIRoute) -> None:
        self.app, self.state, self.route = app, state, route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST" or route_path(scope) != PATH
                or not self.state.settings.fast_predict):
            await self.app(scope, receive, send)
            return
        key, declared = _headers(scope)
        # A query string is FastAPI's to judge: the route takes none, and a misplaced ?as_of=
        # must be refused, not ignored.
        if key is None or not declared or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        try:
            body = await _body(receive)
        except TooLargeError:  # FastAPI's to refuse, after the key check: the read raises again
            await self.app(scope, receive, send)
            return
        if body is None:  # the client left while sending: nobody to answer
            return
        request = self._request(key, body, gate_principal(scope))
        if request is None:
            await self.app(scope, _replay(body, receive), send)
            return
        scope["route"] = self.route  # as the router would have: metrics label the route
        later: list[Callable[[], None]] = []
        response: JSONResponse
        try:
            response = FastJSON(predict_answer(self.state, request, later))
        except ServiceError as exc:
            response = service_error_response(exc)
        await response(scope, receive, send)
        for record in later:  # the answer is out: its metrics and drift rows are not its wait
            record()

    def _request(self, key: str, body: bytes, who: Principal | None) -> PredictIn | None:
        """The validated request of a key that may predict; None for FastAPI to answer.
        ``who``: the key's holder, when ``KeyGate`` has found it already."""
        who = who or self.state.keys.authenticate(key)
        if who is None or not who.may(ROLES):
            return None
        try:
            doc = orjson.loads(body)
            # orjson keeps the last of a key given twice, and reads ~1,000 levels where the
            # service allows 64: FastAPI's route refuses such a body.
            return None if may_be_refused(body, doc) else PredictIn.model_validate(doc)
        except (orjson.JSONDecodeError, ValidationError):
            return None


def _headers(scope: Scope) -> tuple[str | None, bool]:
    """The API key (the first X-API-Key, else a Bearer token, as ``serving.deps.key_in`` reads
    it) and whether the body is declared JSON of a declared length, not encoded; chunked
    bodies, other types and encodings are FastAPI's to read (and refuse:
    ``serving.deps.check_body_headers``)."""
    key: str | None = None
    authorization: str | None = None
    declared = json = False
    plain = True
    for name, value in scope["headers"]:
        if name == b"x-api-key":
            key = value.decode("latin-1") if key is None else key
        elif name == b"authorization" and authorization is None:
            authorization = value.decode("latin-1")
        elif name == b"content-length":
            declared = True
        elif name == b"content-type":
            json = value.split(b";", 1)[0].strip().lower() == b"application/json"
        elif name == b"content-encoding":
            plain = value.strip().lower() == b"identity"
    return key if key is not None else bearer(authorization), declared and json and plain


async def _body(receive: Receive) -> bytes | None:
    """The whole body; None when the client disconnects first."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives the already-read body once, then the connection's own messages."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
