"""The patient portal: passcode refusals, expiry warning, sessions, Send again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select, update

from domain.passcodes import MAX_PASSCODES_PER_HOUR
from domain.secure_email import workflow_id_for
from infra.db.engine import make_engine
from infra.db.models import PortalSession, SecureEmail
from tests.fixtures.passcodes import another_code
from tests.fixtures.stack import Stack
from workflows.legacy import LEGACY_WORKFLOW_VERSION

SUBJECT = "Treatment plan"
BODY = "Two fillings, upper left."


async def send(stack: Stack, email: str = "ada@example.com") -> tuple[str, str]:
    patient_id = await stack.add_patient(email.split("@")[0].title(), email)
    files = [("plan.pdf", b"%PDF-1.4\n", "application/pdf")]
    secure_email_id = await stack.send_secure(patient_id, SUBJECT, BODY, files)
    return secure_email_id, await stack.notice_link(email)


async def ask_passcode(
    stack: Stack, patient: httpx.AsyncClient, link: str, email: str = "ada@example.com"
) -> str:
    """Asks for a passcode on the notice link's page: the code the next mail brought."""
    before = len(await stack.mail_to(email, 1))
    await patient.post(f"{link}/passcode")
    return await stack.passcode(email, before + 1)


async def passcode_accepted(patient: httpx.AsyncClient, link: str, typed: str) -> None:
    """The passcode page takes ``typed`` and sends the patient on to the message."""
    accepted = await patient.post(f"{link}/verify", data={"passcode": typed})
    assert accepted.status_code == 303, accepted.text


async def sign_in(stack: Stack, patient: httpx.AsyncClient, link: str, email: str) -> str:
    """Returns the message page's path."""
    passcode = await ask_passcode(stack, patient, link, email)
    verified = await patient.post(f"{link}/verify", data={"passcode": passcode})
    assert verified.status_code == 303
    return str(verified.headers["location"])


async def run_sql(stack: Stack, statement: object) -> None:
    engine = make_engine(stack.settings.database_url)
    async with engine.begin() as connection:
        await connection.execute(statement)  # type: ignore[call-overload]
    await engine.dispose()


async def expire_now(stack: Stack, secure_email_id: str, *, marked: bool = True) -> None:
    """Its seven days are over: just now, and (``marked``) the workflow recorded it, or
    not yet (the portal must refuse it on the time alone)."""
    values: dict[str, object] = {"expires_at": datetime.now(UTC) - timedelta(seconds=1)}
    if marked:
        values["status"] = "expired"
    await run_sql(
        stack, update(SecureEmail).where(SecureEmail.id == secure_email_id).values(**values)
    )


async def test_verify_refuses_wrong_and_malformed_passcodes(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        passcode = await ask_passcode(stack, patient, link)
        malformed = await patient.post(f"{link}/verify", data={"passcode": "12ab"})
        assert malformed.status_code == 422
        assert "Enter the 8-digit passcode" in malformed.text
        wrong = another_code(passcode)
        refused = await patient.post(f"{link}/verify", data={"passcode": wrong})
        assert refused.status_code == 422
        assert "4 tries left" in refused.text
        assert SUBJECT not in refused.text
        # Spaces from copying and pasting are forgiven.
        spaced = f"{passcode[:4]} {passcode[4:]}"
        await passcode_accepted(patient, link, spaced)


async def test_passcode_page_says_what_to_do_on_a_phone(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        asked = await patient.post(f"{link}/passcode")
        page = await patient.get(asked.headers["location"])
        assert page.status_code == 200
        # The address the code went to, masked: its first letter and its domain.
        assert "We emailed an 8-digit code to <strong>a•••@example.com</strong>." in page.text
        assert "Open your email, copy the code, come back here." in page.text
        assert "ada@example.com" not in page.text
        field = page.text.split('<input id="passcode"')[1].split(">")[0]
        assert 'inputmode="numeric"' in field and 'autocomplete="one-time-code"' in field
        assert "maxlength" not in field  # "1234 5678" pasted must arrive whole
        assert '<label for="passcode">Passcode</label>' in page.text
        # Verify and "Send me a new code": two forms, two full buttons.
        verify, new_code = page.text.split("</form>")[-3:-1]
        assert f'action="{link}/verify"' in verify
        assert ">Verify</button>" in verify and "Send me a new code" not in verify
        assert 'class="outline">Send me a new code</button>' in new_code


async def test_passcode_pasted_with_dashes_is_accepted_letters_are_not(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        passcode = await ask_passcode(stack, patient, link)
        # A letter among the digits: refused before the workflow is asked, no try used.
        for typed in (f"{passcode[:7]}a", f"{passcode[:4]}-{passcode[4:7]}O", "abcd-efgh"):
            refused = await patient.post(f"{link}/verify", data={"passcode": typed})
            assert refused.status_code == 422
            assert "Enter the 8-digit passcode from the email." in refused.text
        wrong = another_code(passcode)
        counted = await patient.post(f"{link}/verify", data={"passcode": wrong})
        assert "4 tries left" in counted.text
        dashed = f" {passcode[:4]}-{passcode[4:]} "
        await passcode_accepted(patient, link, dashed)


async def test_passcode_burned_after_five_wrong_tries(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        passcode = await ask_passcode(stack, patient, link)
        wrong = another_code(passcode)
        for _ in range(5):
            last = await patient.post(f"{link}/verify", data={"passcode": wrong})
        assert "no longer works" in last.text and "Send me a new code" in last.text
        right = await patient.post(f"{link}/verify", data={"passcode": passcode})
        assert right.status_code == 422
        assert "no longer works" in right.text


async def test_unknown_link_shows_page_not_found(stack: Stack) -> None:
    async with stack.browser() as patient:
        response = await patient.get("/m/not-a-real-token")
        assert response.status_code == 404
        assert "This link is not valid" in response.text
        assert "text/html" in response.headers["content-type"]


async def test_expired_link_shows_warning_and_nothing_else(stack: Stack) -> None:
    secure_email_id, link = await send(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        attachments = (
            await stack.office.api.get(f"/api/v1/secure-emails/{secure_email_id}")
        ).json()["attachments"]
        expired_at = datetime.now(UTC) - timedelta(minutes=1)
        await run_sql(
            stack,
            update(SecureEmail)
            .where(SecureEmail.id == secure_email_id)
            .values(expires_at=expired_at),
        )
        for response in (
            await patient.get(link),
            await patient.post(f"{link}/passcode"),
            await patient.post(f"{link}/verify", data={"passcode": "12345678"}),
            await patient.get(message_path),
            await patient.get(f"{message_path}/attachments/{attachments[0]['id']}"),
        ):
            assert response.status_code == 410
            assert "has expired" in response.text
            assert "contact Smile Dental" in response.text
            assert SUBJECT not in response.text and BODY not in response.text
    # Only the notice and the one passcode: nothing was mailed after expiry.
    assert len(await stack.mail_to("ada@example.com", 2)) == 2


async def test_other_patient_cannot_open_message_or_file(stack: Stack) -> None:
    ada_email_id, _ = await send(stack, "ada@example.com")
    _, grace_link = await send(stack, "grace@example.com")
    ada_file = (await stack.office.api.get(f"/api/v1/secure-emails/{ada_email_id}")).json()[
        "attachments"
    ][0]["id"]
    async with stack.browser() as grace:
        await sign_in(stack, grace, grace_link, "grace@example.com")
        message = await grace.get(f"/portal/messages/{ada_email_id}")
        file = await grace.get(f"/portal/messages/{ada_email_id}/attachments/{ada_file}")
        assert message.status_code == 404 and file.status_code == 404
        assert SUBJECT not in message.text


async def test_sign_out_then_back_shows_nothing(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        assert SUBJECT in (await patient.get(message_path)).text
        stolen = patient.cookies["portal_session"]
        signed_out = await patient.post("/portal/sign-out", follow_redirects=True)
        assert "signed out" in signed_out.text
        again = await patient.get(message_path)
        assert again.status_code == 401 and SUBJECT not in again.text
        # The session ended on the server: a saved copy of the cookie opens nothing.
        patient.cookies.set("portal_session", stolen)
        replay = await patient.get(message_path)
        assert replay.status_code == 401 and SUBJECT not in replay.text


async def test_idle_session_times_out(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        idle_since = datetime.now(UTC) - timedelta(minutes=15, seconds=1)
        await run_sql(stack, update(PortalSession).values(last_seen_at=idle_since))
        response = await patient.get(message_path)
        assert response.status_code == 401
        assert SUBJECT not in response.text


async def test_idle_clock_moves_at_most_every_thirty_seconds(stack: Stack) -> None:
    """Each page does not write the session: the clock moves once it is 30 s behind,
    so an idle session ends at most 30 s early, never late."""
    secure_email_id, link = await send(stack)
    patient_id = select(SecureEmail.patient_id).where(SecureEmail.id == secure_email_id)
    ours = PortalSession.patient_id == patient_id.scalar_subquery()
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        for behind, moved in ((timedelta(seconds=10), False), (timedelta(seconds=40), True)):
            seen = datetime.now(UTC) - behind
            await run_sql(stack, update(PortalSession).where(ours).values(last_seen_at=seen))
            assert (await patient.get(message_path)).status_code == 200
            engine = make_engine(stack.settings.database_url)
            async with engine.connect() as connection:
                now_seen = await connection.scalar(select(PortalSession.last_seen_at).where(ours))
            await engine.dispose()
            assert (now_seen != seen) is moved, behind


async def test_send_again_after_expiry(stack: Stack) -> None:
    secure_email_id, _ = await send(stack)
    page = await stack.office.browser.get(f"/secure-emails/{secure_email_id}")
    assert "Send again" not in page.text
    await expire_now(stack, secure_email_id)
    page = await stack.office.browser.get(f"/secure-emails/{secure_email_id}")
    assert "Send again" in page.text
    again = await stack.office.browser.post(f"/secure-emails/{secure_email_id}/send-again")
    assert again.status_code == 303
    new_id = again.headers["location"].split("/")[2].split("?")[0]
    assert new_id != secure_email_id
    copy = (await stack.office.api.get(f"/api/v1/secure-emails/{new_id}")).json()
    assert copy["subject"] == SUBJECT
    assert [a["filename"] for a in copy["attachments"]] == ["plan.pdf"]
    notices = [
        m for m in await stack.mail_to("ada@example.com", 2) if "Secure email" in m["Subject"]
    ]
    assert len(notices) == 2


async def test_session_ends_twelve_hours_after_verify(stack: Stack) -> None:
    _, link = await send(stack)
    async with stack.browser() as patient:
        message_path = await sign_in(stack, patient, link, "ada@example.com")
        # Active all along (last seen just now), but verified 12 hours ago.
        now = datetime.now(UTC)
        await run_sql(
            stack,
            update(PortalSession).values(
                created_at=now - timedelta(hours=12), expires_at=now - timedelta(seconds=1)
            ),
        )
        response = await patient.get(message_path)
        assert response.status_code == 401
        assert SUBJECT not in response.text


async def test_version_1_message_opens_with_the_passcode_in_clear(stack: Stack) -> None:
    """A message whose lifecycle runs on the legacy workflow (sent before this release):
    the portal asks it for a passcode and sends it the typed code itself, the only thing
    its secret-based passcodes can check (``web.legacy``)."""
    email = "vera@example.com"
    patient_id = await stack.add_patient("Vera", email)
    secure_email_id = await stack.send_secure(patient_id, SUBJECT, BODY)
    link = await stack.notice_link(email)
    # As such a message stands: its row says version 1 and the legacy workflow runs it,
    # under its id, with the link token in its input.
    temporal = await stack.app.state.app_state.temporal()
    await temporal.get_workflow_handle(workflow_id_for(secure_email_id)).terminate("test")
    await run_sql(
        stack,
        update(SecureEmail)
        .where(SecureEmail.id == secure_email_id)
        .values(workflow_version=LEGACY_WORKFLOW_VERSION),
    )
    await stack.start_legacy(secure_email_id, patient_id, email, link.removeprefix("/m/"))
    await stack.mail_to(email, 2)  # its own notice
    async with stack.browser() as patient:
        passcode = await ask_passcode(stack, patient, link, email)
        wrong = another_code(passcode)
        refused = await patient.post(f"{link}/verify", data={"passcode": wrong})
        assert refused.status_code == 422 and "4 tries left" in refused.text
        verified = await patient.post(f"{link}/verify", data={"passcode": passcode})
        assert verified.status_code == 303, verified.text
        page = await patient.get(verified.headers["location"])
        assert page.status_code == 200 and BODY in page.text


async def test_too_many_passcodes_for_one_message_says_when_to_ask_again(stack: Stack) -> None:
    """The workflow's own limit (5 per message per hour) answers as the web's limits do:
    429 with Retry-After, so a patient's browser or a script knows when to try again."""
    _, link = await send(stack)
    async with stack.browser() as patient:
        for _ in range(MAX_PASSCODES_PER_HOUR):
            asked = await patient.post(f"{link}/passcode")
            assert asked.status_code == 303, asked.text
        refused = await patient.post(f"{link}/passcode")
    assert refused.status_code == 429, refused.text
    assert "Too many passcodes were requested" in refused.text
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
