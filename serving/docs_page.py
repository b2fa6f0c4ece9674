"""GET /docs: Swagger UI served from the installed ``swagger-ui-py`` package.

FastAPI's own page loads Swagger UI from a CDN (cdn.jsdelivr.net), so on a machine without
internet, where a self-hosted service often runs, the API reference was a blank page. The two
files it needs are served from here instead, with the favicon of the dashboard's folder left out
(no request leaves the service).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse

from serving.errors import NotFoundError

ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css"}
# The files change only with the package: a day's caching spares a reload ~1.6 MB.
CACHE = {"Cache-Control": "public, max-age=86400"}
NO_ICON = "data:,"  # an empty favicon: the default would be fetched from fastapi.tiangolo.com


def static_folder() -> Path:
    """swagger-ui-py's static files, found without importing the package (its import loads
    adapters for a dozen web frameworks)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the swagger-ui-py package is not installed (pyproject dependency)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def install_docs(app: FastAPI) -> None:
    """/docs and its two assets; the app must be made with docs_url=None, redoc_url=None."""
    folder = static_folder()

    @app.get("/docs", include_in_schema=False)
    async def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")  # /v1 under BentoML
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} API",
            swagger_js_url=f"{root}/docs/assets/swagger-ui-bundle.js",
            swagger_css_url=f"{root}/docs/assets/swagger-ui.css", swagger_favicon_url=NO_ICON)

    @app.get("/docs/assets/{name}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise NotFoundError(f"no docs asset {name!r}; there are {sorted(ASSETS)}")
        return FileResponse(folder / name, media_type=ASSETS[name], headers=CACHE)
