"""The patient's chart (R11): the files the patient sent, for office staff to download.

The loading, auditing and download helpers here serve ``web.api.chart`` too."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from domain.audit import AuditAction
from infra.chart import ChartEntry, chart_entry, chart_of
from infra.db.models import Patient, StaffUser
from infra.practices import time_zone_of
from web.deps import CurrentStaff, DbSession, StateDep, audit_staff, or_404, practice_patient
from web.downloads import download
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

DOCUMENT_NOT_FOUND = "Document not found"


@router.get("/patients/{patient_id}/chart")
async def chart_page(
    request: Request, db: DbSession, staff: CurrentStaff, patient_id: str
) -> HTMLResponse:
    patient, entries = await list_chart_of(request, db, staff, patient_id)
    return render(
        request,
        "office/chart.html",
        {
            "staff": staff,
            "patient": patient,
            "entries": entries,
            "time_zone": await time_zone_of(db, staff.practice_id),
        },
    )


async def list_chart_of(
    request: Request, db: DbSession, staff: StaffUser, patient_id: str
) -> tuple[Patient, list[ChartEntry]]:
    """The patient and their chart, newest first; the listing is audited."""
    patient = await practice_patient(db, staff, patient_id)
    entries = await chart_of(db, staff.practice_id, patient.id)
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


@router.get("/patients/{patient_id}/chart/{document_id}")
async def download_chart_document(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: CurrentStaff,
    patient_id: str,
    document_id: str,
) -> StreamingResponse:
    return await download_document(request, state, db, staff, patient_id, document_id)


async def download_document(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: StaffUser,
    patient_id: str,
    document_id: str,
) -> StreamingResponse:
    entry = or_404(
        await chart_entry(db, staff.practice_id, patient_id, document_id), DOCUMENT_NOT_FOUND
    )
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
