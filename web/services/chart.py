"""A patient's chart (R11), for the office's Chart page and ``/api/v1/patients/{id}/chart``:
the files the patient sent, listed and downloaded by office staff.

Both are reads of PHI (HIPAA 164.312(b)) and both are audited: the listing by a count,
a download by the file's id.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import StreamingResponse

from domain.audit import AuditAction
from infra.chart import ChartEntry, chart_entry, chart_of
from infra.db.models import Patient, StaffUser
from web.deps import DbSession, StateDep, audit_staff, or_404, practice_patient
from web.downloads import download

DOCUMENT_NOT_FOUND = "Document not found"


async def list_chart_of(
    request: Request, db: DbSession, staff: StaffUser, patient_id: str
) -> tuple[Patient, list[ChartEntry]]:
    """The patient and their chart, newest first; the listing is audited."""
    patient = await practice_patient(db, staff, patient_id)
    entries = await chart_of(db, staff.reach, patient.id)
    # The list names the patient's files (PHI, HIPAA 164.312(b)); the event, a count.
    await audit_staff(
        db,
        request,
        staff,
        AuditAction.OFFICE_CHART_LIST,
        patient_id=patient.id,
        detail=f"{len(entries)} document(s)",
    )
    return patient, entries


async def download_document(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: StaffUser,
    patient_id: str,
    document_id: str,
) -> StreamingResponse:
    """One file of the patient's chart, streamed; audited once the store has it open."""
    entry = or_404(await chart_entry(db, staff.reach, patient_id, document_id), DOCUMENT_NOT_FOUND)
    response = await download(state, entry.attachment)
    await audit_staff(
        db,
        request,
        staff,
        AuditAction.OFFICE_DOWNLOAD,
        patient_id=patient_id,
        secure_email_id=entry.attachment.secure_email_id,
        detail=entry.attachment.id,
    )
    return response
