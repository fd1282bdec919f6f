"""The signed-in portal: Inbox, Sent, Files and Reply All with its refusals (R7-R9)."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from domain.audit import AuditAction
from domain.secure_email import ReplySubmitted
from infra import replies, secure_emails
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import AuditEvent
from infra.replies import Written
from tests.fixtures.stack import Stack
from tests.fixtures.waiting import eventually
from tests.web.test_portal import BODY, expire_now, send, sign_in
from web.services.replies import workflow_of
from workflows.secure_email import SecureEmailWorkflow

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PDF = b"%PDF-1.7\n" + b"1 0 obj\n" * 20
REPLY = "My insurance card is attached."


async def test_inbox_lists_messages_newest_first_expired_ones_as_expired(stack: Stack) -> None:
    first_id, link = await send(stack)
    patient_id = (await stack.office.api.get(f"/api/v1/secure-emails/{first_id}")).json()[
        "patient_id"
    ]
    second = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": "Second message", "body": "Hello again"},
    )
    second_id = second.json()["id"]
    old = await stack.office.api.post(
        "/api/v1/secure-emails",
        data={"patient_id": patient_id, "subject": "Old news", "body": "Old words"},
    )
    await expire_now(stack, old.json()["id"], marked=False)
    async with stack.browser() as patient:
        await sign_in(stack, patient, link, "ada@example.com")
        inbox = await patient.get("/portal")
        assert inbox.status_code == 200
        assert inbox.text.index("Second message") < inbox.text.index("Treatment plan")
        # Expired on its time alone (its workflow has not marked it yet): still listed,
        # as expired, without its subject; opened, only the warning.
        assert "Old news" not in inbox.text
        assert "Expired — call the office to have it sent again." in inbox.text
        assert f'href="/portal/messages/{old.json()["id"]}"' in inbox.text
        warning = await patient.get(f"/portal/messages/{old.json()['id']}")
        assert warning.status_code == 410 and "has expired" in warning.text
        assert "Old news" not in warning.text and "Old words" not in warning.text
        assert "New</span> Second message" in inbox.text  # not opened yet
        opened = await patient.get(f"/portal/messages/{second_id}")
        assert "Hello again" in opened.text
    # Reading it from the Inbox counts as opening it.
    status = await stack.wait_for_status(second_id, "opened")
    assert status["status"] == "opened" and status["opened_at"]


async def test_reply_all_with_files_then_sent_and_files_tabs(stack: Stack) -> None:
    secure_email_id, link = await send(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        form = await patient.get(f"{message_path}/reply")
        assert 'value="RE: Treatment plan"' in form.text
        for label in ('for="body">Your message', 'for="attachments">Attachments'):
            assert label in form.text
        # The allowed files in words, and the message answered, quoted under the form.
        assert "Photos, PDF, Word or text files, up to 20 MB each." in form.text
        quoted = form.text.split("Send reply</button>")[1]
        assert "Original message from Smile Dental" in quoted
        assert BODY in quoted and "Treatment plan" in quoted
        assert "<textarea" not in quoted and "<input" not in quoted
        sent = await patient.post(
            f"{message_path}/reply",
            data={"subject": "RE: Treatment plan", "body": REPLY},
            files=[
                ("attachments", ("card.png", PNG, "image/png")),
                ("attachments", ("claim.pdf", PDF, "application/pdf")),
            ],
        )
        assert sent.status_code == 303
        sent_tab = await patient.get(sent.headers["location"])
        assert "Your reply was sent" in sent_tab.text and "RE: Treatment plan" in sent_tab.text
        files_tab = await patient.get("/portal/files")
        # Each file's line says who sent it.
        for name, sender in (
            ("plan.pdf", "Sent by Smile Dental"),
            ("card.png", "Sent by you"),
            ("claim.pdf", "Sent by you"),
        ):
            line = files_tab.text.split(f">{name}</a>")[1].split("</li>")[0]
            assert sender in line, (name, line)
        thread = await patient.get(message_path)
        assert REPLY in thread.text
    status = (await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")).json()
    assert status["status"] == "replied"


async def test_reply_refusals_keep_what_was_typed(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        cases = [
            (("run.exe", b"MZ\x90\x00", "application/octet-stream"), ".exe"),
            (("photo.png", PDF, "image/png"), "not a PNG"),
            (("big.pdf", PDF + b"0" * (20 * 1024 * 1024), "application/pdf"), "20 MB"),
        ]
        for upload, reason in cases:
            refused = await patient.post(
                f"{message_path}/reply",
                data={"subject": "RE: mine", "body": REPLY},
                files=[("attachments", ("ok.png", PNG, "image/png")), ("attachments", upload)],
            )
            assert refused.status_code == 422
            assert f"{upload[0]}: " in refused.text and reason in refused.text
            assert "ok.png" not in refused.text.split("reply-errors")[1].split("</div>")[0]
            assert REPLY in refused.text and 'value="RE: mine"' in refused.text
        blank = await patient.post(f"{message_path}/reply", data={"body": "  "})
        assert blank.status_code == 422 and "Write a message" in blank.text
        sent_tab = await patient.get("/portal/sent")
        assert "You have not sent any replies" in sent_tab.text
    assert not [p for p in (stack.maildir / "new").iterdir() if b"RE: mine" in p.read_bytes()]


async def test_reply_after_expiry_refused(stack: Stack) -> None:
    secure_email_id, link = await send(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        await expire_now(stack, secure_email_id, marked=False)
        refused = await patient.post(f"{message_path}/reply", data={"body": REPLY})
        assert refused.status_code == 410 and "has expired" in refused.text
        assert "You have not sent any replies" in (await patient.get("/portal/sent")).text


async def test_reply_to_other_patients_message_not_found(stack: Stack) -> None:
    ada_id, _ = await send(stack, "ada@example.com")
    _, grace_link = await send(stack, "grace@example.com")
    async with stack.browser() as grace:
        await sign_in(stack, grace, grace_link, "grace@example.com")
        assert (await grace.get(f"/portal/messages/{ada_id}/reply")).status_code == 404
        posted = await grace.post(f"/portal/messages/{ada_id}/reply", data={"body": "hi"})
        assert posted.status_code == 404


async def test_a_reply_is_audited_with_it_even_if_the_web_app_stops_once_the_workflow_has_it(
    stack: Stack,
) -> None:
    """The reply's audit event goes in the commit that makes the reply part of the
    thread, with the patient's client address the web app kept beside the pending reply:
    a web app that stops right after the workflow took the reply loses nothing."""
    secure_email_id, link = await send(stack)
    async with stack.browser() as patient:
        await sign_in(stack, patient, link, "ada@example.com")
    reply_id = str(uuid.uuid4())
    engine = make_engine(stack.settings.database_url)
    sessions = make_sessionmaker(engine)
    async with sessions() as db:
        secure_email = await secure_emails.find(db, secure_email_id)
        assert secure_email is not None
        # What the portal does up to the workflow's answer, and nothing after it.
        await replies.keep_pending(
            db, secure_email_id, reply_id, Written("RE: Plan", REPLY, []), "203.0.113.9"
        )
        temporal = await stack.app.state.app_state.temporal()
        await workflow_of(temporal, secure_email).execute_update(
            SecureEmailWorkflow.reply, ReplySubmitted(reply_id=reply_id)
        )

    async def audited() -> list[AuditEvent] | None:
        async with sessions() as db:
            found = await db.scalars(
                select(AuditEvent).where(
                    AuditEvent.secure_email_id == secure_email_id,
                    AuditEvent.action == AuditAction.REPLY.value,
                )
            )
            events = list(found.all())
        return events or None

    [event] = await eventually(audited, what="the reply's audit event")
    assert (event.actor_type, event.actor_id) == ("patient", secure_email.patient_id)
    assert (event.client_address, event.detail) == ("203.0.113.9", "0 attachment(s)")
    async with sessions() as db:
        assert await replies.reply(db, reply_id) is not None
    await engine.dispose()
