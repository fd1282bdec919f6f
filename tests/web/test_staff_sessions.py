"""Staff sessions end after 15 minutes idle (a setting) and 12 hours in all, as the
portal's do; under HTTPS the cookie takes the ``__Host-`` prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select, update

from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import StaffSession, StaffUser
from infra.settings import Settings
from tests.conftest import STAFF_PASSWORD, Browser, Office, make_office, some_client_address
from web.app import create_app
from web.cookies import CSRF_COOKIE, STAFF_COOKIE


async def _office_sessions(settings: Settings, office: Office) -> list[StaffSession]:
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        rows = await db.scalars(
            select(StaffSession)
            .join(StaffUser, StaffUser.id == StaffSession.staff_id)
            .where(StaffUser.email == office.email)
        )
        found = list(rows.all())
    await engine.dispose()
    return found


async def _set(settings: Settings, office: Office, **values: datetime) -> None:
    (session,) = await _office_sessions(settings, office)
    engine = make_engine(settings.database_url)
    async with engine.begin() as connection:
        await connection.execute(
            update(StaffSession)
            .where(StaffSession.token_hash == session.token_hash)
            .values(**values)
        )
    await engine.dispose()


def ago(**delta: float) -> datetime:
    return datetime.now(UTC) - timedelta(**delta)


async def test_session_ends_after_15_idle_minutes(settings: Settings, office: Office) -> None:
    assert settings.staff_idle_minutes == 15
    await _set(settings, office, last_seen_at=ago(minutes=15, seconds=5))
    response = await office.browser.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    # Ended on the server: the row is gone, so the cookie opens nothing later either.
    assert await _office_sessions(settings, office) == []
    assert (await office.browser.get("/patients")).headers["location"] == "/login"


async def test_activity_keeps_the_session_open(settings: Settings, office: Office) -> None:
    await _set(settings, office, last_seen_at=ago(minutes=14))
    assert (await office.browser.get("/")).status_code == 200
    (session,) = await _office_sessions(settings, office)
    assert session.last_seen_at is not None and session.last_seen_at > ago(minutes=1)
    # Another 14 minutes after that request: still signed in.
    await _set(settings, office, last_seen_at=ago(minutes=14))
    assert (await office.browser.get("/patients")).status_code == 200


async def test_session_ends_12_hours_after_log_in_however_busy(
    settings: Settings, office: Office
) -> None:
    await _set(settings, office, expires_at=ago(seconds=1), last_seen_at=ago(seconds=40))
    assert (await office.browser.get("/")).headers["location"] == "/login"
    assert await _office_sessions(settings, office) == []


@asynccontextmanager
async def app_with(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


async def test_idle_minutes_are_a_setting(settings: Settings) -> None:
    shorter = settings.model_copy(update={"staff_idle_minutes": 2})
    async with app_with(shorter) as app:
        office = await make_office(app, shorter)
        await _set(shorter, office, last_seen_at=ago(minutes=1, seconds=30))
        assert (await office.browser.get("/")).status_code == 200
        await _set(shorter, office, last_seen_at=ago(minutes=2, seconds=5))
        assert (await office.browser.get("/")).headers["location"] == "/login"
        await office.aclose()


async def test_cookie_takes_the_host_prefix_under_https(settings: Settings) -> None:
    https = settings.model_copy(update={"public_url": "https://portal.test"})
    async with app_with(https) as app:
        office = await make_office(app, https)  # signs in a first browser too
        await office.browser.aclose()
        transport = httpx.ASGITransport(app=app, client=(some_client_address(), 50000))
        browser = Browser(transport=transport, base_url="https://portal.test")
        # The CSRF cookie takes the prefix too (see web.csrf): a page sets it so.
        async with httpx.AsyncClient(transport=transport, base_url="https://portal.test") as new:
            page = await new.get("/login")
        assert page.headers["set-cookie"].startswith(f"__Host-{CSRF_COOKIE}=")
        assert "secure" in page.headers["set-cookie"].lower()
        login = await browser.post(
            "/login", data={"email": office.email, "password": STAFF_PASSWORD}
        )
        assert login.status_code == 303
        cookie = next(
            value
            for value in login.headers.get_list("set-cookie")
            if value.startswith(f"__Host-{STAFF_COOKIE}=")
        )
        attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert {"secure", "path", "httponly"} <= attributes
        assert "domain" not in attributes
        assert "path=/" in cookie.lower().replace(" ", "")
        assert (await browser.get("/")).status_code == 200

        # The unprefixed name, which a sibling subdomain could set, is not read.
        token = browser.cookies[f"__Host-{STAFF_COOKIE}"]
        planted = httpx.AsyncClient(
            transport=transport, base_url="https://portal.test", cookies={STAFF_COOKIE: token}
        )
        assert (await planted.get("/")).headers["location"] == "/login"

        logout = await browser.post("/logout")
        assert logout.status_code == 303
        assert any(
            value.startswith(f'__Host-{STAFF_COOKIE}=""') or "Max-Age=0" in value
            for value in logout.headers.get_list("set-cookie")
        )
        assert (await browser.get("/")).headers["location"] == "/login"
        engine = make_engine(https.database_url)
        async with make_sessionmaker(engine)() as db:
            remaining = await db.scalar(
                select(func.count())
                .select_from(StaffSession)
                .join(StaffUser, StaffUser.id == StaffSession.staff_id)
                .where(StaffUser.email == office.email)
            )
        await engine.dispose()
        # make_office's session, and nothing else.
        assert remaining == 1
        await office.api.aclose()
        await planted.aclose()
        await browser.aclose()
