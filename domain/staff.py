"""Who works in Secure Email, and what each role may do (DESIGN §1).

Practice staff are admins (settings, staff, tokens, audit) or clerks (patients, sending,
replies, chart), and see only their own practice. Operators are the platform's own
people: they belong to no practice, never use the office pages, and are the only ones
who may decode Temporal payloads.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, EmailStr, Field, StringConstraints, WithJsonSchema

from domain.errors import FieldRefused
from domain.partial import PARTIAL_BODY, not_null_when_given
from domain.strict import STRICT_BODY


class StaffRole(StrEnum):
    ADMIN = "admin"
    CLERK = "clerk"
    OPERATOR = "operator"


# The practice's staff as office administrators manage them, on the Staff page and at
# ``/api/v1/staff``.

# No control characters: PostgreSQL refuses NUL in text, and names (and API tokens'
# labels) are shown on pages.
PRINTABLE = r"^[^\x00-\x1f\x7f]*$"
NOT_A_PRACTICE_ROLE = "Choose admin or clerk"
# The schema offers only the roles a practice gives; ``PracticeRole.checked`` refuses an
# operator in words.
GIVEN_ROLE = WithJsonSchema(
    {"type": "string", "enum": [StaffRole.ADMIN, StaffRole.CLERK], "title": "Role"}
)


class PracticeRole(BaseModel):
    """The roles an office admin can give: operators are the platform's, not a practice's."""

    # Field(strict=False): JSON gives the role as text, the enum's value.
    role: Annotated[StaffRole, GIVEN_ROLE] = Field(description="`admin` or `clerk`", strict=False)

    def checked(self) -> StaffRole:
        """The role chosen; ``FieldRefused`` on ``role`` if it is not a practice's."""
        if self.role == StaffRole.OPERATOR:
            raise FieldRefused("role", NOT_A_PRACTICE_ROLE)
        return self.role


# The clinics a member of staff works for (``domain.reach``): none listed, every clinic.
ClinicIds = Annotated[
    list[Annotated[str, StringConstraints(min_length=1, max_length=36)]],
    Field(
        max_length=200,
        description="Ids of the practice's clinics whose patients they work with, besides "
        "the patients of no clinic; empty for every clinic",
    ),
]


class StaffCreate(PracticeRole):
    model_config = STRICT_BODY

    name: str = Field(min_length=1, max_length=200, pattern=PRINTABLE)
    email: EmailStr
    role: Annotated[StaffRole, GIVEN_ROLE] = Field(default=StaffRole.CLERK, strict=False)
    clinic_ids: ClinicIds = []


class StaffChange(BaseModel):
    """A partial change to a member of staff: the fields given, each not null."""

    model_config = PARTIAL_BODY

    role: Annotated[StaffRole | None, GIVEN_ROLE] = Field(
        default=None, description="`admin` or `clerk`", strict=False
    )
    clinic_ids: ClinicIds | None = None

    _given_means_a_value = not_null_when_given("role", "clinic_ids")


class StaffPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str
    role: StaffRole
    clinic_ids: list[str]
    active: bool
    must_change_password: bool
    created_at: datetime


class StaffList(BaseModel):
    items: list[StaffPublic]


class StaffWithPassword(StaffPublic):
    temporary_password: str = Field(
        description="Shown this once; the person must choose their own at the next log-in"
    )
