"""The practice's phone on the portal pages a patient may stop at (R20): the link, the
passcode, the expired, the withdrawn and the signed-out page; none when it has none."""

from __future__ import annotations

from sqlalchemy import update

from infra.db.models import Practice
from tests.fixtures.stack import Stack
from tests.web.test_portal import expire_now, run_sql, send, sign_in

PHONE = "(555) 010-2233"
CALL = "Questions? Call Smile Dental at"
TEL = 'href="tel:5550102233"'


async def set_phone(stack: Stack, phone: str | None) -> None:
    await run_sql(
        stack,
        update(Practice).where(Practice.id == stack.office.practice_id).values(phone=phone),
    )


def shows_phone(text: str) -> bool:
    return CALL in text and PHONE in text and TEL in text


async def test_portal_pages_show_the_practice_phone(stack: Stack) -> None:
    await set_phone(stack, PHONE)
    secure_email_id, link = await send(stack, "ada@example.com")
    async with stack.browser() as patient:
        assert shows_phone((await patient.get(link)).text)
        asked = await patient.post(f"{link}/passcode", follow_redirects=True)
        assert "Verify" in asked.text and shows_phone(asked.text)
        await sign_in(stack, patient, link, "ada@example.com")
        signed_out = await patient.post("/portal/sign-out", follow_redirects=True)
        assert "You are signed out" in signed_out.text and shows_phone(signed_out.text)
        # The signed-out page is named by the practice's id only.
        assert signed_out.url.query.decode() == f"practice={stack.office.practice_id}"

        await expire_now(stack, secure_email_id)
        expired = await patient.get(link)
        assert expired.status_code == 410 and shows_phone(expired.text)

    withdrawn_id, withdrawn_link = await send(stack, "bob@example.com")
    # Withdrawn as the office does it: the workflow records it, so its own "sent" (written
    # once the notice went) cannot land after it, as a row changed by hand could.
    withdrawn = await stack.office.api.post(f"/api/v1/secure-emails/{withdrawn_id}/withdraw")
    assert withdrawn.status_code == 200, withdrawn.text
    async with stack.browser() as patient:
        page = await patient.get(withdrawn_link)
        assert "was withdrawn" in page.text and shows_phone(page.text)


async def test_portal_pages_without_a_phone(stack: Stack) -> None:
    await set_phone(stack, None)
    _, link = await send(stack, "cy@example.com")
    async with stack.browser() as patient:
        assert CALL not in (await patient.get(link)).text
        asked = await patient.post(f"{link}/passcode", follow_redirects=True)
        assert "Verify" in asked.text and CALL not in asked.text
        # A signed-out page of no practice, or one asked for with a made-up id.
        for path in ("/portal/signed-out", "/portal/signed-out?practice=nobody"):
            page = await patient.get(path)
            assert page.status_code == 200 and CALL not in page.text
