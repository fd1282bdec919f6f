"""The emails a patient receives: the notice (and its reminder) and the passcode.

Neither carries the subject, the body or a file name (R5): those may be PHI, and email
travels in the clear. The notice names the practice, links to the portal and says when
the message expires; the passcode email says how long the code is valid (R6).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from domain.passcodes import PASSCODE_VALID_FOR


@dataclass(frozen=True)
class EmailContent:
    subject: str
    text: str
    html: str


DEFAULT_TIME_ZONE = "America/New_York"


def _when(moment: datetime, zone: str) -> str:
    # In the practice's zone (R16), named by its abbreviation so nobody guesses.
    return moment.astimezone(ZoneInfo(zone)).strftime("%A %d %B %Y at %H:%M %Z")


def portal_link(public_url: str, link_token: str) -> str:
    return f"{public_url}/m/{link_token}"


def notice_email(
    practice_name: str,
    link: str,
    expires_at: datetime,
    zone: str = DEFAULT_TIME_ZONE,
    *,
    reminder: bool = False,
) -> EmailContent:
    """The notice; as a reminder, for a patient who has not opened the message yet."""
    expires = _when(expires_at, zone)
    opening = (
        f"{practice_name} sent you a secure email that you have not opened yet."
        if reminder
        else f"{practice_name} has sent you a secure email."
    )
    text = (
        f"{opening}\n\n"
        f"View Secure Email: {link}\n\n"
        f"The message can be read until {expires}. After that, contact the office.\n"
        "To open it you will be asked for a one-time passcode, which we email to this same "
        "address. If it does not arrive within a few minutes, look in your spam or junk "
        "folder.\n"
    )
    html = (
        f"<p>{escape(opening)}</p>"
        f'<p><a href="{escape(link)}" style="font-size:18px">View Secure Email</a></p>'
        f"<p>The message can be read until {escape(expires)}. After that, contact the office.</p>"
        "<p>To open it you will be asked for a one-time passcode, which we email to this same "
        "address. If it does not arrive within a few minutes, look in your spam or junk "
        "folder.</p>"
    )
    subject = f"Secure email from {practice_name}"
    return EmailContent(
        subject=f"Reminder: {subject}" if reminder else subject, text=text, html=html
    )


def passcode_email(
    practice_name: str, passcode: str, valid_until: datetime, zone: str = DEFAULT_TIME_ZONE
) -> EmailContent:
    minutes = int(PASSCODE_VALID_FOR.total_seconds() // 60)
    text = (
        f"Your one-time passcode for the secure email from {practice_name} is:\n\n"
        f"    {passcode}\n\n"
        f"It is valid for {minutes} minutes (until {_when(valid_until, zone)}) and works once.\n"
        "If you did not ask for it, you can ignore this email.\n"
    )
    html = (
        f"<p>Your one-time passcode for the secure email from {escape(practice_name)} is:</p>"
        f'<p style="font-size:28px;letter-spacing:4px"><strong>{passcode}</strong></p>'
        f"<p>It is valid for {minutes} minutes (until {escape(_when(valid_until, zone))}) "
        "and works once.</p><p>If you did not ask for it, you can ignore this email.</p>"
    )
    return EmailContent(subject=f"Your passcode for {practice_name}", text=text, html=html)
