"""Forged forms with planted cookies: the CSRF cookie follows the public URL, not the
scheme the app happens to see, and a form token is bound to the browser's session.

The attacker here controls a sibling subdomain (``evil.portal.test``): it can set a
cookie without ``__Host-`` for the whole parent domain, and it can make the victim's
browser post a form to us. It cannot read our cookies nor compute our server's MAC.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI

from domain.reach import Reach
from infra.db.engine import make_engine, make_sessionmaker
from infra.directory import find_patients
from infra.settings import Settings
from tests.conftest import STAFF_PASSWORD, Office, make_office, some_client_address
from tests.fixtures.rows import portal_session_token
from tests.web.test_sent_box import add_patient, record_sent
from web.app import create_app
from web.cookies import CSRF_COOKIE, PORTAL_COOKIE, STAFF_COOKIE
from web.csrf import CSRF_FIELD

HTTPS = "https://portal.test"
HTTP = "http://portal.test"


@asynccontextmanager
async def app_on(settings: Settings, public_url: str) -> AsyncIterator[tuple[FastAPI, Settings]]:
    configured = settings.model_copy(update={"public_url": public_url})
    application = create_app(configured)
    async with application.router.lifespan_context(application):
        yield application, configured


def seen_as_http(app: FastAPI, cookies: dict[str, str] | None = None) -> httpx.AsyncClient:
    """What the app sees of a browser behind a TLS proxy it does not trust: plain http.
    The cookies are what the browser sends (set by hand: over http the jar would keep
    a Secure cookie back)."""
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=(some_client_address(), 50000)),
        base_url=HTTP,
    )
    for name, value in (cookies or {}).items():
        client.cookies.set(name, value)
    return client


def prefixed(public_url: str, name: str) -> str:
    return f"__Host-{name}" if public_url.startswith("https://") else name


def form_token(page: httpx.Response) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def set_cookie_of(response: httpx.Response, name: str) -> str:
    return next(v for v in response.headers.get_list("set-cookie") if v.startswith(f"{name}="))


async def patient_names(settings: Settings, office: Office) -> list[str]:
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        found = await find_patients(db, Reach(office.practice_id))
    await engine.dispose()
    return [patient.name for patient in found]


# (a) The cookie's name and Secure flag come from SECURE_EMAIL_PUBLIC_URL.


async def test_https_public_url_gives_a_host_cookie_to_a_plain_http_request(
    settings: Settings,
) -> None:
    async with app_on(settings, HTTPS) as (app, _), seen_as_http(app) as browser:
        page = await browser.get("/login")
    cookie = set_cookie_of(page, f"__Host-{CSRF_COOKIE}")
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"secure", "path", "httponly"} <= attributes
    assert "domain" not in attributes
    assert not any(v.startswith(f"{CSRF_COOKIE}=") for v in page.headers.get_list("set-cookie"))


async def test_http_public_url_gives_a_plain_cookie(settings: Settings) -> None:
    async with app_on(settings, HTTP) as (app, _), seen_as_http(app) as browser:
        page = await browser.get("/login")
    cookie = set_cookie_of(page, CSRF_COOKIE)
    assert "secure" not in cookie.lower()


# (b) A planted csrf_token cookie with the same value in the form is refused.


@pytest.mark.parametrize("public_url", [HTTPS, HTTP])
async def test_planted_cookie_with_the_same_value_in_the_form_is_refused(
    settings: Settings, public_url: str
) -> None:
    async with app_on(settings, public_url) as (app, configured):
        office = await make_office(app, configured)
        victim = office.browser.cookies[prefixed(public_url, STAFF_COOKIE)]
        # The victim's session cookie rides along; the attacker's own planted token beside it.
        planted = {prefixed(public_url, STAFF_COOKIE): victim, CSRF_COOKIE: "attacker-chosen"}
        async with seen_as_http(app, planted) as forged:
            added = await forged.post(
                "/patients",
                data={CSRF_FIELD: "attacker-chosen", "name": "Mallory", "email": "m@example.com"},
            )
            logged_in = await forged.post(
                "/login",
                data={CSRF_FIELD: "attacker-chosen", "email": office.email, "password": "x" * 12},
            )
        assert added.status_code == 403, added.text
        assert "did not come from this site" in added.text
        assert logged_in.status_code == 403
        assert await patient_names(configured, office) == []
        await office.aclose()


async def test_a_token_the_server_issued_elsewhere_is_refused_with_a_planted_cookie(
    settings: Settings,
) -> None:
    """The attacker loads our log-in page themselves: a real (cookie, token) pair of their
    own browser. Planted beside the victim's session it opens nothing."""
    async with app_on(settings, HTTP) as (app, configured):
        office = await make_office(app, configured)
        async with seen_as_http(app) as attacker:
            page = await attacker.get("/login")
            pair = (attacker.cookies[CSRF_COOKIE], form_token(page))
        victim = office.browser.cookies[STAFF_COOKIE]
        async with seen_as_http(app, {STAFF_COOKIE: victim, CSRF_COOKIE: pair[0]}) as forged:
            added = await forged.post(
                "/patients", data={CSRF_FIELD: pair[1], "name": "Mallory", "email": "m@x.example"}
            )
        assert added.status_code == 403
        assert await patient_names(configured, office) == []
        await office.aclose()


# (c) A token minted for one session is refused in another.


async def test_token_of_session_a_is_refused_in_session_b(settings: Settings) -> None:
    async with app_on(settings, HTTP) as (app, configured):
        a = await make_office(app, configured)
        b = await make_office(app, configured)
        page = await a.browser.get("/patients")
        token_a, nonce_a = form_token(page), a.browser.cookies[CSRF_COOKIE]
        # Session B's cookie with everything else of A's browser: the token is A's alone.
        cookies = {STAFF_COOKIE: b.browser.cookies[STAFF_COOKIE], CSRF_COOKIE: nonce_a}
        async with seen_as_http(app, cookies) as b_browser:
            added = await b_browser.post(
                "/patients", data={CSRF_FIELD: token_a, "name": "Mallory", "email": "m@x.example"}
            )
        assert added.status_code == 403
        assert await patient_names(configured, b) == []
        await a.aclose()
        await b.aclose()


async def test_token_shown_before_a_portal_session_is_refused_with_one(
    settings: Settings,
) -> None:
    """A form shown with no portal session is bound to that: once a portal cookie is sent
    (say, planted from a sibling subdomain), the old pair no longer matches."""
    async with app_on(settings, HTTP) as (app, _), seen_as_http(app) as browser:
        page = await browser.get("/login")
        token = form_token(page)
        browser.cookies.set(PORTAL_COOKIE, uuid.uuid4().hex)
        refused = await browser.post(
            "/login", data={CSRF_FIELD: token, "email": "a@x.example", "password": "x" * 12}
        )
    assert refused.status_code == 403


async def test_portal_cookie_follows_the_public_url_and_binds_the_token(
    settings: Settings,
) -> None:
    async with app_on(settings, HTTPS) as (app, configured):
        office = await make_office(app, configured)
        ada = await add_patient(office, "Ada Lovelace")
        sent = await record_sent(configured, office, ada, datetime.now(UTC))
        session_a = await portal_session_token(configured, ada, sent.id)
        session_b = await portal_session_token(configured, ada, sent.id)
        portal = f"__Host-{PORTAL_COOKIE}"
        # The plain name, which a sibling subdomain could set, is not read.
        async with seen_as_http(app, {PORTAL_COOKIE: session_a}) as planted:
            assert (await planted.get("/portal")).status_code == 401
        async with seen_as_http(app, {portal: session_a}) as browser:
            inbox = await browser.get("/portal")
            assert inbox.status_code == 200, inbox.text
            csrf = f"__Host-{CSRF_COOKIE}"
            nonce = set_cookie_of(inbox, csrf).split(";")[0].split("=", 1)[1]
            token_a = form_token(inbox)  # Sign Out's
        # Session A's page, sent with session B's cookie: refused, B still signed in.
        async with seen_as_http(app, {portal: session_b, csrf: nonce}) as other:
            refused = await other.post("/portal/sign-out", data={CSRF_FIELD: token_a})
            assert refused.status_code == 403
            assert (await other.get("/portal")).status_code == 200
        async with seen_as_http(app, {portal: session_a, csrf: nonce}) as browser:
            signed_out = await browser.post("/portal/sign-out", data={CSRF_FIELD: token_a})
        assert signed_out.status_code == 303
        ended = set_cookie_of(signed_out, portal)
        assert "secure" in ended.lower() and "max-age=0" in ended.lower()
        await office.aclose()


# (d) The token a page gives passes, before and after log-in, over https and http.


@pytest.mark.parametrize("public_url", [HTTPS, HTTP])
async def test_the_token_of_the_page_passes(settings: Settings, public_url: str) -> None:
    async with app_on(settings, public_url) as (app, configured):
        office = await make_office(app, configured)
        await office.browser.aclose()
        csrf = prefixed(public_url, CSRF_COOKIE)
        async with seen_as_http(app) as browser:
            page = await browser.get("/login")
            nonce = set_cookie_of(page, csrf).split(";")[0].split("=", 1)[1]
            browser.cookies.set(csrf, nonce)
            login = await browser.post(
                "/login",
                data={
                    CSRF_FIELD: form_token(page),
                    "email": office.email,
                    "password": STAFF_PASSWORD,
                },
            )
            assert login.status_code == 303, login.text
            staff = prefixed(public_url, STAFF_COOKIE)
            browser.cookies.set(staff, set_cookie_of(login, staff).split(";")[0].split("=", 1)[1])
            # The log-in page's token was bound to no session: the next form has a new one.
            patients = await browser.get("/patients")
            assert form_token(patients) != form_token(page)
            added = await browser.post(
                "/patients",
                data={CSRF_FIELD: form_token(patients), "name": "Ada", "email": "ada@x.example"},
            )
            assert added.status_code in (200, 303), added.text
        assert await patient_names(configured, office) == ["Ada"]
        await office.api.aclose()
