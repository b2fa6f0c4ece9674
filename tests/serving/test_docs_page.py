"""GET /docs works without internet: Swagger UI's files come from the service itself."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient


def test_the_docs_page_loads_nothing_from_elsewhere(app_client: TestClient) -> None:
    page = app_client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    urls = re.findall(r'(?:src|href|url)\s*[:=]\s*[\'"]([^\'"]+)[\'"]', page.text)
    assert urls and not [u for u in urls if u.startswith(("http:", "https:", "//"))], urls
    for path in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        assert path in page.text
        asset = app_client.get(path)
        assert asset.status_code == 200 and len(asset.content) > 100_000, path
    assert "SwaggerUIBundle" in app_client.get("/docs/assets/swagger-ui-bundle.js").text
    assert "'/openapi.json'" in page.text or '"/openapi.json"' in page.text


def test_only_its_own_files_are_served(app_client: TestClient) -> None:
    for name in ("index.html", "..%2F..%2Fcore.py", "swagger-editor-bundle.js"):
        r = app_client.get(f"/docs/assets/{name}")
        assert r.status_code == 404 and r.json()["code"] == "not_found", name
    assert app_client.get("/redoc").status_code == 404  # ReDoc loads from a CDN: not served
