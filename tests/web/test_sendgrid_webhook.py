"""SendGrid's signed Event Webhook: delivered adds a timeline line, a bounce fails the
notice (its workflow is signalled; a version 1 message gets the line and the alert
here); unsigned, stale or oversized batches are refused before they are parsed."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import update
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from domain.secure_email import EventKind, workflow_id_for
from infra import timeline
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import migrate_async
from infra.db.models import SecureEmail
from infra.settings import Settings
from tests.conftest import app_of_its_own
from tests.fixtures.processes import free_port
from tests.fixtures.sendgrid import EventSigner
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from web.webhooks.sendgrid import SIGNATURE_HEADER, TIMESTAMP_HEADER
from workflows.legacy import LEGACY_WORKFLOW_VERSION

URL = "/webhooks/sendgrid"
SENDGRID = EventSigner()
PUBLIC_KEY = SENDGRID.public_key
PATIENT_ADDRESS = "ada@example.com"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"sendgrid_webhook_public_key": PUBLIC_KEY})


def sendgrid_event(kind: str, secure_email_id: str, **fields: Any) -> dict[str, Any]:
    """An event as SendGrid posts it: its own fields, our custom_args beside them."""
    return {
        "email": PATIENT_ADDRESS,
        "timestamp": int(time.time()) - 5,
        "smtp-id": "<secure-email.notice@smile-dental.example>",
        "event": kind,
        "sg_event_id": uuid.uuid4().hex,
        "sg_message_id": "14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0",
        "secure_email_id": secure_email_id,
        "mail": "notice",
        **({"reason": "550 5.1.1 The email account does not exist"} if kind == "bounce" else {}),
        **fields,
    }


def signed_headers(
    body: bytes, *, at: float | None = None, signer: EventSigner = SENDGRID
) -> dict[str, str]:
    return signer.headers(body, at=at)


@pytest.fixture
async def sendgrid(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    """SendGrid's side: no cookies, no token, only the signature."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=stack.app), base_url="http://portal.test"
    ) as client:
        yield client


async def post_events(
    client: httpx.AsyncClient, events: list[Any], **signing: Any
) -> httpx.Response:
    body = json.dumps(events).encode()
    return await client.post(URL, content=body, headers=signed_headers(body, **signing))


async def sent_secure_email(stack: Stack) -> str:
    patient_id = await stack.add_patient("Ada Lovelace", PATIENT_ADDRESS)
    secure_email_id = await stack.send_secure(patient_id, "Crown fitting", "Tuesday")
    await stack.wait_for_status(secure_email_id, "sent")
    return secure_email_id


async def timeline_of(stack: Stack, secure_email_id: str) -> list[tuple[str, int, str]]:
    engine = make_engine(stack.settings.database_url)
    try:
        async with make_sessionmaker(engine)() as db:
            lines = await timeline.of(db, secure_email_id)
            return [(line.kind, int(line.at.timestamp()), line.key) for line in lines]
    finally:
        await engine.dispose()


async def alerts_of(stack: Stack) -> list[tuple[str, str]]:
    items = (await stack.office.api.get("/api/v1/alerts")).json()["items"]
    return [(item["kind"], item["secure_email_id"]) for item in items]


def kinds(lines: list[tuple[str, int, str]]) -> list[str]:
    return [kind for kind, _, _ in lines]


async def test_delivered_adds_one_timeline_line(stack: Stack, sendgrid: httpx.AsyncClient) -> None:
    secure_email_id = await sent_secure_email(stack)
    delivered = sendgrid_event("delivered", secure_email_id, timestamp=1_900_000_000)

    for _ in range(2):  # SendGrid posts a batch again when it did not hear back
        answer = await post_events(sendgrid, [delivered])
        assert answer.status_code == 204, answer.text

    lines = await timeline_of(stack, secure_email_id)
    assert [line for line in lines if line[0] == EventKind.NOTICE_DELIVERED] == [
        ("notice_delivered", 1_900_000_000, f"sendgrid:{delivered['sg_event_id']}")
    ]


async def test_status_page_shows_the_notice_emailed_then_delivered(
    stack: Stack, sendgrid: httpx.AsyncClient
) -> None:
    secure_email_id = await sent_secure_email(stack)

    async def emailed() -> list[tuple[str, int, str]] | None:
        lines = await timeline_of(stack, secure_email_id)
        return lines if EventKind.NOTICE_EMAILED in kinds(lines) else None

    lines = await eventually(emailed, what="the notice emailed line")
    assert [key for kind, _, key in lines if kind == EventKind.NOTICE_EMAILED] == ["notice"]
    delivered = sendgrid_event("delivered", secure_email_id, timestamp=int(time.time()) + 60)
    answer = await post_events(sendgrid, [delivered])
    assert answer.status_code == 204, answer.text

    page = (await stack.office.browser.get(f"/secure-emails/{secure_email_id}")).text
    emailed_at = page.index("<li>Notice emailed to the patient, <time")
    delivered_at = page.index("<li>Notice delivered, <time")
    assert emailed_at < delivered_at  # oldest first


async def test_other_events_and_messages_are_ignored(
    stack: Stack, sendgrid: httpx.AsyncClient
) -> None:
    secure_email_id = await sent_secure_email(stack)
    before = await timeline_of(stack, secure_email_id)
    ignored: list[Any] = [
        sendgrid_event("delivered", secure_email_id, mail="passcode"),
        sendgrid_event("open", secure_email_id),
        sendgrid_event("processed", secure_email_id),
        sendgrid_event("delivered", str(uuid.uuid4())),
        sendgrid_event("bounce", str(uuid.uuid4())),
        {k: v for k, v in sendgrid_event("delivered", "x").items() if k != "secure_email_id"},
        {"event": "delivered"},  # not an event SendGrid sends: nothing to read
        "not an event",
    ]
    answer = await post_events(sendgrid, ignored)
    assert answer.status_code == 204, answer.text
    assert await timeline_of(stack, secure_email_id) == before
    assert await alerts_of(stack) == []


async def test_refused_unless_signed_and_fresh(stack: Stack, sendgrid: httpx.AsyncClient) -> None:
    secure_email_id = await sent_secure_email(stack)
    before = await timeline_of(stack, secure_email_id)
    events = [sendgrid_event("delivered", secure_email_id)]
    body = json.dumps(events).encode()
    now = time.time()

    someone_else = EventSigner()
    tampered = signed_headers(body)
    not_base64 = {**signed_headers(body), SIGNATURE_HEADER: "not base64!"}
    refused = {
        "someone else's key": await post_events(sendgrid, events, signer=someone_else),
        "another body": await sendgrid.post(URL, content=body + b" ", headers=tampered),
        "signature not base64": await sendgrid.post(URL, content=body, headers=not_base64),
        "11 minutes old": await post_events(sendgrid, events, at=now - 11 * 60),
        "6 minutes ahead": await post_events(sendgrid, events, at=now + 6 * 60),
        "no headers": await sendgrid.post(URL, content=body),
        "no signature": await sendgrid.post(
            URL, content=body, headers={TIMESTAMP_HEADER: str(int(now))}
        ),
        "no timestamp": await sendgrid.post(
            URL,
            content=body,
            headers={SIGNATURE_HEADER: signed_headers(body)[SIGNATURE_HEADER]},
        ),
    }
    assert {why: answer.status_code for why, answer in refused.items()} == dict.fromkeys(
        refused, 403
    )
    assert "not signed" in refused["no headers"].json()["detail"]
    assert await timeline_of(stack, secure_email_id) == before

    # Signed, but not what SendGrid posts: refused in words, not a 500.
    not_json = b"delivered!"
    answer = await sendgrid.post(URL, content=not_json, headers=signed_headers(not_json))
    assert answer.status_code == 400
    within_limits = await post_events(sendgrid, events, at=now - 9 * 60)
    assert within_limits.status_code == 204


async def test_oversized_batch_refused(stack: Stack, sendgrid: httpx.AsyncClient) -> None:
    secure_email_id = await sent_secure_email(stack)
    padding = "x" * 1000
    events = [sendgrid_event("processed", secure_email_id, pad=padding) for _ in range(1100)]
    answer = await post_events(sendgrid, events)
    assert answer.status_code == 413
    assert "1 MB" in answer.json()["detail"]


async def test_bounce_signals_the_workflow(
    stack: Stack, sendgrid: httpx.AsyncClient, dev_server_env: WorkflowEnvironment
) -> None:
    secure_email_id = await sent_secure_email(stack)
    answer = await post_events(sendgrid, [sendgrid_event("bounce", secure_email_id)])
    assert answer.status_code == 204, answer.text

    handle = dev_server_env.client.get_workflow_handle(workflow_id_for(secure_email_id))

    async def signalled() -> list[str] | None:
        names = [
            event.workflow_execution_signaled_event_attributes.signal_name
            async for event in handle.fetch_history_events()
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        ]
        return names or None

    assert await eventually(signalled, what="the notice_bounced signal") == ["notice_bounced"]
    # The workflow's handler fails the notice and tells the office.
    await stack.wait_for_status(secure_email_id, "failed")

    async def office_told() -> list[tuple[str, str]] | None:
        return await alerts_of(stack) or None

    assert await eventually(office_told, what="the alert") == [("notice_failed", secure_email_id)]


async def test_bounce_of_a_version_1_message_recorded_here(
    stack: Stack, sendgrid: httpx.AsyncClient
) -> None:
    secure_email_id = await sent_secure_email(stack)
    # As a message sent before version 2 reads in the database (its workflow is not
    # signalled: version 1 workflows have no bounce signal).
    engine = make_engine(stack.settings.database_url)
    async with make_sessionmaker(engine)() as db:
        await db.execute(
            update(SecureEmail)
            .where(SecureEmail.id == secure_email_id)
            .values(workflow_version=LEGACY_WORKFLOW_VERSION)
        )
        await db.commit()
    await engine.dispose()

    dropped = sendgrid_event("dropped", secure_email_id)
    for _ in range(2):
        answer = await post_events(sendgrid, [dropped])
        assert answer.status_code == 204, answer.text

    lines = await timeline_of(stack, secure_email_id)
    assert [line[2] for line in lines if line[0] == EventKind.BOUNCED] == [
        f"sendgrid:{dropped['sg_event_id']}"
    ]
    assert await alerts_of(stack) == [("notice_failed", secure_email_id)]


async def test_temporal_down_answers_503_for_sendgrid_to_retry(
    stack: Stack, settings: Settings
) -> None:
    secure_email_id = await sent_secure_email(stack)
    # The same database, and a Temporal nobody listens at.
    cut_off = stack.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    async with app_of_its_own(cut_off) as client:
        answer = await post_events(client, [sendgrid_event("bounce", secure_email_id)])
    assert answer.status_code == 503
    assert "post them again" in answer.json()["detail"]


async def test_webhook_off_without_a_key(settings: Settings) -> None:
    off = settings.model_copy(update={"sendgrid_webhook_public_key": ""})
    await migrate_async(off)
    async with app_of_its_own(off) as client:
        answer = await post_events(client, [sendgrid_event("delivered", str(uuid.uuid4()))])
    assert answer.status_code == 404


def test_a_key_that_is_not_sendgrid_s_is_refused_at_start() -> None:
    other_curve = EventSigner("P-384").public_key
    for wrong in (other_curve, base64.b64encode(b"not a key").decode(), "not base64!"):
        with pytest.raises(ValidationError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
            Settings(sendgrid_webhook_public_key=wrong)
    assert Settings(sendgrid_webhook_public_key=f" {PUBLIC_KEY}\n").sendgrid_webhook_public_key == (
        PUBLIC_KEY
    )
