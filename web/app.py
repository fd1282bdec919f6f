"""The FastAPI application: office pages, the patient portal and ``/api/v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, status
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade_async
from infra.settings import Settings, get_settings
from web.deps import NotSignedIn
from web.routes import api_patients, api_practice, office_auth, office_pages
from web.state import AppState

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(settings: Settings | None = None, *, migrate: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if migrate:
            await upgrade_async(settings.database_url)
        engine = make_engine(settings.database_url)
        app.state.app_state = AppState(
            settings=settings, engine=engine, sessions=make_sessionmaker(engine)
        )
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Secure Email",
        summary="Secure email from a dental office to its patients.",
        version="0.1.0",
        lifespan=lifespan,
    )

    api = APIRouter(prefix="/api/v1")
    api.include_router(api_practice.router)
    api.include_router(api_patients.router)
    app.include_router(api)
    app.include_router(office_auth.router)
    app.include_router(office_pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.exception_handler(NotSignedIn)
    async def _to_login(_request: Request, _exc: NotSignedIn) -> Response:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)

    return app
