"""``/docs`` serves Swagger UI from the app itself, under the same strict CSP as every page:
no CDN, no inline script or style."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import httpx


class References(HTMLParser):
    """Every URL the page makes the browser load, and every inline script."""

    def __init__(self) -> None:
        super().__init__()
        self.loaded: list[str] = []
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "script":
            if found.get("src"):
                self.loaded.append(str(found["src"]))
            else:
                self._in_script = True
        elif tag == "link" and found.get("href"):
            self.loaded.append(str(found["href"]))
        elif tag in ("img", "iframe") and found.get("src"):
            self.loaded.append(str(found["src"]))
        if "style" in found:
            self.inline_scripts += 1  # an inline style is refused by the CSP as well

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


async def test_docs_page_loads_only_its_own_assets(anonymous: httpx.AsyncClient) -> None:
    page = await anonymous.get("/docs")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")

    references = References()
    references.feed(page.text)
    assert references.inline_scripts == 0
    assert references.loaded, "the page loads nothing: no Swagger UI"
    for url in references.loaded:
        assert url.startswith("/") and not url.startswith("//"), url  # same origin
    assert set(references.loaded) == {
        "/docs/assets/favicon.png",
        "/docs/assets/swagger-ui.css",
        "/docs/assets/swagger-ui-bundle.js",
        "/static/swagger-init.js",
    }
    for url in references.loaded:
        asset = await anonymous.get(url)
        assert asset.status_code == 200, url
        assert asset.content, url
        assert "no-store" not in asset.headers.get("cache-control", "")

    bundle = await anonymous.get("/docs/assets/swagger-ui-bundle.js")
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert "SwaggerUIBundle" in bundle.text
    init = await anonymous.get("/static/swagger-init.js")
    assert "SwaggerUIBundle" in init.text and "data-openapi-url" in init.text

    # The page names the schema the init script starts Swagger UI with, and it is there.
    schema_url = re.search(r'data-openapi-url="([^"]+)"', page.text)
    assert schema_url is not None and schema_url.group(1) == "/openapi.json"
    schema = await anonymous.get(schema_url.group(1))
    assert schema.status_code == 200
    assert "/api/v1/patients/{patient_id}" in schema.json()["paths"]


async def test_docs_csp_is_the_strict_one(anonymous: httpx.AsyncClient) -> None:
    for path in ("/docs", "/docs/assets/swagger-ui-bundle.js", "/openapi.json"):
        response = await anonymous.get(path)
        csp = response.headers["content-security-policy"]
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, path
        assert "script-src 'self';" in csp and "style-src 'self';" in csp, path
        assert "http" not in csp, f"{path}: a host outside the app is allowed: {csp}"
    assert "frame-ancestors 'none'" in csp


async def test_docs_serve_no_other_file(anonymous: httpx.AsyncClient) -> None:
    for name in ("redoc.standalone.js", "core.py", "..%2F__init__.py", "%2E%2E/core.py"):
        response = await anonymous.get(f"/docs/assets/{name}")
        assert response.status_code == 404, name
    assert (await anonymous.get("/redoc")).status_code == 404
