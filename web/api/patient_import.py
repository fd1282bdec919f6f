"""``POST /api/v1/patients/import``: a CSV file's patients into the directory.

The body is the file itself (``text/csv``), not a multipart form: practice software posts
what its export wrote. Registered before ``/patients/{patient_id}`` so that "import" is
never read as a patient's id.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response

from domain.patient_import import FileRefused, ImportResult
from infra.patient_import import ImportCollided
from web.api.responses import (
    CONFLICT,
    WITH_BODY,
    ErrorDetail,
    Responses,
    business_rules,
    declared,
    with_idempotency_key,
)
from web.deps import ApiStaff, DbSession, StateDep, staff_actor
from web.errors import field_error
from web.services.idempotency import IdempotencyKeyHeader, answer_once, bytes_fingerprint
from web.services.patient_import import COLLIDED, import_patients

router = APIRouter(prefix="/patients", tags=["patients"])

CSV_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
NOT_CSV = "Send the file itself as the body, with Content-Type: text/csv"
# The file as the body, for /docs and the fuzzing of the API.
CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}
RULES = business_rules(
    file="a CSV file that can be read: UTF-8, a header row naming the columns, at most 20,000 rows"
)
NOT_CSV_ANSWER: Responses = {
    status.HTTP_415_UNSUPPORTED_MEDIA_TYPE: {
        "description": "The body is not declared as text/csv",
        "model": ErrorDetail,
    }
}


@router.post(
    "/import",
    responses=with_idempotency_key(declared(WITH_BODY, CONFLICT, NOT_CSV_ANSWER, RULES)),
    openapi_extra=CSV_BODY,
    response_model=ImportResult,
)
async def import_patients_csv(
    request: Request,
    state: StateDep,
    db: DbSession,
    staff: ApiStaff,
    idempotency_key: IdempotencyKeyHeader,
    dry_run: Annotated[bool, Query(description="Check the file only: nothing is written")] = False,
    skip_errors: Annotated[
        bool, Query(description="Import the rows without errors when some have errors")
    ] = False,
) -> ImportResult | Response:
    """Adds and updates patients from a CSV file (UTF-8, comma- or semicolon-separated,
    a header row naming the columns: ``first_name``, ``last_name``, ``email``,
    ``language``, ``status``, ``clinic``, ``family_id``, ``external_id``), at most
    5 MB and 20,000 rows (larger: 413 or 422). A row with an ``external_id``
    updates the patient imported before with that id. A file with any error imports
    nothing (``errors`` says which row and column, and why) unless ``skip_errors``; a
    file that cannot be read at all is refused with 422. With an ``Idempotency-Key``, a
    retry of the same file gets the first answer and imports nothing more."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type not in CSV_TYPES:
        raise HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, detail=NOT_CSV)
    data = await request.body()

    async def work() -> ImportResult:
        try:
            return await import_patients(
                db, staff, data, dry_run, skip_errors, actor=staff_actor(request, staff)
            )
        except FileRefused as refused:
            raise field_error("file", refused.message) from refused
        except ImportCollided as error:
            raise HTTPException(status.HTTP_409_CONFLICT, detail=COLLIDED) from error

    if idempotency_key is None:
        return await work()
    fingerprint = bytes_fingerprint(request, data)
    return await answer_once(
        request, state, db, staff.practice_id, idempotency_key, fingerprint, work
    )
