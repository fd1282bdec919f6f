"""``/api/v1/patients/{id}/chart``: the files a patient sent (R11), and each file."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from domain.secure_email_views import ChartDocumentList
from web.api.responses import INVALID, NOT_FOUND, SERVICE_DOWN, declared
from web.deps import ApiStaff, DbSession, StateDep
from web.services.chart import download_document, list_chart_of

router = APIRouter(prefix="/patients", tags=["chart"])


@router.get("/{patient_id}/chart", responses=declared(NOT_FOUND, INVALID))
async def list_chart(
    request: Request, db: DbSession, staff: ApiStaff, patient_id: str
) -> ChartDocumentList:
    """The files the patient sent with replies, newest first."""
    _, entries = await list_chart_of(request, db, staff, patient_id)
    return ChartDocumentList(items=[entry.public() for entry in entries])


@router.get(
    "/{patient_id}/chart/{document_id}",
    response_class=StreamingResponse,
    responses=declared(
        {200: {"content": {"application/octet-stream": {}}, "description": "The file"}},
        NOT_FOUND,
        INVALID,
        SERVICE_DOWN,
    ),
)
async def read_chart_document(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: ApiStaff,
    patient_id: str,
    document_id: str,
) -> StreamingResponse:
    return await download_document(request, state, db, staff, patient_id, document_id)
