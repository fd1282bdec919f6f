"""The practice's patient directory (R2): who a secure email may go to."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints

from domain.addresses import normalise_address
from domain.languages import DEFAULT_LANGUAGE, Language
from domain.partial import PARTIAL_BODY, not_null_when_given
from domain.strict import STRICT_BODY

# Trimmed, so more than spaces; the schema says so without a second message.
PatientName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    Field(json_schema_extra={"pattern": r"\S"}),
]


class PatientStatus(StrEnum):
    # Another provider or office is entered as a NonPatient so it can receive secure email.
    PATIENT = "Patient"
    NON_PATIENT = "NonPatient"
    # Open Dental's other statuses, kept as Open Dental has them: such a patient stays in
    # the directory, but no secure email goes to them (``not_sendable_reason``).
    INACTIVE = "Inactive"
    ARCHIVED = "Archived"
    DECEASED = "Deceased"
    DELETED = "Deleted"


# Why Send Secure refuses a patient of each status it does not send to.
_NOT_SENDABLE: dict[PatientStatus, str] = {
    PatientStatus.INACTIVE: "This patient is inactive",
    PatientStatus.ARCHIVED: "This patient is archived",
    PatientStatus.DECEASED: "This patient is deceased",
    PatientStatus.DELETED: "This patient was deleted in Open Dental",
}


# An Open Dental patient whose address was removed there: kept, as the statuses above.
NO_ADDRESS = (
    "This patient has no email address in Open Dental, so no secure email can be sent. "
    "Add the address in Open Dental: the next sync brings it here."
)


def not_sendable_reason(status: str, email: str) -> str | None:
    """Why no secure email may go to a patient of ``status`` at ``email``, in words;
    None when one may."""
    try:
        reason = _NOT_SENDABLE.get(PatientStatus(status))
    except ValueError:
        return f"This patient's status ({status}) is not one secure email is sent to"
    if reason is not None:
        return f"{reason}, so no secure email can be sent. Change the status to send one."
    return None if email else NO_ADDRESS


class PatientCreate(BaseModel):
    model_config = STRICT_BODY

    name: PatientName
    email: EmailStr
    # Field(strict=False): JSON gives the status as text, the enum's value.
    status: PatientStatus = Field(default=PatientStatus.PATIENT, strict=False)
    # What the patient's mails and portal pages are written in (R20).
    language: Language = DEFAULT_LANGUAGE
    # The head of the patient's family: another patient of the same practice.
    guarantor_id: str | None = None
    # An address another patient already has is taken only with consent: the patient
    # joins that patient's family (``guarantor_id``) or this is true. Whoever reads the
    # mailbox can read every secure email sent to it.
    share_address: bool = False
    # One of the practice's clinics (R19), whose sender and phone the patient's messages
    # use; none: the practice's own.
    clinic_id: str | None = None

    @property
    def email_normalised(self) -> str:
        return normalise_address(self.email)


class PatientUpdate(BaseModel):
    """A change to a patient: only the fields given, each checked as when adding one."""

    model_config = PARTIAL_BODY

    name: PatientName | None = None
    email: EmailStr | None = None
    status: PatientStatus | None = Field(default=None, strict=False)
    language: Language | None = None
    # Given as null, the patient leaves the family (becomes a head or on their own).
    guarantor_id: str | None = None
    # As when adding: consent to an address another patient already has. Not stored.
    share_address: bool = False
    # Null moves the patient to the practice itself (no clinic).
    clinic_id: str | None = None

    _given_means_a_value = not_null_when_given("name", "email", "status", "language")

    def changes(self) -> dict[str, str | None]:
        """The fields given, as stored: the status by its value; a guarantor None when the
        patient leaves the family, no clinic as None."""
        given = self.model_dump(exclude_unset=True, exclude={"share_address"})
        if "status" in given:
            given["status"] = PatientStatus(given["status"]).value
        return {field: None if value is None else str(value) for field, value in given.items()}

    @property
    def changes_guarantor(self) -> bool:
        return "guarantor_id" in self.model_fields_set


class PatientPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str
    status: PatientStatus
    language: Language
    clinic_id: str | None = None
    created_at: datetime
    guarantor_id: str | None = None


class PatientList(BaseModel):
    items: list[PatientPublic]
