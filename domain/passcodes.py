"""One-time passcode rules (R6)."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp

PASSCODE_DIGITS = 8
PASSCODE_VALID_FOR = timedelta(minutes=15)
MAX_WRONG_TRIES = 5
MAX_PASSCODES_PER_HOUR = 5
RATE_WINDOW = timedelta(hours=1)

_PASSCODE = re.compile(rf"\d{{{PASSCODE_DIGITS}}}")


def clean_passcode(typed: str) -> str | None:
    """The passcode as typed or pasted, without spaces and dashes; None if not 8 digits."""
    digits = re.sub(r"[\s-]", "", typed)
    return digits if _PASSCODE.fullmatch(digits) else None


def passcode_for(secret: str, counter: int) -> str:
    """The HOTP code for the ``counter``-th passcode of a secure email.

    Deterministic, so the workflow can check a code without storing it, and the mail
    activity can compute it again on a retry.
    """
    return str(pyotp.HOTP(secret, digits=PASSCODE_DIGITS).at(counter))
