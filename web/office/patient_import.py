"""Patients → Import: a CSV file's patients into the directory, shown before any is written.

Two steps. The upload (``/patients/import/preview``) is a dry run: the page shows what
the import would do (how many patients added, updated, unchanged), each error by row and
column, and the first rows as they will be stored. "Import N patients" then posts the
same file to ``/patients/import``, which checks it all again (the directory may have
changed meanwhile) and writes it.

Between the two steps the file travels back in the confirmation form, base64-encoded in
a hidden field, rather than waiting on the server under a random id: nothing of it is
stored anywhere but in the directory it is imported into (no PHI at rest in a cache, no
clean-up, nothing lost when another web process answers the confirmation), and nothing of
it is in a URL (the form is a POST). The price is the file sent twice, at most 5 MB.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from fastapi.responses import HTMLResponse

from domain.patient_import import (
    COLUMNS,
    MAX_BYTES,
    MAX_ROWS,
    FileRefused,
    ImportResult,
    ImportRow,
    read_file,
)
from infra.i18n import LANGUAGES
from infra.patient_import import ImportCollided
from web.deps import CurrentStaff, DbSession, staff_actor
from web.services.patient_import import COLLIDED, import_patients
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

PREVIEW_ROWS = 10
NO_FILE = "Choose a CSV file to import."
# The confirmation's file field came back not as the preview sent it.
FILE_LOST = "The file was not sent back whole. Choose it again."


@dataclass(frozen=True)
class Preview:
    """What the page shows of a file checked but not imported yet."""

    result: ImportResult
    # The file as the confirmation sends it back.
    encoded: str
    rows: list[ImportRow]
    shown_of: int

    @property
    def to_import(self) -> int:
        return self.result.created + self.result.updated


@router.get("/patients/import")
async def import_page(request: Request, staff: CurrentStaff) -> HTMLResponse:
    return _page(request, staff)


@router.post("/patients/import/preview")
async def preview_import(
    request: Request,
    db: DbSession,
    staff: CurrentStaff,
    file: Annotated[UploadFile | None, File()] = None,
) -> HTMLResponse:
    """A dry run of the file: the import of its rows without errors, as it would be."""
    data = await file.read(MAX_BYTES + 1) if file is not None else b""
    if not data:
        return _page(request, staff, file_error=NO_FILE)
    try:
        parsed = read_file(data)
        result = await import_patients(
            db, staff, data, True, True, actor=staff_actor(request, staff)
        )
    except FileRefused as refused:
        return _page(request, staff, file_error=refused.message)
    refused_rows = {error.row for error in result.errors}
    rows = [row for row in parsed.rows if row.row not in refused_rows]
    encoded = base64.urlsafe_b64encode(data).decode("ascii")
    preview = Preview(result, encoded, rows[:PREVIEW_ROWS], len(rows))
    return _page(request, staff, preview=preview)


@router.post("/patients/import")
async def confirm_import(
    request: Request,
    db: DbSession,
    staff: CurrentStaff,
    file: Annotated[str, Form()] = "",
    skip_errors: Annotated[str, Form()] = "",
) -> HTMLResponse:
    """The import itself, of the file the preview showed."""
    try:
        data = base64.urlsafe_b64decode(file.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError):
        data = b""
    if not data:
        return _page(request, staff, file_error=FILE_LOST)
    try:
        result = await import_patients(
            db, staff, data, False, skip_errors == "1", actor=staff_actor(request, staff)
        )
    except FileRefused as refused:
        return _page(request, staff, file_error=refused.message)
    except ImportCollided:
        return _page(request, staff, file_error=COLLIDED, code=status.HTTP_409_CONFLICT)
    return _page(request, staff, done=result)


def _page(
    request: Request,
    staff: CurrentStaff,
    *,
    file_error: str | None = None,
    preview: Preview | None = None,
    done: ImportResult | None = None,
    code: int | None = None,
) -> HTMLResponse:
    if code is None:
        code = status.HTTP_422_UNPROCESSABLE_CONTENT if file_error else status.HTTP_200_OK
    return render(
        request,
        "office/patient_import.html",
        {
            "staff": staff,
            "columns": COLUMNS,
            "max_mb": MAX_BYTES // (1024 * 1024),
            "max_rows": MAX_ROWS,
            "file_error": file_error,
            "preview": preview,
            "done": done,
            "languages": LANGUAGES,
        },
        status_code=code,
    )
