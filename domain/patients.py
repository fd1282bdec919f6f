"""The practice's patient directory (R2): who a secure email may go to."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, StringConstraints

from domain.addresses import normalise_address

PatientName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class PatientStatus(StrEnum):
    # Another provider or office is entered as a NonPatient so it can receive secure email.
    PATIENT = "Patient"
    NON_PATIENT = "NonPatient"


class PatientCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: PatientName
    email: EmailStr
    status: PatientStatus = PatientStatus.PATIENT

    @property
    def email_normalised(self) -> str:
        return normalise_address(self.email)


class PatientPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str
    status: PatientStatus
    created_at: datetime


class PatientList(BaseModel):
    items: list[PatientPublic]
