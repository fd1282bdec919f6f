"""``/docs``: the OpenAPI page (Swagger UI) from packaged assets, under the strict CSP.

FastAPI's own page loads Swagger UI from a CDN and starts it with an inline script, which
would need ``'unsafe-inline'`` and a third-party host in the policy. Here the bundle comes
from the ``fastapi-offline`` wheel, served by the app itself, and the start-up script is a
static file (``/static/swagger-init.js``) that reads the schema's URL from the page.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from web.deps import or_404
from web.templating import render

router = APIRouter(include_in_schema=False)

ASSETS_PREFIX = "/docs/assets/"
# Only these files of the wheel are served; nothing else of the package is reachable.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon.png": "image/png",
}
ASSET_NOT_FOUND = "No such file of the API documentation"


def swagger_ui_dir() -> Path:
    return Path(str(files("fastapi_offline") / "static"))


@router.get("/docs")
async def api_docs(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "")
    context = {
        "title": request.app.title,
        "openapi_url": f"{root}{request.app.openapi_url}",
        "assets": f"{root}{ASSETS_PREFIX}",
        "init_script": f"{root}/static/swagger-init.js",
    }
    return render(request, "docs.html", context)


@router.get(ASSETS_PREFIX + "{name}")
async def api_docs_asset(name: str) -> FileResponse:
    media_type = or_404(ASSETS.get(name), ASSET_NOT_FOUND)
    return FileResponse(swagger_ui_dir() / name, media_type=media_type)
