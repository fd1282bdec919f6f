"""The patient mails from their templates (R5, R6, R20): each mail in each language, as
the SMTP transport builds it — parts, button, phone and address, logo, no PHI, escaping."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from infra.i18n import LOCALES_DIR
from infra.mail.message import MailMessage
from infra.mail.patient_mails import (
    LOGO_CONTENT_ID,
    TEMPLATES,
    PatientMail,
    Practice,
    notice_mail,
    passcode_mail,
)
from infra.mail.smtp import build_email
from tests.fixtures.mail import png_image

LINK = "https://portal.test/m/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd"
EXPIRES = datetime(2026, 12, 13, 15, 0, tzinfo=UTC)  # 10:00 in New York
VALID_UNTIL = datetime(2026, 12, 6, 15, 15, tzinfo=UTC)
PASSCODE = "48213957"
PHONE = "(555) 010-2233"
ADDRESS = "12 Main St, Springfield, IL 62701"
LANGUAGES = ("en", "es")
# What only the patient and the office may read: never in a mail (R5).
PHI = ("Ann Patient", "Your biopsy results", "The biopsy shows", "biopsy-ann.pdf")

MAILS: dict[str, Callable[[Practice, str], PatientMail]] = {
    "notice": lambda practice, language: notice_mail(practice, LINK, EXPIRES, language),
    "reminder": lambda practice, language: notice_mail(
        practice, LINK, EXPIRES, language, reminder=True
    ),
    "passcode": lambda practice, language: passcode_mail(practice, PASSCODE, VALID_UNTIL, language),
}
# Each mail's subject, and the words its button or code comes with, by language.
SUBJECTS = {
    ("notice", "en"): "Secure email from Demo Dental",
    ("notice", "es"): "Correo seguro de Demo Dental",
    ("reminder", "en"): "Reminder: Secure email from Demo Dental",
    ("reminder", "es"): "Recordatorio: correo seguro de Demo Dental",
    ("passcode", "en"): "Your passcode for Demo Dental",
    ("passcode", "es"): "Su código de acceso para Demo Dental",
}
BUTTON = {"en": "View Secure Email", "es": "Ver correo seguro"}
CALL = {
    "en": f"Questions? Call Demo Dental at {PHONE}.",
    "es": f"¿Tiene preguntas? Llame a Demo Dental al {PHONE}.",
}
each_mail = pytest.mark.parametrize("mail", list(MAILS))
each_language = pytest.mark.parametrize("language", LANGUAGES)


def practice(**overrides: object) -> Practice:
    fields: dict[str, object] = {"name": "Demo Dental", "time_zone": "America/New_York"}
    return Practice(**(fields | overrides))  # type: ignore[arg-type]


def branded() -> Practice:
    return practice(phone=PHONE, address=ADDRESS, logo=png_image(), logo_type="image/png")


def as_sent(mail: PatientMail) -> EmailMessage:
    """The mail as the SMTP transport writes it, parsed back as a mail program would."""
    message = MailMessage(
        to="ann.patient@example.org",
        sender="office@demo-dental.example",
        sender_name="Demo Dental",
        subject=mail.subject,
        text=mail.text,
        html=mail.html,
        inline_images=mail.inline_images,
        message_id="<secure-email-1.notice@demo-dental.example>",
    )
    parser = BytesParser(_class=EmailMessage, policy=default_policy)
    return parser.parsebytes(bytes(build_email(message)))


def parts(sent: EmailMessage) -> tuple[str, str]:
    text, html = sent.get_body(("plain",)), sent.get_body(("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


class Elements(HTMLParser):
    """Every element with its attributes, its parent's, and the text directly in it."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str], dict[str, str], list[str]]] = []
        self._open: list[tuple[str, dict[str, str], list[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag in ("img", "br", "meta"):
            self.found.append((tag, attributes, self._parent(), []))
            return
        self._open.append((tag, attributes, []))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][0] == tag:
            name, attributes, text = self._open.pop()
            self.found.append((name, attributes, self._parent(), text))

    def handle_data(self, data: str) -> None:
        if self._open and data.strip():
            self._open[-1][2].append(data.strip())

    def _parent(self) -> dict[str, str]:
        return self._open[-1][1] if self._open else {}


def elements(html: str, tag: str) -> list[tuple[dict[str, str], dict[str, str], str]]:
    parser = Elements()
    parser.feed(html)
    return [
        (attrs, parent, " ".join(text)) for name, attrs, parent, text in parser.found if name == tag
    ]


def pixels(style: str, name: str) -> list[int]:
    """The pixel values of ``name`` in an inline style (``padding:14px 36px`` → [14, 36])."""
    for declaration in style.split(";"):
        key, _, value = declaration.partition(":")
        if key.strip() == name:
            return [int(v.removesuffix("px")) for v in value.split() if v.endswith("px")]
    return []


@each_mail
@each_language
def test_render_patient_mail_parts(mail: str, language: str) -> None:
    sent = as_sent(MAILS[mail](practice(), language))

    assert sent["Subject"] == SUBJECTS[mail, language]
    text, html = parts(sent)
    assert text.strip() and html.strip()
    assert f'<html lang="{language}"' in html
    # Inline styles only: no style block, no stylesheet, nothing fetched from a server.
    assert "<style" not in html and "<link" not in html
    assert "http" not in "".join(attrs.get("src", "") for attrs, _, _ in elements(html, "img"))
    for table, _, _ in elements(html, "table"):
        assert table.get("role") == "presentation"


@pytest.mark.parametrize("mail", ["notice", "reminder"])
@each_language
def test_render_notice_button(mail: str, language: str) -> None:
    text, html = parts(as_sent(MAILS[mail](practice(), language)))

    [button] = [found for found in elements(html, "a") if found[2] == BUTTON[language]]
    link, cell, _ = button
    assert link["href"] == LINK
    # A bulletproof button: the cell is coloured and at least 44 px tall.
    assert "background-color" in cell["style"] and cell.get("bgcolor")
    assert int(cell["height"]) >= 44 and pixels(cell["style"], "height")[0] >= 44
    vertical, _ = pixels(link["style"], "padding")
    assert 2 * vertical + pixels(link["style"], "line-height")[0] >= 44
    # The text part carries the same link, as its own line.
    assert f"{BUTTON[language]}: {LINK}" in text


@pytest.mark.parametrize("mail", ["notice", "reminder"])
def test_render_notice_expiry_in_practice_zone(mail: str) -> None:
    english, _ = parts(as_sent(MAILS[mail](practice(), "en")))
    spanish, _ = parts(as_sent(MAILS[mail](practice(), "es")))
    tokyo, _ = parts(as_sent(MAILS[mail](practice(time_zone="Asia/Tokyo"), "en")))

    assert "Dec 13, 2026, 10:00\u202fAM EST" in english
    assert "13 dic 2026, 10:00" in spanish
    assert "Dec 14, 2026, 12:00\u202fAM" in tokyo
    assert "spam" in english


@each_language
def test_render_passcode_mail_code_and_validity(language: str) -> None:
    text, html = parts(as_sent(MAILS["passcode"](practice(), language)))

    # Large and clear in the HTML; the first eight digits in the text (what people copy).
    [(cell, _, code)] = [found for found in elements(html, "td") if found[2] == PASSCODE]
    assert pixels(cell["style"], "font-size")[0] >= 28
    assert code == PASSCODE
    first = re.search(r"\b(\d{8})\b", text)
    assert first is not None and first.group(1) == PASSCODE
    validity = {"en": "valid for 15 minutes", "es": "válido durante 15 minutos"}[language]
    assert validity in text and validity in html
    assert {"en": "10:15\u202fAM EST", "es": "10:15"}[language] in text


@each_mail
@each_language
def test_render_patient_mail_phone_and_address(mail: str, language: str) -> None:
    with_them = parts(as_sent(MAILS[mail](practice(phone=PHONE, address=ADDRESS), language)))
    without = parts(as_sent(MAILS[mail](practice(), language)))

    for part in with_them:
        assert CALL[language] in part
        assert ADDRESS in part
    for part in without:
        assert PHONE not in part and ADDRESS not in part
        assert CALL[language].split(" Demo")[0] not in part


@each_mail
@each_language
def test_render_patient_mail_logo_inline(mail: str, language: str) -> None:
    logo = png_image()
    sent = as_sent(MAILS[mail](practice(logo=logo, logo_type="image/png"), language))
    _, html = parts(sent)

    [(img, _, _)] = elements(html, "img")
    assert img["src"] == f"cid:{LOGO_CONTENT_ID}"
    assert img["alt"] == "Demo Dental"
    related = [part for part in sent.walk() if part.get_content_type() == "multipart/related"]
    assert len(related) == 1
    [image] = [part for part in sent.walk() if part.get_content_maintype() == "image"]
    assert image["Content-ID"] == f"<{LOGO_CONTENT_ID}>"
    assert image.get_content_disposition() == "inline"
    assert image.get_content() == logo

    plain = as_sent(MAILS[mail](practice(), language))
    assert elements(parts(plain)[1], "img") == []
    assert not [part for part in plain.walk() if part.get_content_maintype() == "image"]


@each_mail
@each_language
def test_render_patient_mail_without_phi(mail: str, language: str) -> None:
    """The renderer takes no patient, subject, body or file: none can reach the mail, and
    what it does show (the practice, the link, the code) is all there is."""
    raw = bytes(as_sent(MAILS[mail](branded(), language))).decode("ascii", "replace")
    for secret in PHI:
        assert secret not in raw
    assert "ann.patient" not in raw.partition("\n\n")[2]  # the address in To only


@each_mail
def test_render_patient_mail_escapes_practice_name(mail: str) -> None:
    name = '<script>alert("x")</script> & Sons'
    sent = as_sent(MAILS[mail](practice(name=name, phone=PHONE, address="<b>1 Rd</b>"), "en"))
    text, html = parts(sent)

    assert "<script>" not in html and "<b>1 Rd" not in html
    assert "&lt;script&gt;" in html and "&amp; Sons" in html and "&lt;b&gt;1 Rd" in html
    # Plain text is not HTML: the name as written.
    assert name in text


@each_mail
def test_render_patient_mail_unknown_language_in_english(mail: str) -> None:
    assert MAILS[mail](practice(), "fr") == MAILS[mail](practice(), "en")


def test_mail_strings_all_translated_to_spanish() -> None:
    """Every sentence of the mail templates has a Spanish translation (none fuzzy)."""
    options = {"**": {"extensions": "jinja2.ext.i18n"}}
    found = {
        message if isinstance(message, str) else message[0]
        for _, _, message, _, _ in extract_from_dir(
            TEMPLATES, method_map=[("**", "jinja2")], options_map=options
        )
    }
    with (Path(LOCALES_DIR) / "es" / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po)
    assert found
    for message_id in found:
        entry = catalog.get(message_id)
        assert entry is not None and entry.string and not entry.fuzzy, message_id
