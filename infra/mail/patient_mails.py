"""The mails a patient receives, from templates: the notice, its reminder, the passcode.

Each mail is a directory of ``infra/mail/templates`` with ``subject.txt``, ``body.txt``
and ``body.html`` (warehouse's ``EmailMessage.from_template``), written in the patient's
language through the one message catalog (``infra.i18n``). The HTML is tables with
inline styles, the one way Gmail, Outlook and Apple Mail all draw it alike; the
practice's logo travels inside the mail as a ``cid:`` part, never fetched from a server.

None of them carries the subject, the body or a file name of the secure email, nor the
patient's name (R5): those may be PHI, and mail travels in the clear. What they name is
the practice, its phone and address, the link, the expiry, or the passcode (R6).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from domain.passcodes import PASSCODE_VALID_FOR
from infra.i18n import moment_text, supported, translations
from infra.mail.message import InlineImage

TEMPLATES = Path(__file__).resolve().parent / "templates"
# The logo's Content-ID, as the HTML's ``cid:`` URL names it.
LOGO_CONTENT_ID = "practice-logo@securemail"


@dataclass(frozen=True)
class Practice:
    """The practice as its mails show it; the logo is optional, as are phone and address."""

    name: str
    time_zone: str
    phone: str | None = None
    address: str | None = None
    logo: bytes | None = None
    logo_type: str | None = None


@dataclass(frozen=True)
class PatientMail:
    """One rendered mail: what ``MailMessage`` needs besides the addresses."""

    subject: str
    text: str
    html: str
    inline_images: tuple[InlineImage, ...] = ()


@cache
def _environment(language: str) -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(enabled_extensions=("html",), default=False),
        undefined=StrictUndefined,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.install_gettext_translations(translations(language), newstyle=True)  # type: ignore[attr-defined]
    return env


def notice_mail(
    practice: Practice, link: str, expires_at: datetime, language: str, *, reminder: bool = False
) -> PatientMail:
    """The notice (R5); as a reminder, for a patient who has not opened the message yet."""
    expires = moment_text(expires_at, supported(language), practice.time_zone)
    return _render(
        "reminder" if reminder else "notice",
        practice,
        language,
        link=link,
        expires=expires,
    )


def passcode_mail(
    practice: Practice, passcode: str, valid_until: datetime, language: str
) -> PatientMail:
    """The one-time passcode, and how long it is valid (R6)."""
    return _render(
        "passcode",
        practice,
        language,
        passcode=passcode,
        minutes=int(PASSCODE_VALID_FOR.total_seconds() // 60),
        valid_until=moment_text(valid_until, supported(language), practice.time_zone),
    )


def _render(mail: str, practice: Practice, language: str, **values: Any) -> PatientMail:
    language = supported(language)
    env = _environment(language)
    logo = _logo(practice)
    context = {
        "practice": practice,
        "language": language,
        "logo_cid": logo.content_id if logo else None,
        **values,
    }
    # One line, however the template wraps it: a header cannot hold a line break.
    subject = " ".join(env.get_template(f"{mail}/subject.txt").render(context).split())
    context["subject"] = subject
    text = env.get_template(f"{mail}/body.txt").render(context)
    html = env.get_template(f"{mail}/body.html").render(context)
    return PatientMail(
        subject=subject,
        text=_tidy_text(text),
        html=html,
        inline_images=(logo,) if logo else (),
    )


def _logo(practice: Practice) -> InlineImage | None:
    if not practice.logo or not practice.logo_type:
        return None
    return InlineImage(
        content_id=LOGO_CONTENT_ID, content_type=practice.logo_type, data=practice.logo
    )


def _tidy_text(text: str) -> str:
    # Templates leave blank lines where blocks were; a paragraph break is one empty line.
    lines = [line.rstrip() if line != "-- " else line for line in text.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"
