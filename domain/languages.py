"""The languages a patient may be written to in (R20): their codes, and how another
system's codes map onto them.

Office pages stay English; a patient's mails and portal pages follow ``Patient.language``.
The catalogs and the way each language writes a moment are ``infra.i18n``'s.
"""

from __future__ import annotations

from typing import Literal, get_args

# ISO 639-1 codes, as the API and the database hold them.
Language = Literal["en", "es"]
LANGUAGE_CODES: tuple[str, ...] = get_args(Language)
DEFAULT_LANGUAGE: Language = "en"

# Open Dental's ``Patient.Language`` is ISO 639-2 (three letters; "spa" for Spanish).
_OPEN_DENTAL: dict[str, Language] = {"eng": "en", "spa": "es"}


def from_open_dental(value: str | None) -> Language:
    """The language of an Open Dental patient: ``spa`` is Spanish; ``eng``, nothing, and
    any language the product does not write in yet are English (the office's own)."""
    return _OPEN_DENTAL.get((value or "").strip().lower(), DEFAULT_LANGUAGE)
