"""The practice's phone, address and logo (R20): ``/api/v1/practice``, the Settings page
and its logo upload, each refusal in words, each change audited."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select

from domain.practice import MAX_LOGO_BYTES
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.models import Practice
from infra.settings import Settings
from tests.conftest import Office
from tests.fixtures.forms import settings_form
from tests.fixtures.mail import JPEG_START, png_image
from tests.web.test_staff import add_member

PHONE = "(555) 010-2233"
ADDRESS = "12 Main St, Springfield, IL 62701"
SETTINGS_CHANGE = "office.settings_change"

# Each refused phone or address, and the words that say why.
BAD_PHONES = [
    "call the front desk",  # letters
    "555#010#2233",  # a character phones are not written with
    "010-223",  # 6 digits
    "1" * 21,  # 21 digits
    "+1 (555) 010-2233 " + "-" * 30,  # over 40 characters
]
BAD_ADDRESSES = ["x" * 301, "12 Main St\nSpringfield", "12 Main St\x00"]
PHONE_WORDS = "Enter a phone number of 7 to 20 digits"
ADDRESS_WORDS = "Enter the address on one line, at most 300 characters"


async def stored(settings: Settings, practice_id: str) -> tuple[bytes | None, str | None]:
    """The logo as the database holds it (the API does not show it)."""
    engine = make_engine(settings.database_url)
    async with make_sessionmaker(engine)() as db:
        row = (
            await db.execute(
                select(Practice.logo, Practice.logo_type).where(Practice.id == practice_id)
            )
        ).one()
    await engine.dispose()
    return row.logo, row.logo_type


# The API -------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_change_practice_phone_and_address(office: Office, method: str) -> None:
    response = await office.api.request(
        method,
        "/api/v1/practice",
        json={"phone": f"  {PHONE} ", "address": "12 Main St,   Springfield, IL 62701 "},
    )
    assert response.status_code == 200, response.text
    # Trimmed, inner runs of spaces made one.
    assert response.json()["phone"] == PHONE and response.json()["address"] == ADDRESS
    again = (await office.api.get("/api/v1/practice")).json()
    assert (again["phone"], again["address"]) == (PHONE, ADDRESS)
    details = {e["detail"] for e in await office.audit_events(action=SETTINGS_CHANGE)}
    assert details == {f"phone: none → {PHONE}", f"address: none → {ADDRESS}"}


@pytest.mark.parametrize("empty", [None, "", "   "])
async def test_clear_practice_phone_and_address(office: Office, empty: str | None) -> None:
    await office.api.patch("/api/v1/practice", json={"phone": PHONE, "address": ADDRESS})
    response = await office.api.patch("/api/v1/practice", json={"phone": empty, "address": empty})
    assert response.status_code == 200, response.text
    assert response.json()["phone"] is None and response.json()["address"] is None
    # Left out, they keep their value.
    await office.api.patch("/api/v1/practice", json={"phone": PHONE})
    kept = await office.api.patch("/api/v1/practice", json={"expiry_days": 9})
    assert kept.json()["phone"] == PHONE


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [("phone", phone, PHONE_WORDS) for phone in BAD_PHONES]
    + [("address", address, ADDRESS_WORDS) for address in BAD_ADDRESSES]
    + [("phone", 5550102233, "string"), ("address", ["12 Main St"], "string")],
)
async def test_change_practice_refuses_bad_phone_or_address(
    office: Office, field: str, value: object, words: str
) -> None:
    await refused_change(office, "PATCH", field, value, words)


@pytest.mark.parametrize(("field", "value"), [("phone", "call us"), ("address", "a\nb")])
async def test_put_practice_refuses_bad_phone_or_address(
    office: Office, field: str, value: str
) -> None:
    words = PHONE_WORDS if field == "phone" else ADDRESS_WORDS
    current = (await office.api.get("/api/v1/practice")).json()
    await refused_change(office, "PUT", field, {**current, field: value}, words)


async def refused_change(
    office: Office, method: str, field: str, value: object, words: str
) -> None:
    """``value`` for ``field`` (or a whole body) is refused naming the field, in words."""
    before = (await office.api.get("/api/v1/practice")).json()
    body = value if isinstance(value, dict) else {field: value}
    response = await office.api.request(method, "/api/v1/practice", json=body)
    assert response.status_code == 422
    [problem] = response.json()["detail"]
    assert problem["loc"][-1] == field
    assert words in problem["msg"]
    assert (await office.api.get("/api/v1/practice")).json() == before
    assert await office.audit_events(action=SETTINGS_CHANGE) == []


async def test_phone_with_seven_and_twenty_digits_is_taken(office: Office) -> None:
    for phone in ("010-2233", "+1 555.010.2233", "+" + "1" * 20):
        response = await office.api.patch("/api/v1/practice", json={"phone": phone})
        assert response.status_code == 200, (phone, response.text)


# The Settings page ---------------------------------------------------------------------


async def test_settings_page_saves_phone_and_address(office: Office) -> None:
    form = settings_form(phone=PHONE, address=ADDRESS)
    response = await office.browser.post("/settings", data=form)
    assert response.status_code == 303
    practice = (await office.api.get("/api/v1/practice")).json()
    assert practice["phone"] == PHONE and practice["address"] == ADDRESS
    page = await office.browser.get("/settings?saved=1")
    assert f'value="{PHONE}"' in page.text and f'value="{ADDRESS}"' in page.text
    # Blank removes them.
    cleared = await office.browser.post("/settings", data=settings_form(phone="", address=""))
    assert cleared.status_code == 303
    practice = (await office.api.get("/api/v1/practice")).json()
    assert practice["phone"] is None and practice["address"] is None


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [("phone", phone, PHONE_WORDS) for phone in BAD_PHONES]
    + [("address", address, ADDRESS_WORDS) for address in BAD_ADDRESSES],
)
async def test_settings_page_refuses_bad_phone_or_address(
    office: Office, field: str, value: str, words: str
) -> None:
    before = (await office.api.get("/api/v1/practice")).json()
    response = await office.browser.post("/settings", data=settings_form() | {field: value})
    assert response.status_code == 422
    assert f"{field.capitalize()}: {words}" in response.text
    assert f'id="{field}-error"' in response.text
    assert (await office.api.get("/api/v1/practice")).json() == before


async def test_settings_page_for_admins_only(
    app: FastAPI, settings: Settings, office: Office
) -> None:
    clerk = await add_member(app, settings, office.practice_id)
    try:
        for path, form in [("/settings", settings_form(phone=PHONE)), ("/settings/logo", {})]:
            refused = await clerk.browser.post(path, data=form)
            assert refused.status_code in (303, 403, 404), refused.status_code
        refused = await clerk.api.patch("/api/v1/practice", json={"phone": PHONE})
        assert refused.status_code == 403
    finally:
        await clerk.api.aclose()
        await clerk.browser.aclose()
    assert (await office.api.get("/api/v1/practice")).json()["phone"] is None
    assert await stored(settings, office.practice_id) == (None, None)


# The logo ------------------------------------------------------------------------------


async def upload(
    office: Office, name: str, data: bytes, content_type: str = "image/png"
) -> httpx.Response:
    return await office.browser.post(
        "/settings/logo", data={}, files={"logo": (name, data, content_type)}
    )


async def test_upload_and_remove_logo(settings: Settings, office: Office) -> None:
    logo = png_image()
    page = await office.browser.get("/settings")
    assert "No logo" in page.text and "Remove logo" not in page.text

    response = await upload(office, "logo.png", logo)
    assert response.status_code == 303
    assert await stored(settings, office.practice_id) == (logo, "image/png")
    page = await office.browser.get("/settings?saved=logo")
    assert "Logo saved." in page.text and "Remove logo" in page.text

    # A JPEG replaces it, whatever the file is called.
    jpeg = JPEG_START + b"\x00" * 100
    assert (await upload(office, "logo.png", jpeg)).status_code == 303
    assert await stored(settings, office.practice_id) == (jpeg, "image/jpeg")

    removed = await office.browser.post("/settings/logo/remove")
    assert removed.status_code == 303
    assert await stored(settings, office.practice_id) == (None, None)
    assert "Logo removed." in (await office.browser.get("/settings?saved=logo-removed")).text
    details = [e["detail"] for e in await office.audit_events(action=SETTINGS_CHANGE)]
    assert sorted(details) == sorted(
        [
            "logo: none → image/png, 1 KB",
            "logo: image/png → image/jpeg, 1 KB",
            "logo: image/jpeg → none",
        ]
    )


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        # The name and type say PNG; the bytes are a GIF, a text, an SVG.
        ("logo.png", b"GIF89a" + b"\x00" * 50, "must be a PNG or JPEG image"),
        ("logo.png", b"Our logo", "must be a PNG or JPEG image"),
        ("logo.jpg", b'<svg xmlns="http://www.w3.org/2000/svg"/>', "must be a PNG or JPEG"),
        ("logo.png", png_image()[:8] + b"\x00" * MAX_LOGO_BYTES, "it may be at most 200 KB"),
        ("logo.png", b"", "Choose a PNG or JPEG file"),
    ],
)
async def test_upload_logo_refused(
    settings: Settings, office: Office, name: str, data: bytes, words: str
) -> None:
    await upload(office, "logo.png", png_image())
    response = await upload(office, name, data)
    assert response.status_code == 422
    assert words in response.text
    assert 'id="logo-error"' in response.text
    # The logo there before stays.
    assert await stored(settings, office.practice_id) == (png_image(), "image/png")


async def test_upload_logo_without_a_file_refused(office: Office) -> None:
    response = await office.browser.post("/settings/logo", data={}, files={"other": ("x", b"")})
    assert response.status_code == 422
    assert "Choose a PNG or JPEG file" in response.text


async def test_remove_logo_when_there_is_none(office: Office) -> None:
    removed = await office.browser.post("/settings/logo/remove")
    assert removed.status_code == 303
    assert await office.audit_events(action=SETTINGS_CHANGE) == []
