"""The patient's chart (R11): the files the patient sent, for office staff to download."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.secure_email_views import ChartDocumentList
from infra.db.models import Patient, StaffUser
from infra.directory import get_patient
from infra.replies import ChartEntry, chart_entry, chart_of
from web.deps import ApiStaff, CurrentStaff, DbSession, StateDep, audit_staff
from web.downloads import download
from web.templating import render

api_router = APIRouter(prefix="/patients", tags=["chart"])
page_router = APIRouter(tags=["office"], include_in_schema=False)

PATIENT_NOT_FOUND = "Patient not found"
DOCUMENT_NOT_FOUND = "Document not found"


async def _patient(db: AsyncSession, staff: StaffUser, patient_id: str) -> Patient:
    patient = await get_patient(db, staff.practice_id, patient_id)
    if patient is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=PATIENT_NOT_FOUND)
    return patient


async def _entry(
    db: AsyncSession, staff: StaffUser, patient_id: str, document_id: str
) -> ChartEntry:
    entry = await chart_entry(db, staff.practice_id, patient_id, document_id)
    if entry is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=DOCUMENT_NOT_FOUND)
    return entry


@page_router.get("/patients/{patient_id}/chart")
async def chart_page(
    request: Request, db: DbSession, staff: CurrentStaff, patient_id: str
) -> HTMLResponse:
    patient = await _patient(db, staff, patient_id)
    entries = await chart_of(db, staff.practice_id, patient.id)
    await _audit_listing(db, request, staff, patient, entries)
    return render(
        request,
        "office/chart.html",
        {"staff": staff, "patient": patient, "entries": entries},
    )


async def _audit_listing(
    db: AsyncSession,
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


@page_router.get("/patients/{patient_id}/chart/{document_id}")
async def download_chart_document(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: CurrentStaff,
    patient_id: str,
    document_id: str,
) -> StreamingResponse:
    return await _download(request, state, db, staff, patient_id, document_id)


async def _download(
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


@api_router.get("/{patient_id}/chart")
async def list_chart(
    request: Request, db: DbSession, staff: ApiStaff, patient_id: str
) -> ChartDocumentList:
    """The files the patient sent with replies, newest first."""
    patient = await _patient(db, staff, patient_id)
    entries = await chart_of(db, staff.practice_id, patient.id)
    await _audit_listing(db, request, staff, patient, entries)
    return ChartDocumentList(items=[entry.public() for entry in entries])


@api_router.get(
    "/{patient_id}/chart/{document_id}",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
)
async def read_chart_document(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: ApiStaff,
    patient_id: str,
    document_id: str,
) -> StreamingResponse:
    return await _download(request, state, db, staff, patient_id, document_id)
