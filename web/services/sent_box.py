"""The Sent box (R15): the practice's secure emails, newest first, a page at a time, for
the office's Email Client and ``GET /api/v1/secure-emails``.

The list shows subjects and patients, so reading it is audited: a count and the ids of
the patients it named.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request

from domain.audit import AuditAction, listing_detail
from infra import secure_emails
from infra.db.models import Clinic, StaffUser
from infra.secure_emails import Cursor, SentPage
from web.deps import DbSession, audit_staff, practice_patient
from web.services.clinic_filter import filtered_reach, narrowed_reach

BAD_CURSOR = "Not a cursor this list gave out; start again from the first page"


@dataclass(frozen=True)
class SentFilters(secure_emails.SentQuery):
    """The Sent box's query as the office sent it: the page is the cursor's text, the
    clinic one whose patients' secure emails are listed (``web.services.clinic_filter``)."""

    cursor: str | None = None
    clinic_id: str | None = None


def cursor_of(text: str | None) -> Cursor | None:
    """The page a ``cursor`` parameter names; ``BadCursor`` if it is not one of ours."""
    return Cursor.decode(text) if text else None


async def sent_page(
    db: DbSession, staff: StaffUser, filters: SentFilters, choices: list[Clinic] | None = None
) -> SentPage:
    """A page of the practice's secure emails, not yet audited. A patient of another
    practice (or none) is a 404, as everywhere a patient is named by id; a clinic the
    member of staff may not choose, ``ClinicRefused``. ``choices``: the clinics they may
    choose, when the caller has read them already (``clinic_choices``)."""
    after = cursor_of(filters.cursor)
    if choices is None:
        reach = await filtered_reach(db, staff, filters.clinic_id)
    else:
        reach = narrowed_reach(staff, filters.clinic_id, choices)
    if filters.patient_id is not None:
        await practice_patient(db, staff, filters.patient_id)
    return await secure_emails.sent_by_practice(db, reach, filters, after=after)


async def audit_sent(
    request: Request,
    db: DbSession,
    staff: StaffUser,
    patient_id: str | None,
    page: SentPage | None,
    also_shown: Iterable[str] = (),
) -> None:
    """The list shows subjects and patients (PHI, HIPAA 164.312(b)); the event, a count
    and the ids of the patients the response named (``also_shown``: a list of them)."""
    summary = f"{len(page.lines)} secure email(s)" if page else "filters refused"
    shown = [line.patient_id for line in page.lines] if page else []
    await audit_staff(
        db,
        request,
        staff,
        AuditAction.OFFICE_SENT_LIST,
        patient_id=patient_id,
        detail=listing_detail(summary, [*shown, *also_shown]),
    )


async def list_sent(
    request: Request, db: DbSession, staff: StaffUser, filters: SentFilters
) -> SentPage:
    """A page of the practice's secure emails (``sent_page``), audited."""
    page = await sent_page(db, staff, filters)
    await audit_sent(request, db, staff, filters.patient_id, page)
    return page
