"""Alerts (R10): raised by a patient's reply, naming the patient only, live on the Main Menu."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from fastapi import FastAPI
from temporalio.testing import ActivityEnvironment

from activities.read_model import ReadModelActivities
from domain.audit import ActorType
from domain.secure_email import SecureEmailStatus, StatusChange
from infra.audit import Actor
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import SecureEmail, StaffSession
from infra.security import token_hash
from infra.settings import Settings
from tests.conftest import Office, make_office
from tests.fixtures.stack import Stack, app_server, serving
from tests.fixtures.waiting import eventually
from tests.web.test_portal import SUBJECT, send, sign_in
from web.cookies import STAFF_COOKIE
from web.office import alerts
from web.services.replies import submit_reply
from web.state import AppState
from web.templating import moment_in

T = TypeVar("T")

REPLY_SUBJECT = f"RE: {SUBJECT}"
REPLY_BODY = "The filling on the upper left still aches when I drink something cold."
# Who the portal audits a reply as: the patient, from their browser's address.
PATIENT_ACTOR = Actor(ActorType.PATIENT, client_address="10.9.8.7")


# Helpers the Email Client and chart tests share ----------------------------------------


async def opened_secure_email(stack: Stack, email: str) -> tuple[str, str]:
    """Sends a secure email and lets the patient verify; returns its id and the patient's."""
    secure_email_id, link = await send(stack, email)
    async with stack.browser() as patient:
        await sign_in(stack, patient, link, email)
    status = await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")
    return secure_email_id, str(status.json()["patient_id"])


async def patient_replies(
    stack: Stack,
    secure_email_id: str,
    body: str = REPLY_BODY,
    files: list[tuple[str, bytes, str]] | None = None,
) -> str:
    """Reply All as the portal submits it: files stored first, the reply kept, then the
    workflow update by id."""
    state: AppState = stack.app.state.app_state
    reply_id = str(uuid.uuid4())
    attachments = []
    for filename, data, content_type in files or []:
        attachment_id = str(uuid.uuid4())
        key = f"secure-emails/{secure_email_id}/replies/{reply_id}/{attachment_id}"
        stored = await state.store.put_bytes(key, data, content_type)
        attachments.append(stored.as_attachment(attachment_id, filename, content_type))
    async with state.sessions() as db:
        secure_email = await db.get(SecureEmail, secure_email_id)
        assert secure_email is not None
        await submit_reply(
            state, db, secure_email, reply_id, REPLY_SUBJECT, body, attachments, PATIENT_ACTOR
        )
    return reply_id


async def open_alert(office: Office, reply_id: str) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        items: list[dict[str, Any]] = (await office.api.get("/api/v1/alerts")).json()["items"]
        return next((item for item in items if item["reply_id"] == reply_id), None)

    return await eventually(check)


# A real HTTP server: httpx's in-process transport returns a response only once its body
# has ended, and an event stream never ends.


@asynccontextmanager
async def streams_served(app: FastAPI) -> AsyncIterator[str]:
    """The app on a real port, at the URL given. Once the test is done, every stream it
    opened must have ended: the server has no connection or task left."""
    server = app_server(app)
    async with serving(server) as url:
        yield url

        def closed() -> bool:
            return not server.server_state.connections and not server.server_state.tasks

        await eventually(closed, timeout=5, what="the event streams ended")


@pytest.fixture
async def stack_url(stack: Stack) -> AsyncIterator[str]:
    async with streams_served(stack.app) as served:
        yield served


@pytest.fixture
async def quick_url(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """Streams that poll every 50 ms and keep alive every 200 ms: a test sees several."""
    monkeypatch.setattr(alerts, "POLL_SECONDS", 0.05)
    monkeypatch.setattr(alerts, "KEEP_ALIVE_SECONDS", 0.2)
    async with streams_served(app) as served:
        yield served


def staff_client(base_url: str, office: Office) -> httpx.AsyncClient:
    cookie = office.browser.cookies[STAFF_COOKIE]
    return httpx.AsyncClient(base_url=base_url, cookies={STAFF_COOKIE: cookie})


async def next_block(lines: AsyncIterator[str]) -> list[str]:
    """The lines of the next server-sent event (or comment), up to its blank line."""
    block: list[str] = []
    async for line in lines:
        if line == "":
            if block:
                return block
            continue
        block.append(line)
    raise AssertionError(f"the stream ended; last lines {block}")


def feed_of(block: list[str]) -> dict[str, Any]:
    assert "event: alerts" in block, block
    data = next(line for line in block if line.startswith("data: "))
    feed: dict[str, Any] = json.loads(data.removeprefix("data: "))
    return feed


@asynccontextmanager
async def kept_alive_stream(base_url: str, office: Office) -> AsyncIterator[AsyncIterator[str]]:
    """The office's alert stream on a client of its own, read past its first feed and a
    keep-alive (a keep-alive means several polls have run); the body has 10 s."""
    async with staff_client(base_url, office) as client:
        async with client.stream("GET", "/alerts/stream") as stream:
            lines = stream.aiter_lines()
            async with asyncio.timeout(10):
                feed_of(await next_block(lines))
                assert await next_block(lines) == [": keep-alive"]
                yield lines


async def ends_without_event(lines: AsyncIterator[str]) -> None:
    """The stream ends, sending only blank lines and comments on the way."""
    rest = [line async for line in lines]
    assert all(line == "" or line.startswith(":") for line in rest)


# Tests -------------------------------------------------------------------------------


async def test_reply_raises_alert_naming_patient_only(stack: Stack) -> None:
    secure_email_id, patient_id = await opened_secure_email(stack, "ada@example.com")
    menu = await stack.office.browser.get("/")
    assert 'id="alert-count">0<' in menu.text and "No new alerts." in menu.text

    reply_id = await patient_replies(stack, secure_email_id)
    alert = await open_alert(stack.office, reply_id)
    assert alert["patient_id"] == patient_id
    assert alert["patient_name"] == "Ada"
    assert alert["secure_email_id"] == secure_email_id
    assert alert["acknowledged_at"] is None
    assert REPLY_BODY not in json.dumps(alert) and SUBJECT not in json.dumps(alert)

    menu = await stack.office.browser.get("/")
    assert menu.status_code == 200
    assert 'id="alert-count">1<' in menu.text
    assert "New secure email reply from Ada" in menu.text
    assert f'href="/email-client/replies/{reply_id}"' in menu.text
    assert 'aria-live="polite"' in menu.text
    assert '<script src="/static/alerts.js" defer></script>' in menu.text
    # The Main Menu is on every desk's screen: the patient's name, nothing they wrote.
    assert REPLY_BODY not in menu.text and REPLY_SUBJECT not in menu.text


async def test_alert_stream_delivers_new_alert(stack: Stack, stack_url: str) -> None:
    secure_email_id, patient_id = await opened_secure_email(stack, "grace@example.com")
    state: AppState = stack.app.state.app_state
    async with staff_client(stack_url, stack.office) as client:
        async with client.stream("GET", "/alerts/stream") as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            async with asyncio.timeout(10):
                first = await next_block(lines)
            assert first[0].startswith("retry: ")
            assert feed_of(first) == {"count": 0, "items": []}

            # Between polls the stream holds no database connection.
            checked_out = []
            for _ in range(10):
                checked_out.append(state.engine.pool.checkedout())  # type: ignore[attr-defined]
                await asyncio.sleep(0.1)
            assert min(checked_out) == 0

            reply_id = await patient_replies(stack, secure_email_id)
            async with asyncio.timeout(20):
                while True:
                    block = await next_block(lines)
                    if block[0].startswith(":"):
                        continue
                    feed = feed_of(block)
                    if feed["count"]:
                        break
            assert feed["count"] == 1
            [item] = feed["items"]
            assert item["reply_id"] == reply_id
            assert item["patient_id"] == patient_id
            assert item["patient_name"] == "Grace"
            assert item["secure_email_id"] == secure_email_id
            # Its time in the office's words and the practice's zone, as the page writes it.
            created_at = datetime.fromisoformat(item["created_at"])
            assert item["shown_at"] == moment_in(created_at, "America/New_York")
            menu = await stack.office.browser.get("/")
            assert f">{item['shown_at']}</time>" in menu.text
            assert REPLY_BODY not in "\n".join(block) and SUBJECT not in "\n".join(block)

            # Opening the reply elsewhere clears the alert on this screen too.
            await stack.office.browser.get(f"/email-client/replies/{reply_id}")
            async with asyncio.timeout(10):
                cleared = feed_of(await next_block(lines))
            assert cleared == {"count": 0, "items": []}


async def test_alert_stream_keeps_alive_and_stops_after_log_out(
    office: Office,
    quick_url: str,
) -> None:
    async with kept_alive_stream(quick_url, office) as lines:
        logged_out = await office.browser.post("/logout")
        assert logged_out.status_code == 303
        # The session ended on the server, so the stream ends too.
        await ends_without_event(lines)


async def test_alert_stream_requires_staff(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/alerts/stream")
    assert response.status_code == 401


async def test_acknowledge_alert_via_api(stack: Stack) -> None:
    secure_email_id, _ = await opened_secure_email(stack, "ada@example.com")
    reply_id = await patient_replies(stack, secure_email_id)
    alert = await open_alert(stack.office, reply_id)

    other = await make_office(stack.app, stack.settings)
    try:
        assert (await other.api.get("/api/v1/alerts")).json() == {"items": []}
        refused = await other.api.post(f"/api/v1/alerts/{alert['id']}/ack")
        assert refused.status_code == 404
        assert refused.json() == {"detail": "Alert not found"}
    finally:
        await other.aclose()

    acknowledged = await stack.office.api.post(f"/api/v1/alerts/{alert['id']}/ack")
    assert acknowledged.status_code == 200
    body = acknowledged.json()
    assert body["id"] == alert["id"] and body["acknowledged_at"] is not None
    assert (await stack.office.api.get("/api/v1/alerts")).json() == {"items": []}
    again = await stack.office.api.post(f"/api/v1/alerts/{alert['id']}/ack")
    assert again.status_code == 200
    assert again.json()["acknowledged_at"] == body["acknowledged_at"]
    assert (await stack.office.api.post("/api/v1/alerts/no-such-alert/ack")).status_code == 404
    menu = await stack.office.browser.get("/")
    assert 'id="alert-count">0<' in menu.text


async def test_alerts_api_requires_token(app: FastAPI, settings: Settings) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://portal.test"
    ) as client:
        assert (await client.get("/api/v1/alerts")).status_code == 401
        assert (await client.post("/api/v1/alerts/x/ack")).status_code == 401


async def test_a_fourth_alert_stream_closes_the_oldest(
    office: Office,
    quick_url: str,
) -> None:
    async with AsyncExitStack() as opened, staff_client(quick_url, office) as client:

        async def open_stream() -> tuple[AsyncIterator[str], str]:
            stream = await opened.enter_async_context(client.stream("GET", "/alerts/stream"))
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            async with asyncio.timeout(10):
                first = await next_block(lines)
            feed_of(first)
            stream_id = next(line for line in first if line.startswith("id: "))
            return lines, stream_id.removeprefix("id: ")

        tabs = [await open_stream() for _ in range(alerts.MAX_STREAMS_PER_STAFF)]
        fourth, _ = await open_stream()

        oldest, oldest_id = tabs[0]
        async with asyncio.timeout(10):
            closing = await next_block(oldest)
            # A keep-alive may have gone out before the close (its timer is short here).
            while closing == [": keep-alive"]:
                closing = await next_block(oldest)
            rest = [line async for line in oldest]
        assert closing[0] == "event: closed"
        assert "Reload this page" in closing[1]
        assert all(line == "" for line in rest)
        # The others, the new one included, stay live.
        for lines in [tabs[1][0], tabs[2][0], fourth]:
            async with asyncio.timeout(10):
                assert await next_block(lines) == [": keep-alive"]
        # The closed tab's browser reconnects with its stream's id and is told to stop
        # (EventSource does not retry a 204), so tabs cannot take turns closing each other.
        again = await client.get("/alerts/stream", headers={"Last-Event-ID": oldest_id})
        assert again.status_code == 204


async def test_alert_streams_are_counted_per_staff_member(
    app: FastAPI,
    settings: Settings,
    office: Office,
    quick_url: str,
) -> None:
    colleague = await make_office(app, settings)
    try:
        async with (
            AsyncExitStack() as opened,
            staff_client(quick_url, office) as mine,
            staff_client(quick_url, colleague) as theirs,
        ):
            streams = []
            for client in [mine, mine, mine, theirs]:
                stream = await opened.enter_async_context(client.stream("GET", "/alerts/stream"))
                lines = stream.aiter_lines()
                async with asyncio.timeout(10):
                    feed_of(await next_block(lines))
                streams.append(lines)
            # Three of one person's and one of another's: nobody's is closed.
            for lines in streams:
                async with asyncio.timeout(10):
                    assert await next_block(lines) == [": keep-alive"]
    finally:
        await colleague.aclose()


async def test_an_open_alert_stream_does_not_keep_the_session_alive(
    app: FastAPI,
    settings: Settings,
    office: Office,
    quick_url: str,
) -> None:
    # The Main Menu left open on an unattended desk is still logged off when idle.
    state: AppState = app.state.app_state
    session_key = token_hash(office.browser.cookies[STAFF_COOKIE])
    idle = timedelta(minutes=settings.staff_idle_minutes)

    async def last_seen(at: datetime | None = None) -> datetime | None:
        async with state.sessions() as db:
            session = await db.get(StaffSession, session_key)
            assert session is not None
            if at is not None:
                session.last_seen_at = at
                await db.commit()
            return session.last_seen_at

    # The person at the desk was last seen almost an idle period ago.
    seen = await last_seen(datetime.now(UTC) - idle + timedelta(seconds=30))
    assert seen is not None
    async with kept_alive_stream(quick_url, office) as lines:
        # Polls have come and gone without moving it.
        now_seen = await last_seen()
        assert now_seen is not None and abs(now_seen - seen) < timedelta(seconds=1)
        # The idle period passes: the stream ends with the session.
        await last_seen(datetime.now(UTC) - idle - timedelta(seconds=1))
        await ends_without_event(lines)
    assert (await office.browser.get("/")).status_code in (302, 303, 307)


async def test_expired_unopened_alerts_the_office_once(stack: Stack) -> None:
    """The read model's activity, as the workflow runs it at expiry (retried once), on the
    stack's database: an unread message raises one alert of its own kind; a read one none."""
    unread_id, _ = await send(stack, "una@example.com")
    read_id, _ = await opened_secure_email(stack, "rea@example.com")
    engine = make_engine(stack.settings.database_url)
    record = ReadModelActivities(make_sessionmaker(engine)).record_status
    now = datetime.now(UTC)
    for secure_email_id, opened_at in ((unread_id, None), (read_id, now)):
        expiry = StatusChange(
            secure_email_id=secure_email_id,
            status=SecureEmailStatus.EXPIRED,
            at=now,
            sequence=99,
            opened_at=opened_at,
        )
        for _ in range(2):
            await ActivityEnvironment().run(record, expiry)
    await engine.dispose()

    (alert,) = (await stack.office.api.get("/api/v1/alerts")).json()["items"]
    assert alert["kind"] == "expired_unopened" and alert["secure_email_id"] == unread_id
    assert alert["message"] == "The secure email to Una expired unopened: call the patient"
    assert alert["href"] == f"/secure-emails/{unread_id}"
    menu = await stack.office.browser.get("/")
    assert "expired unopened: call the patient" in menu.text
    assert 'id="alert-count">1<' in menu.text
    status_page = await stack.office.browser.get(alert["href"])
    assert status_page.status_code == 200 and "Expired" in status_page.text
