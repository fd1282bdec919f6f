"""Custom search attributes: ids, status and expiry only, never PHI (R12).

Operators find a secure email in the Temporal UI with, for example,
``PatientId = "…" AND SecureEmailStatus = "opened"``.
"""

from __future__ import annotations

from datetime import datetime

from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

PATIENT_ID = SearchAttributeKey.for_keyword("PatientId")
PRACTICE_ID = SearchAttributeKey.for_keyword("PracticeId")
SECURE_EMAIL_STATUS = SearchAttributeKey.for_keyword("SecureEmailStatus")
EXPIRES_AT = SearchAttributeKey.for_datetime("SecureEmailExpiresAt")

ALL = (PATIENT_ID, PRACTICE_ID, SECURE_EMAIL_STATUS, EXPIRES_AT)


def cli_flags() -> list[str]:
    """``--search-attribute Name=Type`` flags for ``temporal server start-dev``."""
    flags: list[str] = []
    for key in ALL:
        flags += ["--search-attribute", f"{key.name}={key.indexed_value_type.name.title()}"]
    return flags


def for_new_secure_email(
    practice_id: str, patient_id: str, expires_at: datetime
) -> TypedSearchAttributes:
    """What a secure email's workflow starts with; its status is added as it changes."""
    return TypedSearchAttributes(
        [
            SearchAttributePair(PRACTICE_ID, practice_id),
            SearchAttributePair(PATIENT_ID, patient_id),
            SearchAttributePair(SECURE_EMAIL_STATUS, "sending"),
            SearchAttributePair(EXPIRES_AT, expires_at),
        ]
    )
