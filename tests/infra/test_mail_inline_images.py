"""Inline images (the practice's logo) in ``MailMessage`` and both transports: a
``cid:`` part of a multipart/related HTML over SMTP, an inline attachment with its
``content_id`` over SendGrid; never a remote URL."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from infra.mail.message import InlineImage
from infra.mail.sendgrid import SendGridTransport
from infra.mail.smtp import SmtpTransport
from tests.fixtures.mail import JPEG_START, make_message, png_image
from tests.fixtures.sendgrid import API_KEY, FakeSendGrid, attachments_problems
from tests.infra.test_mail_smtp import RecordingHandler, received, smtp_server  # noqa: F401

HTML = '<p><img src="cid:practice-logo@securemail" alt="Smiles Dental"> Dear patient</p>'


def logo(**overrides: Any) -> InlineImage:
    fields: dict[str, Any] = {
        "content_id": "practice-logo@securemail",
        "content_type": "image/png",
        "data": png_image(),
    }
    return InlineImage(**(fields | overrides))


async def test_send_inline_image_smtp(
    smtp_server: tuple[RecordingHandler, SmtpTransport],  # noqa: F811
) -> None:
    handler, transport = smtp_server

    await transport.send(make_message(html=HTML, inline_images=(logo(),)))

    mail = received(handler.envelopes[0])
    assert mail.get_content_type() == "multipart/alternative"
    text, related = mail.iter_parts()
    assert text.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html, image = related.iter_parts()
    assert html.get_content_type() == "text/html" and "cid:practice-logo@securemail" in str(
        html.get_content()
    )
    assert image.get_content_type() == "image/png"
    assert image["Content-ID"] == "<practice-logo@securemail>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == png_image()


async def test_send_inline_image_sendgrid(sendgrid_api: FakeSendGrid) -> None:
    transport = SendGridTransport(api_key=API_KEY, api_url=sendgrid_api.url, timeout=5)
    jpeg = JPEG_START + b"\x00" * 10

    await transport.send(
        make_message(html=HTML, inline_images=(logo(content_type="image/jpeg", data=jpeg),))
    )

    [request] = sendgrid_api.accepted
    assert request["attachments"] == [
        {
            "content": base64.b64encode(jpeg).decode(),
            "type": "image/jpeg",
            "filename": "practice-logo.jpg",
            "disposition": "inline",
            "content_id": "practice-logo@securemail",
        }
    ]


async def test_send_without_inline_images_sendgrid(sendgrid_api: FakeSendGrid) -> None:
    transport = SendGridTransport(api_key=API_KEY, api_url=sendgrid_api.url, timeout=5)
    await transport.send(make_message(html=HTML))
    assert "attachments" not in sendgrid_api.accepted[0]


@pytest.mark.parametrize(
    ("attachments", "field"),
    [
        ([], "attachments"),
        ([{"content": "not base64!", "filename": "a.png"}], "attachments.0.content"),
        (
            [{"content": "aGk=", "disposition": "inline", "filename": "a"}],
            "attachments.0.content_id",
        ),
        ([{"content": "aGk="}], "attachments.0.filename"),
        ([{"content": "aGk=", "filename": "a", "disposition": "x"}], "attachments.0.disposition"),
    ],
)
def test_fake_sendgrid_checks_attachments(attachments: list[Any], field: str) -> None:
    assert field in [problem["field"] for problem in attachments_problems(attachments)]


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"content_type": "image/gif"}, "content_type"),
        ({"content_type": "image/svg+xml"}, "content_type"),
        ({"content_id": "<logo@x>"}, "content_id"),
        ({"content_id": "https://example.com/logo.png"}, "content_id"),
        ({"data": b""}, "data"),
    ],
)
def test_inline_image_refused(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        logo(**overrides)
    assert [error["loc"][0] for error in caught.value.errors()] == [problem]


def test_inline_images_need_html_and_distinct_ids() -> None:
    with pytest.raises(ValidationError, match="need an HTML part"):
        make_message(inline_images=(logo(),))
    with pytest.raises(ValidationError, match="distinct content ids"):
        make_message(html=HTML, inline_images=(logo(), logo()))
