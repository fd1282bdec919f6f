"""The patient's chart (R11): the files the patient sent, for office staff to download.

Listing and downloading, with their audit, are ``web.services.chart``, shared with
``web.api.chart``."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from infra.practices import time_zone_of
from web.deps import CurrentStaff, DbSession, StateDep
from web.services.chart import download_document, list_chart_of
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)


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
