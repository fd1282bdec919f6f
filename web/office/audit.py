"""The audit log for office administrators: a page with filters and its CSV export; the
query-string filter (``web.services.audit``) is shared with ``web.api.audit``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from domain.audit import AuditAction
from infra.audit import find_events
from infra.db.models import AuditEvent
from infra.practices import time_zone_of
from web.deps import CurrentAdmin, DbSession
from web.services.audit import Filter
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

# The export's columns: every column of an event, in table order, but its practice (the
# admin's own) and the hash chain's links.
COLUMNS = [
    column.name
    for column in AuditEvent.__table__.columns
    if column.name not in {"practice_id", "prev_hash", "hash"}
]


@router.get("/audit")
async def audit_page(
    request: Request, db: DbSession, admin: CurrentAdmin, where: Filter
) -> HTMLResponse:
    events = await find_events(db, admin.practice_id, where)
    return render(
        request,
        "office/audit.html",
        {
            "staff": admin,
            "time_zone": await time_zone_of(db, admin.practice_id),
            "events": events,
            "actions": list(AuditAction),
            "chosen": request.query_params,
            "export": f"/audit.csv?{request.url.query}",
        },
    )


@router.get("/audit.csv")
async def export_audit(db: DbSession, admin: CurrentAdmin, where: Filter) -> StreamingResponse:
    events = await find_events(db, admin.practice_id, where, limit=1_000_000)
    return StreamingResponse(
        _csv_rows(events),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'},
    )


# A spreadsheet runs a cell that starts with one of these as a formula; a client address
# or detail an attacker chose (``=HYPERLINK(...)``) must open as text (OWASP, CSV
# injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _csv_rows(events: list[AuditEvent]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    for event in events:
        row = [getattr(event, column) for column in COLUMNS]
        row[1] = event.at.isoformat()
        writer.writerow([spreadsheet_safe(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
