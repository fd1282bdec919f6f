"""``Idempotency-Key`` on Send Secure over the API, as practice software retrying a POST
after a timeout uses it, on the real stack: a retry answers the first response and sends
nothing more, at once or later; another request under the key is refused; a failure the
client should retry does not keep the key; a refusal is answered again; keys are the
practice's own, a day at most, and never stored or logged as sent."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from starlette.requests import Request

from domain.audit import AuditAction
from infra import idempotency
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import IdempotencyKey, SecureEmail
from tests.conftest import Office, make_office, signed_in
from tests.fixtures.processes import free_port
from tests.fixtures.stack import Stack, own_settings
from tests.web.test_portal import run_sql
from web.app import create_app
from web.services import idempotency as idempotent
from web.services.idempotency import bytes_fingerprint
from workers.smtp_catcher import read_maildir

HEADER = "Idempotency-Key"
SENDS = "/api/v1/secure-emails"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\ntreatment plan\n"
ADA = "ada@example.com"


def form(patient_id: str, body: str = "Your treatment plan is attached.") -> dict[str, str]:
    return {"patient_id": patient_id, "subject": "Treatment plan", "body": body}


async def send(
    api: httpx.AsyncClient,
    data: dict[str, str],
    key: str | bytes | None,
    file: bytes = PDF,
    boundary: str | None = None,
) -> httpx.Response:
    headers: dict[str, Any] = {} if key is None else {HEADER: key}
    if boundary is not None:
        headers["Content-Type"] = f"multipart/form-data; boundary={boundary}"
    return await api.post(
        SENDS,
        data=data,
        files=[("attachments", ("plan.pdf", file, "application/pdf"))],
        headers=headers,
    )


async def sent_ids(stack: Stack, practice_id: str | None = None) -> list[str]:
    engine = make_engine(stack.settings.database_url)
    async with engine.connect() as connection:
        ids = await connection.scalars(
            select(SecureEmail.id).where(
                SecureEmail.practice_id == (practice_id or stack.office.practice_id)
            )
        )
        found = list(ids)
    await engine.dispose()
    return found


async def key_rows(stack: Stack, practice_id: str | None = None) -> int:
    engine = make_engine(stack.settings.database_url)
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count())
            .select_from(IdempotencyKey)
            .where(IdempotencyKey.practice_id == (practice_id or stack.office.practice_id))
        )
    await engine.dispose()
    return int(count or 0)


async def key_use(stack: Stack, key: str) -> idempotency.KeyUse | None:
    engine = make_engine(stack.settings.database_url)
    async with make_sessionmaker(engine)() as db:
        used = await idempotency.find(db, stack.office.practice_id, key)
    await engine.dispose()
    return used


async def assert_one_notice(stack: Stack, address: str) -> None:
    """Exactly one notice went to ``address``: a secure email sent after it has had its
    notice delivered, so a second one would have gone by then too."""
    await stack.mail_to(address, 1)
    later = await stack.add_patient("Later Patient", "later@example.com")
    await stack.send_secure(later, "Hi", "Hello")
    await stack.mail_to("later@example.com", 1)
    mails = await asyncio.to_thread(read_maildir, stack.maildir)
    assert [m["To"] for m in mails if m["To"] == address] == [address]


def header_refusal(response: httpx.Response) -> str:
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == ["header", HEADER]
    assert problem["type"] == "value_error"
    return str(problem["msg"])


async def test_same_key_twice_sends_once_and_answers_the_first_response_again(
    stack: Stack,
) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    key = "6d5c61c2-8f47-4a51-9b1e-first-try"
    # Two sends of the same form: the same fields and file, other boundaries.
    first = await send(stack.office.api, form(patient_id), key, boundary="first-boundary-1")
    again = await send(stack.office.api, form(patient_id), key, boundary="other-boundary-2")
    assert first.status_code == 201, first.text
    assert again.status_code == 201, again.text
    assert again.content == first.content
    assert set(first.json()) == {"id", "status", "sent_at", "expires_at"}
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert await sent_ids(stack) == [first.json()["id"]]
    sends = await stack.office.audit_events(action=AuditAction.SEND.value)
    assert [event["secure_email_id"] for event in sends] == [first.json()["id"]]
    await assert_one_notice(stack, ADA)
    # What is kept of the send is what it answered: ids, status and times.
    used = await key_use(stack, key)
    assert used is not None and used.answer is not None
    assert used.answer.status_code == 201
    assert json.loads(used.answer.body) == first.json()


async def test_same_key_at_once_sends_once(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    key = "b8a1-two-at-once"
    answers = await asyncio.gather(
        *(send(stack.office.api, form(patient_id), key) for _ in range(3))
    )
    assert [answer.status_code for answer in answers] == [201, 201, 201], [
        answer.text for answer in answers
    ]
    assert len({answer.json()["id"] for answer in answers}) == 1
    assert sorted(answer.headers.get("Idempotent-Replayed", "") for answer in answers) == [
        "",
        "true",
        "true",
    ]
    assert await sent_ids(stack) == [answers[0].json()["id"]]
    await assert_one_notice(stack, ADA)


async def test_same_key_with_another_request_is_refused(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    other_id = await stack.add_patient("Grace", "grace@example.com")
    key = "reused-for-another-send"
    first = await send(stack.office.api, form(patient_id), key)
    assert first.status_code == 201, first.text
    others = [
        send(stack.office.api, form(patient_id, body="Another body"), key),
        send(stack.office.api, form(other_id), key),
        # The same file name and type, other bytes.
        send(stack.office.api, form(patient_id), key, file=PDF + b"page two\n"),
        stack.office.api.post(SENDS, data=form(patient_id), headers={HEADER: key}),
    ]
    for refused in await asyncio.gather(*others):
        assert "different request" in header_refusal(refused)
    assert await sent_ids(stack) == [first.json()["id"]]
    # The first request's answer is still what the key answers.
    again = await send(stack.office.api, form(patient_id), key)
    assert again.status_code == 201 and again.json() == first.json()


async def test_another_practice_s_same_key_is_its_own(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    key = "shared-by-chance-0001"
    ours = await send(stack.office.api, form(patient_id), key)
    assert ours.status_code == 201, ours.text
    other: Office = await make_office(stack.app, stack.settings)
    try:
        added = await other.api.post("/api/v1/patients", json={"name": "Bo", "email": "bo@e.com"})
        theirs = await send(other.api, form(added.json()["id"]), key)
        assert theirs.status_code == 201, theirs.text
        assert "Idempotent-Replayed" not in theirs.headers
        assert theirs.json()["id"] != ours.json()["id"]
        assert await sent_ids(stack, other.practice_id) == [theirs.json()["id"]]
    finally:
        await other.aclose()
    assert await sent_ids(stack) == [ours.json()["id"]]


async def test_a_first_attempt_temporal_refused_does_not_keep_the_key(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    key = "retry-after-temporal-was-down"
    # The same database, and a Temporal nobody listens at.
    cut_off = stack.settings.model_copy(update={"temporal_address": f"127.0.0.1:{free_port()}"})
    app = create_app(cut_off)
    async with app.router.lifespan_context(app):
        api, browser, _ = await signed_in(app, stack.office.email, stack.office.token)
        try:
            down = await send(api, form(patient_id), key)
        finally:
            await api.aclose()
            await browser.aclose()
    assert down.status_code == 503, down.text
    assert "nothing was sent" in down.text
    assert await sent_ids(stack) == []
    assert await key_rows(stack) == 0
    retried = await send(stack.office.api, form(patient_id), key)
    assert retried.status_code == 201, retried.text
    assert "Idempotent-Replayed" not in retried.headers
    assert await sent_ids(stack) == [retried.json()["id"]]
    await assert_one_notice(stack, ADA)


async def test_a_refusal_is_answered_again_under_its_key(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    await stack.office.api.put("/api/v1/practice", json={"secure_email_enabled": False})
    key = "sent-while-switched-off"
    refused = await send(stack.office.api, form(patient_id), key)
    assert refused.status_code == 409, refused.text
    # Switched on since: the retry of that request still gets its refusal, not a send.
    await stack.office.api.put("/api/v1/practice", json={"secure_email_enabled": True})
    again = await send(stack.office.api, form(patient_id), key)
    assert again.status_code == 409
    assert again.content == refused.content
    assert again.headers["Idempotent-Replayed"] == "true"
    # A field refused: kept too.
    blank = {**form(patient_id), "subject": "  "}
    invalid = await send(stack.office.api, blank, "blank-subject")
    assert invalid.status_code == 422
    assert (await send(stack.office.api, blank, "blank-subject")).content == invalid.content
    assert await sent_ids(stack) == []
    # A new key is a new request.
    sent = await send(stack.office.api, form(patient_id), "sent-once-switched-on")
    assert sent.status_code == 201, sent.text


@pytest.mark.parametrize(
    "key",
    [
        "k" * 256,
        "clé-à-retry".encode(),
        b"",
        b"tab\tinside",
        b"\x7fdelete",
    ],
    ids=["too-long", "not-ascii", "empty", "control", "delete"],
)
async def test_a_key_that_is_not_printable_ascii_of_at_most_255_is_refused(
    stack: Stack, key: str | bytes
) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    refused = await send(stack.office.api, form(patient_id), key)
    assert "printable ASCII" in header_refusal(refused)
    assert await sent_ids(stack) == []
    assert await key_rows(stack) == 0


async def test_a_key_of_255_printable_characters_is_taken(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    key = (" !~" + "x" * 255)[:255]
    first = await send(stack.office.api, form(patient_id), key)
    again = await send(stack.office.api, form(patient_id), key)
    assert first.status_code == 201, first.text
    assert again.json() == first.json()
    assert len(await sent_ids(stack)) == 1


async def test_a_key_older_than_a_day_sends_again(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    key = "used-yesterday"
    first = await send(stack.office.api, form(patient_id), key)
    assert first.status_code == 201, first.text
    a_day_ago = datetime.now(UTC) - timedelta(hours=24, minutes=1)
    await run_sql(
        stack,
        update(IdempotencyKey)
        .where(IdempotencyKey.practice_id == stack.office.practice_id)
        .values(created_at=a_day_ago),
    )
    again = await send(stack.office.api, form(patient_id), key)
    assert again.status_code == 201, again.text
    assert "Idempotent-Replayed" not in again.headers
    assert again.json()["id"] != first.json()["id"]
    assert sorted(await sent_ids(stack)) == sorted([first.json()["id"], again.json()["id"]])
    # The expired key was purged when the practice claimed it again: one row, today's.
    assert await key_rows(stack) == 1


async def first_still_running(stack: Stack, key: str, *, since: datetime) -> str:
    """A first send with ``key`` whose answer is not in yet (another replica still sending
    it, or stopped before it answered): its row as the send left it, without its answer."""
    patient_id = await stack.add_patient("Ada", ADA)
    first = await send(stack.office.api, form(patient_id), key)
    assert first.status_code == 201, first.text
    await run_sql(
        stack,
        update(IdempotencyKey)
        .where(IdempotencyKey.practice_id == stack.office.practice_id)
        .values(status_code=None, response_body=None, answered_at=None, created_at=since),
    )
    return patient_id


async def test_a_retry_while_the_first_still_runs_is_told_to_retry(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "first-is-slow"
    patient_id = await first_still_running(stack, key, since=datetime.now(UTC))
    monkeypatch.setattr(idempotent, "WAIT_FOR_FIRST", 0.3)
    waited = await send(stack.office.api, form(patient_id), key)
    assert waited.status_code == 409, waited.text
    assert "still running" in waited.json()["detail"]
    assert waited.headers["Retry-After"] == str(idempotent.RETRY_AFTER)
    assert len(await sent_ids(stack)) == 1
    # Another request under the key is refused at once, running or not.
    other = await send(stack.office.api, form(patient_id, body="Other"), key)
    assert "different request" in header_refusal(other)


async def test_a_retry_gets_the_answer_once_the_first_gives_it(stack: Stack) -> None:
    key = "first-answers-while-we-wait"
    patient_id = await first_still_running(stack, key, since=datetime.now(UTC))
    [secure_email_id] = await sent_ids(stack)

    async def first_answers() -> None:
        engine = make_engine(stack.settings.database_url)
        async with make_sessionmaker(engine)() as db:
            used = await idempotency.find(db, stack.office.practice_id, key)
            assert used is not None
            body = json.dumps({"id": secure_email_id, "status": "sending"})
            await idempotency.record_answer(db, used.claim_id, idempotency.Answer(201, body))
        await engine.dispose()

    waited, _ = await asyncio.gather(send(stack.office.api, form(patient_id), key), first_answers())
    assert waited.status_code == 201, waited.text
    assert waited.json()["id"] == secure_email_id
    assert await sent_ids(stack) == [secure_email_id]


async def test_a_first_interrupted_before_it_answered_is_said_so(stack: Stack) -> None:
    key = "first-server-stopped"
    long_ago = datetime.now(UTC) - idempotent.INTERRUPTED_AFTER - timedelta(seconds=1)
    patient_id = await first_still_running(stack, key, since=long_ago)
    refused = await send(stack.office.api, form(patient_id), key)
    assert refused.status_code == 409, refused.text
    assert "interrupted" in refused.json()["detail"]
    assert "Retry-After" not in refused.headers
    assert len(await sent_ids(stack)) == 1


async def test_without_a_key_every_send_sends(stack: Stack) -> None:
    patient_id = await stack.add_patient("Ada", ADA)
    answers = [await send(stack.office.api, form(patient_id), None) for _ in range(2)]
    assert [answer.status_code for answer in answers] == [201, 201]
    assert len(set(await sent_ids(stack))) == 2
    assert await key_rows(stack) == 0


async def test_the_key_is_never_logged_nor_stored_as_sent(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    patient_id = await stack.add_patient("Ada", ADA)
    key = "unmistakable-key-7c1f09"
    assert (await send(stack.office.api, form(patient_id), key)).status_code == 201
    assert (await send(stack.office.api, form(patient_id), key)).status_code == 201
    assert key not in caplog.text
    assert await key_rows(stack) == 1
    engine = make_engine(stack.settings.database_url)
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(IdempotencyKey.__table__).where(
                    IdempotencyKey.practice_id == stack.office.practice_id
                )
            )
        ).one()
    await engine.dispose()
    assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
    assert key not in " ".join(str(value) for value in row)


# For the routes to come: a body of bytes (a CSV file) -----------------------------------


def csv_request(query: bytes) -> Request:
    return Request(
        {
            "type": "http",
            "method": "POST",
            "path": "/api/v1/patients/import",
            "query_string": query,
            "headers": [(b"content-type", b"text/csv")],
        }
    )


def test_a_csv_request_is_the_same_by_its_bytes_and_query() -> None:
    rows = b"name,email\nAda,ada@example.com\n"
    same = bytes_fingerprint(csv_request(b"dry_run=true"), rows)
    assert bytes_fingerprint(csv_request(b"dry_run=true"), rows) == same
    assert bytes_fingerprint(csv_request(b"dry_run=false"), rows) != same
    assert bytes_fingerprint(csv_request(b"dry_run=true"), rows + b"Bo,bo@e.com\n") != same


# The OpenAPI document ------------------------------------------------------------------


@pytest.fixture
def bare_app(tmp_path: Path) -> FastAPI:
    return create_app(own_settings(tmp_path))  # the document needs no database


def test_openapi_declares_the_header_and_what_it_adds(bare_app: FastAPI) -> None:
    operation = bare_app.openapi()["paths"][SENDS]["post"]
    [header] = [p for p in operation["parameters"] if p["name"] == HEADER]
    assert header["in"] == "header"
    assert header.get("required", False) is False
    assert "24 hours" in header["description"]
    responses = operation["responses"]
    assert "Idempotency-Key" in responses["422"]["description"]
    assert "per field" in responses["422"]["description"]
    conflict = responses["409"]
    assert "Idempotency-Key" in conflict["description"]
    assert "practice's rules" in conflict["description"]
    assert "Retry-After" in conflict["headers"]
    # The CSV import takes it too; no other operation does.
    retried = {(SENDS, "post"), ("/api/v1/patients/import", "post")}
    for path, item in bare_app.openapi()["paths"].items():
        for method, other in item.items():
            if (path, method) not in retried:
                names = [p["name"] for p in other.get("parameters", [])]
                assert HEADER not in names, (method, path)
