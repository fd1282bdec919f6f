"""The audit log for office administrators: a page with filters and its CSV export; the
query-string filter (``web.services.audit``) is shared with ``web.api.audit``.

Both say each event in words (who by name, what as a phrase) beside its ids and codes.
Names are the practice's own staff and patients (``infra.audit_names``), so reading
either is a read of PHI: it is audited, by count and the ids of the patients named. Each
event's clinic (R19) is resolved from the message or patient it names; the page shows it
only to a practice with clinics, the export always has its column."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, StreamingResponse

from domain.audit import ACTION_PHRASES, ActorType, AuditAction, listing_detail, phrase_of
from infra.audit import AuditFilter, find_events
from infra.audit_names import AuditNames, names_in, patients_to_choose
from infra.db.models import AuditEvent, StaffUser
from infra.practices import time_zone_of
from web.deps import CurrentAdmin, DbSession, audit_staff
from web.services.audit import Filter
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)

# The export's columns: every column of an event, in table order, but its practice (the
# admin's own) and the hash chain's links; then the same event in words.
COLUMNS = [
    column.name
    for column in AuditEvent.__table__.columns
    if column.name not in {"practice_id", "prev_hash", "hash"}
]
WORDS_COLUMNS = ["action_phrase", "actor_name", "patient_name", "clinic"]

# How many characters of an id the page shows: enough to tell them apart by eye.
SHORT_ID = 8


@dataclass(frozen=True)
class AuditLine:
    """One event as the page says it."""

    at: datetime
    action: str  # the code, kept for a screen reader's title and the filter
    phrase: str
    who: str  # "Ana Lopez (staff 163a1b11)", "operator 0c1d2e3f", "system"
    patient: str  # "Ada Lovelace (patient 1a2b3c4d)", or empty
    clinic: str  # "Downtown Clinic", or empty: a practice-wide event
    secure_email_id: str | None
    client_address: str
    detail: str


def _named(kind: str, id_: str, name: str | None) -> str:
    short = f"{kind} {id_[:SHORT_ID]}"
    return f"{name} ({short})" if name else short


def actor_name(event: AuditEvent, names: AuditNames) -> str | None:
    """The name of who did it, if they are the practice's own staff or patient."""
    if not event.actor_id:
        return None
    if event.actor_type == ActorType.STAFF:
        return names.staff.get(event.actor_id)
    if event.actor_type == ActorType.PATIENT:
        return names.patients.get(event.actor_id)
    return None  # an operator belongs to no practice


def _line(event: AuditEvent, names: AuditNames) -> AuditLine:
    who = (
        _named(event.actor_type, event.actor_id, actor_name(event, names))
        if event.actor_id
        else event.actor_type
    )
    patient = (
        _named("patient", event.patient_id, names.patients.get(event.patient_id))
        if event.patient_id
        else ""
    )
    return AuditLine(
        at=event.at,
        action=event.action,
        phrase=phrase_of(event.action),
        who=who,
        patient=patient,
        clinic=names.clinic_name(event) or "",
        secure_email_id=event.secure_email_id,
        client_address=event.client_address or "",
        detail=event.detail or "",
    )


def _named_patients(events: list[AuditEvent], names: AuditNames) -> list[str]:
    """The patients whose names the events put on the page or in the export."""
    named = []
    for event in events:
        if event.patient_id in names.patients:
            named.append(event.patient_id)
        if event.actor_type == ActorType.PATIENT and event.actor_id in names.patients:
            named.append(event.actor_id)
    return named


async def _audit_read(
    request: Request,
    db: DbSession,
    admin: StaffUser,
    summary: str,
    where: AuditFilter,
    named: list[str],
) -> None:
    await audit_staff(
        db,
        request,
        admin,
        AuditAction.OFFICE_AUDIT_READ,
        patient_id=where.patient_id,
        detail=listing_detail(summary, named),
    )


@router.get("/audit")
async def audit_page(
    request: Request, db: DbSession, admin: CurrentAdmin, where: Filter
) -> HTMLResponse:
    events = await find_events(db, admin.practice_id, where)
    names = await names_in(db, admin.reach, events)
    patients = await patients_to_choose(db, admin.reach)
    await _audit_read(
        request,
        db,
        admin,
        f"{len(events)} event(s) shown, {len(patients)} patient(s) to choose from",
        where,
        _named_patients(events, names),
    )
    return render(
        request,
        "office/audit.html",
        {
            "staff": admin,
            "time_zone": await time_zone_of(db, admin.practice_id),
            "lines": [_line(event, names) for event in events],
            "clinics": bool(names.clinics),
            "actions": [(action.value, ACTION_PHRASES[action]) for action in AuditAction],
            "patients": patients,
            "chosen": request.query_params,
            "export": f"/audit.csv?{request.url.query}",
        },
    )


@router.get("/audit.csv")
async def export_audit(
    request: Request, db: DbSession, admin: CurrentAdmin, where: Filter
) -> StreamingResponse:
    events = await find_events(db, admin.practice_id, where, limit=1_000_000)
    names = await names_in(db, admin.reach, events)
    await _audit_read(
        request,
        db,
        admin,
        f"{len(events)} event(s) exported",
        where,
        _named_patients(events, names),
    )
    return StreamingResponse(
        _csv_rows(events, names),
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


def _csv_rows(events: list[AuditEvent], names: AuditNames) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS + WORDS_COLUMNS)
    for event in events:
        row = [getattr(event, column) for column in COLUMNS]
        row[1] = event.at.isoformat()
        row += [
            phrase_of(event.action),
            actor_name(event, names) or "",
            names.patients.get(event.patient_id, "") if event.patient_id else "",
            names.clinic_name(event) or "",
        ]
        writer.writerow([spreadsheet_safe(value) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()
