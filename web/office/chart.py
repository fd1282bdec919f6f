"""The patient's chart (R11): the files the patient sent, for office staff to download.

The loading, auditing and download helpers here serve ``web.api.chart`` too."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, StreamingResponse

from domain.audit import AuditAction
from infra.chart import ChartEntry, chart_entry, chart_of
from infra.db.models import Patient, StaffUser
from infra.directory import get_patient
from web.deps import CurrentStaff, DbSession, StateDep, audit_staff
from web.downloads import download
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

PATIENT_NOT_FOUND = "Patient not found"
DOCUMENT_NOT_FOUND = "Document not found"


async def chart_patient(db: DbSession, staff: StaffUser, patient_id: str) -> Patient:
    patient = await get_patient(db, staff.practice_id, patient_id)
    if patient is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=PATIENT_NOT_FOUND)
    return patient


async def _entry(db: DbSession, staff: StaffUser, patient_id: str, document_id: str) -> ChartEntry:
    entry = await chart_entry(db, staff.practice_id, patient_id, document_id)
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=DOCUMENT_NOT_FOUND)
    return entry


@router.get("/patients/{patient_id}/chart")
async def chart_page(
    request: Request, db: DbSession, staff: CurrentStaff, patient_id: str
) -> HTMLResponse:
    patient = await chart_patient(db, staff, patient_id)
    entries = await chart_of(db, staff.practice_id, patient.id)
    await audit_listing(db, request, staff, patient, entries)
    return render(
        request,
        "office/chart.html",
        {"staff": staff, "patient": patient, "entries": entries},
    )


async def audit_listing(
    db: DbSession,
    request: Request,
    staff: StaffUser,
    patient: Patient,
    entries: list[ChartEntry],
) -> None:
    # The list names the patient's files (PHI, HIPAA 164.312(b)); the event, a count.
    await audit_staff(
        db,
        request,
        staff,
        AuditAction.OFFICE_CHART_LIST,
        patient_id=patient.id,
        detail=f"{len(entries)} document(s)",
    )


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
    entry = await _entry(db, staff, patient_id, document_id)
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
