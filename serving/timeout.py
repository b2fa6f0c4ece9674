"""BentoML's request timeout, kept in the request's own task.

BentoML's ``TimeoutMiddleware`` runs every request in a second task and wakes the first one
when the response starts and again when it ends: ~70 us a request in process, more on a cold
CPU, where a served prediction's own work is ~300 us. ``InTaskTimeout`` keeps the contract
(no response started within ``traffic.timeout`` seconds: the handler is cancelled and the
client gets a 504, in the service's error shape; once the response has started, no limit)
with ``asyncio.timeout`` in the request's task. ``install`` makes BentoML build its apps with
it: its app factory looks the class up in ``bentoml._internal.server.http.traffic`` each time
it builds one.
"""

from __future__ import annotations

import asyncio

from bentoml._internal.server.http import traffic
from starlette.types import Message, Receive, Scope, Send

from serving.http import error_json

_BENTOML = traffic.TimeoutMiddleware


class InTaskTimeout(_BENTOML):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        deadline = asyncio.timeout(self.timeout)
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            if not started:
                started = True
                if not deadline.expired():  # a handler may have held on past its deadline
                    deadline.reschedule(None)  # answering: BentoML's limit ends here too
            await send(message)

        try:
            async with deadline:
                await self.app(scope, receive, sending)
        except TimeoutError:
            if not deadline.expired() or started:  # the handler's own, or too late for a 504
                raise
            # The service's error shape ({code, message, field}), not BentoML's {"error"}:
            # clients read every error of the API one way.
            # Work a handler handed to a thread cannot be cancelled: a scoring run goes on and
            # publishes its snapshot, an ingest may commit. The message must not say otherwise.
            response = error_json(504, "timeout", f"no answer within {self.timeout} seconds: "
                                  "the request was given up, but work it started may still "
                                  "finish (a scoring run goes on and publishes its snapshot, "
                                  "and asking again answers 409 while it runs; an ingest may "
                                  "be stored: resending it with the same event ids is safe)")
            await response(scope, receive, send)


def install() -> None:
    """BentoML apps built from now on time requests out in the request's own task."""
    traffic.TimeoutMiddleware = InTaskTimeout  # type: ignore[misc]  # the module's class name
