"""Routes declared at module level, registered on the app itself.

FastAPI 0.165's ``include_router`` adds an included router to the app as one nested route,
not as its routes. The service needs its routes flat on the app: ``serving.app`` moves the hot
ones to the front, and ``/predict``'s fast path holds its route object. So each routes module
declares its handlers on a ``RouteTable`` with the same decorators, and ``install`` adds them
with ``app.add_api_route`` - exactly what ``@app.get`` does."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import FastAPI

Handler = TypeVar("Handler", bound=Callable[..., Any])
Responses = dict[int | str, dict[str, Any]]


@dataclass
class RouteTable:
    routes: list[tuple[str, Callable[..., Any], str, dict[str, Any]]] = field(
        default_factory=list)

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add(path, "GET", options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        return self._add(path, "POST", options)

    def _add(self, path: str, method: str,
             options: dict[str, Any]) -> Callable[[Handler], Handler]:
        def declare(handler: Handler) -> Handler:
            self.routes.append((path, handler, method, options))
            return handler
        return declare

    def install(self, app: FastAPI,
                shared: Callable[[str, Callable[..., Any]], Responses] | None = None) -> None:
        """``shared``: the errors a route documents besides its own, by its path and handler
        (its own ``responses`` win)."""
        for path, handler, method, options in self.routes:
            responses = {**(shared(path, handler) if shared else {}),
                         **options.get("responses", {})}
            app.add_api_route(path, handler, methods=[method],
                              **{**options, "responses": responses})
