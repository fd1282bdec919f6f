"""The clinic filter of the office's lists (Email Client's Inbox and Sent, the Main Menu's
alerts, ``GET /api/v1/secure-emails?clinic_id=``): the patients of one clinic.

A list filtered by a clinic shows what concerns the patients that clinic has now, within
the staff member's reach (``domain.reach``); a clinic of another practice, or one the
member of staff does not work for, is refused as no clinic at all.
"""

from __future__ import annotations

from domain.reach import Reach
from infra.clinics import practice_clinics
from infra.db.models import Clinic, StaffUser
from web.deps import DbSession


class ClinicRefused(ValueError):
    """The clinic asked for is not one this member of staff may filter by."""


async def clinic_choices(db: DbSession, staff: StaffUser) -> list[Clinic]:
    """The clinics a list may be filtered by: the practice's, those the member of staff
    works for when restricted; none for a practice without clinics."""
    reach = staff.reach
    return [c for c in await practice_clinics(db, staff.practice_id) if reach.covers(c.id)]


def narrowed_reach(staff: StaffUser, clinic_id: str | None, choices: list[Clinic]) -> Reach:
    """The staff member's reach, narrowed to the clinic's patients when one is chosen from
    ``choices`` (``clinic_choices``, read once per request); ``ClinicRefused`` for a
    clinic they may not choose."""
    if not clinic_id:
        return staff.reach
    if clinic_id not in {clinic.id for clinic in choices}:
        raise ClinicRefused(clinic_id)
    return staff.reach.narrowed_to(clinic_id)


async def filtered_reach(db: DbSession, staff: StaffUser, clinic_id: str | None) -> Reach:
    """``narrowed_reach`` for a caller that has not read the choices."""
    choices = await clinic_choices(db, staff) if clinic_id else []
    return narrowed_reach(staff, clinic_id, choices)
