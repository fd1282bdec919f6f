"""One-time passcode rules (R6)."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta

PASSCODE_DIGITS = 8
PASSCODE_VALID_FOR = timedelta(minutes=15)
MAX_WRONG_TRIES = 5
MAX_PASSCODES_PER_HOUR = 5
RATE_WINDOW = timedelta(hours=1)

_PASSCODE = re.compile(rf"\d{{{PASSCODE_DIGITS}}}")
# Whitespace, the hyphen-minus, the Unicode dashes (U+2010-U+2015) and the minus sign.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]")


def clean_passcode(typed: str) -> str | None:
    """The passcode as typed or pasted, without spaces and dashes; None if not 8 digits.

    ``\\d`` matches any script's digits: a keyboard in full-width or Arabic-Indic mode
    types the right code in other characters, which would otherwise count as a wrong try.
    Dashes include the typographic ones (a phone's keyboard or a mail reader may turn
    "1234-5678" into "1234–5678"), spaces the non-breaking ones.
    """
    digits = _SEPARATORS.sub("", typed)
    if not _PASSCODE.fullmatch(digits):
        return None
    return "".join(str(unicodedata.decimal(digit)) for digit in digits)
