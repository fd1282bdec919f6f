"""The FastAPI application: office pages, the patient portal and ``/api/v1``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI
from fastapi.staticfiles import StaticFiles
from temporalio.client import Client

from infra.audit_chain import keep_linking
from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import encryption_keys, portal_keys
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import require_migrated
from infra.objects.encrypted import secure_object_store
from infra.settings import Settings, get_settings
from web import api, errors, office, ops, portal, webhooks
from web.api import docs
from web.body_limits import BodyLimits
from web.csrf import MultipartCsrf, csrf_protect
from web.metrics import instrument
from web.security_headers import SecurityHeaders
from web.state import AppState
from web.statement_counts import count_statements_if_asked

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
            async with keep_linking(engine):
                yield
        finally:
            await engine.dispose()

    app = FastAPI(
        title="Secure Email",
        summary="Secure email from a dental office to its patients.",
        version="0.1.0",
        lifespan=lifespan,
        dependencies=[Depends(csrf_protect)],
        # /docs is web.api.docs: packaged assets under the strict CSP, no CDN.
        docs_url=None,
        redoc_url=None,
    )

    app.include_router(api.router)
    app.include_router(office.router)
    app.include_router(portal.router)
    app.include_router(ops.router)
    app.include_router(docs.router)
    app.include_router(webhooks.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # Innermost first: a body is counted (BodyLimits) before a multipart form's token
    # is checked on its first part (MultipartCsrf), and both before anything parses it.
    app.add_middleware(MultipartCsrf)
    app.add_middleware(BodyLimits)
    app.add_middleware(SecurityHeaders, hsts=settings.secure_cookies)
    instrument(app)
    count_statements_if_asked(app)

    errors.install(app)

    return app
