"""The FastAPI application: office pages, the patient portal and ``/api/v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Request, status
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from temporalio.client import Client

from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import encryption_keys, portal_keys
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import require_migrated
from infra.encrypted_objects import secure_object_store
from infra.settings import Settings, get_settings
from web.body_limits import BodyLimits
from web.csrf import MultipartCsrf, csrf_protect
from web.deps import MustChangePassword, NotOfficeStaff, NotSignedIn
from web.metrics import instrument
from web.portal_sessions import PortalSignedOut
from web.routes import (
    alerts,
    api_patients,
    api_practice,
    api_secure_emails,
    audit,
    chart,
    codec,
    docs,
    email_client,
    health,
    office_auth,
    office_pages,
    office_secure_emails,
    operator,
    portal,
    portal_messages,
    staff,
    tokens,
)
from web.security_headers import SecurityHeaders
from web.state import AppState
from web.templating import render

STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(
    settings: Settings | None = None,
    *,
    temporal: Client | None = None,
) -> FastAPI:
    """The app; ``temporal`` lets tests hand in a client of their own test server.

    It never migrates (``securemail migrate`` does, once per release): its lifespan
    refuses to start on a database that is behind, naming that command."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        configure_field_encryption(encryption_keys(settings))
        engine = make_engine(settings.database_url)
        try:
            await require_migrated(engine)
        except BaseException:
            await engine.dispose()
            raise
        app.state.app_state = AppState(
            settings=settings,
            engine=engine,
            sessions=make_sessionmaker(engine),
            store=secure_object_store(settings),
            portal_keys=portal_keys(settings),
            _temporal=temporal,
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
        dependencies=[Depends(csrf_protect)],
        # /docs is web.routes.docs: packaged assets under the strict CSP, no CDN.
        docs_url=None,
        redoc_url=None,
    )

    api = APIRouter(prefix="/api/v1")
    api.include_router(api_practice.router)
    api.include_router(api_patients.router)
    api.include_router(api_secure_emails.router)
    api.include_router(audit.api_router)
    api.include_router(alerts.api_router)
    api.include_router(chart.api_router)
    api.include_router(staff.api_router)
    api.include_router(tokens.api_router)
    app.include_router(api)
    app.include_router(office_auth.router)
    app.include_router(office_pages.router)
    app.include_router(office_secure_emails.router)
    app.include_router(portal.router)
    app.include_router(portal_messages.router)
    app.include_router(codec.router)
    app.include_router(operator.router)
    app.include_router(audit.page_router)
    app.include_router(alerts.page_router)
    app.include_router(email_client.router)
    app.include_router(chart.page_router)
    app.include_router(staff.page_router)
    app.include_router(tokens.page_router)
    app.include_router(health.router)
    app.include_router(docs.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Innermost first: a body is counted (BodyLimits) before a multipart form's token
    # is checked on its first part (MultipartCsrf), and both before anything parses it.
    app.add_middleware(MultipartCsrf)
    app.add_middleware(BodyLimits)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    instrument(app)

    @app.exception_handler(NotSignedIn)
    async def _to_login(_request: Request, _exc: NotSignedIn) -> Response:
        return RedirectResponse("/login", status_code=status.HTTP_303_SEE_OTHER)

    @app.exception_handler(MustChangePassword)
    async def _to_change_password(_request: Request, _exc: MustChangePassword) -> Response:
        return RedirectResponse("/change-password", status_code=status.HTTP_303_SEE_OTHER)

    @app.exception_handler(NotOfficeStaff)
    async def _to_operator_page(_request: Request, _exc: NotOfficeStaff) -> Response:
        return RedirectResponse("/operator", status_code=status.HTTP_303_SEE_OTHER)

    @app.exception_handler(PortalSignedOut)
    async def _portal_signed_out(request: Request, _exc: PortalSignedOut) -> Response:
        return render(
            request,
            "portal/signed_out.html",
            {"reason": "Your secure session has ended."},
            status_code=status.HTTP_401_UNAUTHORIZED,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        # The API answers JSON; people in a browser get a page in words.
        if request.url.path.startswith("/api/") or not isinstance(exc.detail, str):
            return await http_exception_handler(request, exc)
        return render(
            request,
            "error.html",
            {"message": exc.detail},
            status_code=exc.status_code,
        )

    return app
