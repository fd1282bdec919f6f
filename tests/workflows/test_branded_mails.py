"""The mails the worker sends look like the practice (R20): its phone, address and logo
read from the database at the moment of sending, and still nothing of the message (R5)."""

from __future__ import annotations

import hashlib
import uuid
from email.message import EmailMessage

from sqlalchemy import update

from domain.secure_email import PasscodeRequest
from infra.db.models import Attachment, Patient, Practice
from infra.mail.patient_mails import LOGO_CONTENT_ID
from tests.fixtures.mail import png_image
from tests.workflows.conftest import Lifecycle
from workflows.secure_email import SecureEmailWorkflow

PHONE = "(555) 010-2233"
SPANISH_PASSCODE_SUBJECT = "Su código de acceso para Smile Dental"
ADDRESS = "12 Main St, Springfield, IL 62701"
FILE_NAME = "biopsy-pat-patient.pdf"
# The directory's patient, and what the office wrote (tests/workflows/conftest.py).
PHI = ("Pat Patient", "Treatment plan", "Your treatment plan is attached.", FILE_NAME)


async def brand(lifecycle: Lifecycle) -> None:
    async with lifecycle.directory.sessions() as db:
        await db.execute(
            update(Practice)
            .where(Practice.id == lifecycle.directory.practice_id)
            .values(phone=PHONE, address=ADDRESS, logo=png_image(), logo_type="image/png")
        )
        await db.commit()


async def attach(lifecycle: Lifecycle, secure_email_id: str) -> None:
    async with lifecycle.directory.sessions() as db:
        db.add(
            Attachment(
                secure_email_id=secure_email_id,
                object_key=f"test/{uuid.uuid4()}",
                filename=FILE_NAME,
                size=4,
                content_type="application/pdf",
                sha256=hashlib.sha256(b"%PDF").hexdigest(),
            )
        )
        await db.commit()


def check_branded(mail: EmailMessage) -> None:
    raw = mail.as_string()
    for secret in PHI:
        assert secret not in raw
    text, html = mail.get_body(("plain",)), mail.get_body(("html",))
    assert text is not None and html is not None
    for part in (str(text.get_content()), str(html.get_content())):
        assert f"Questions? Call Smile Dental at {PHONE}." in part
        assert ADDRESS in part
    assert f'src="cid:{LOGO_CONTENT_ID}"' in str(html.get_content())
    [image] = [part for part in mail.walk() if part.get_content_maintype() == "image"]
    assert image["Content-ID"] == f"<{LOGO_CONTENT_ID}>"
    assert image.get_content() == png_image()


async def test_notice_and_passcode_carry_the_practice_branding(lifecycle: Lifecycle) -> None:
    await brand(lifecycle)
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    # A file in the thread before the next notice and the passcode are mailed.
    await attach(lifecycle, handle.id.removeprefix("secure-email-"))
    await handle.execute_update(SecureEmailWorkflow.resend_notice, await lifecycle.resend(handle))
    await lifecycle.mail(2)
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    passcode = await lifecycle.latest_passcode(3)
    notice, resent, passcode_mail = await lifecycle.mail(3)

    for mail in (notice, resent):
        assert mail["Subject"] == "Secure email from Smile Dental"
        check_branded(mail)
    assert passcode_mail["Subject"] == "Your passcode for Smile Dental"
    check_branded(passcode_mail)
    assert passcode in str(passcode_mail.get_body(("html",)).get_content())  # type: ignore[union-attr]


async def test_a_patient_who_reads_spanish_gets_the_notice_and_passcode_in_spanish(
    lifecycle: Lifecycle,
) -> None:
    async with lifecycle.directory.sessions() as db:
        await db.execute(
            update(Patient)
            .where(Patient.id == lifecycle.directory.patient_id)
            .values(language="es")
        )
        await db.commit()
    handle = await lifecycle.start()
    await lifecycle.mail(1)
    await handle.execute_update(SecureEmailWorkflow.request_passcode, PasscodeRequest())
    await lifecycle.latest_passcode(2)
    notice, passcode_mail = await lifecycle.mail(2)

    assert notice["Subject"] == "Correo seguro de Smile Dental"
    assert "Ver correo seguro" in str(notice.get_body(("html",)).get_content())  # type: ignore[union-attr]
    assert passcode_mail["Subject"] == SPANISH_PASSCODE_SUBJECT
    for mail in (notice, passcode_mail):
        for secret in PHI:
            assert secret not in mail.as_string()
