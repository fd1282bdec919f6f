"""The patient directory: the page, search, adding a patient and editing one.

Searches, additions, edits and the pages showing a patient are audited (R13): a search by
how many it found and their ids, never by what was typed; an edit by the names of the
fields changed. The message and audit detail it shares with ``web.api.patients`` are in
``web.services.patients``.

A changed address is for new secure emails only: each open one keeps the address its
notice went to (``SecureEmail.recipient_address``), so its link and passcodes still work
for whoever holds that mailbox. The edit page says so and offers Send again (the status
page's flow, which sends to the patient's current address) for each of them.

An address another patient of the practice has is taken only after the office confirms:
the first submit shows who uses it and asks "Join the family?" (``family_confirm`` in
``_patient_form.html``); "Join the family" submits again with ``join_family``, which makes
the head of that family the patient's guarantor. The edit page lists the patient's family
(``infra.families``) and warns when others read the same mailbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from domain.addresses import normalise_address
from domain.audit import AuditAction
from domain.clinics import UNKNOWN_CLINIC
from domain.languages import DEFAULT_LANGUAGE
from domain.patients import PatientCreate, PatientStatus, PatientUpdate, not_sendable_reason
from domain.reach import Reach
from domain.secure_email import SecureEmailStatus
from infra import directory, secure_emails
from infra.clinics import practice_clinics
from infra.db.models import Patient, SecureEmail
from infra.directory import AddressInUse, GuarantorRefused, UnknownClinic
from infra.families import Family, family_of
from infra.i18n import LANGUAGES
from infra.practices import time_zone_of
from web.deps import CurrentStaff, DbSession, audit_list, audit_staff, practice_patient, staff_actor
from web.services.families import ADDRESS_IN_USE_PAGE, GUARANTOR_REFUSED, names
from web.services.patients import search_detail
from web.templating import form_errors, render

router = APIRouter(tags=["office"], include_in_schema=False)
NO_CLINIC = "none"


class PatientTyped(BaseModel):
    """The patient form (``_patient_form.html``) as typed, checked by ``PatientCreate`` or
    ``PatientUpdate`` and shown again when refused."""

    name: str = ""
    email: str = ""
    status: str = ""
    # Left out (a form from before the field), the patient's language stays as it is.
    language: str | None = None
    # "1" from the confirmation's "Join the family": share the address already in use.
    join_family: str = ""
    # Shown only when the practice has clinics: left out, the patient's clinic stays;
    # ``NO_CLINIC`` (a blank field would read as left out) is the practice's own.
    clinic_id: str | None = None

    def checked(self, clinic_id: str | None = None) -> dict[str, str | None]:
        """What ``PatientCreate`` or ``PatientUpdate`` checks: left out, ``clinic_id``."""
        typed = self.model_dump(exclude={"join_family"})
        if self.clinic_id is None:
            typed["clinic_id"] = clinic_id
        elif self.clinic_id == NO_CLINIC:
            typed["clinic_id"] = None
        return typed


class NewPatientTyped(PatientTyped):
    # A form without these fields adds a patient who reads English.
    status: str = PatientStatus.PATIENT.value
    language: str = DEFAULT_LANGUAGE


@router.get("/patients")
async def patients_page(request: Request, db: DbSession, staff: CurrentStaff) -> HTMLResponse:
    # A `?q=` from an old bookmark is not searched: a typed name belongs in no URL.
    return await _patients(request, db, staff)


@router.get("/patients/search")
async def patients_search_page() -> RedirectResponse:
    return RedirectResponse("/patients", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/patients/search")
async def search_patients_form(
    request: Request, db: DbSession, staff: CurrentStaff, q: Annotated[str, Form()] = ""
) -> HTMLResponse:
    """By POST, so what was typed (often a patient's name) stays out of the URL, the
    browser's history and the server's logs."""
    return await _patients(request, db, staff, q=q)


@router.post("/patients")
async def add_patient_form(
    request: Request,
    db: DbSession,
    staff: CurrentStaff,
    form: Annotated[NewPatientTyped, Form()],
) -> Response:
    typed = form.model_dump(exclude={"join_family"})
    try:
        new = PatientCreate.model_validate(form.checked(), strict=False)
    except ValidationError as error:
        return await _patients(request, db, staff, typed=typed, errors=form_errors(error))
    if form.join_family == "1":
        head = await directory.family_to_join(db, staff.practice_id, new.email_normalised)
        new = new.model_copy(
            update={"guarantor_id": head.id if head else None, "share_address": True}
        )
    try:
        await directory.add_patient(
            db, staff.practice_id, new, added_by=staff_actor(request, staff), reach=staff.reach
        )
    except AddressInUse as refused:
        return await _patients(
            request,
            db,
            staff,
            typed=typed,
            errors={"email": ADDRESS_IN_USE_PAGE},
            confirm=confirmation(new.name, str(new.email), refused, staff.reach),
        )
    except UnknownClinic:
        errors = {"clinic_id": UNKNOWN_CLINIC}
        return await _patients(request, db, staff, typed=typed, errors=errors)
    return RedirectResponse("/patients?added=1", status_code=status.HTTP_303_SEE_OTHER)


# A patient of a clinic the member of staff does not work for is not named to them.
OUT_OF_REACH_HOLDER = "another patient of the practice"
OUT_OF_REACH_HEAD = "the other patient"


@dataclass(frozen=True)
class Confirmation:
    """What the office is asked before a patient shares an address already in use."""

    name: str
    address: str
    holders: str
    head: str


def confirmation(name: str, address: str, refused: AddressInUse, reach: Reach) -> Confirmation:
    """The question, naming only the patients the member of staff may see."""
    seen = [holder for holder in refused.holders if reach.covers(holder.clinic_id)]
    holders = names(seen) if seen else OUT_OF_REACH_HOLDER
    head = refused.head.name if reach.covers(refused.head.clinic_id) else OUT_OF_REACH_HEAD
    return Confirmation(name, address, holders, head)


async def _patients(
    request: Request,
    db: DbSession,
    staff: CurrentStaff,
    *,
    q: str = "",
    typed: dict[str, str | None] | None = None,
    errors: dict[str, str] | None = None,
    confirm: Confirmation | None = None,
) -> HTMLResponse:
    patients = await directory.find_patients(db, staff.reach, q)
    # Every listing shows names and addresses: audited by count and ids, never by what
    # was typed.
    await audit_staff(
        db, request, staff, AuditAction.OFFICE_PATIENT_SEARCH, detail=search_detail(q, patients)
    )
    return render(
        request,
        "office/patients.html",
        {
            "staff": staff,
            "patients": patients,
            "q": q,
            "searched": bool(q.strip()),
            "typed": typed or {"status": PatientStatus.PATIENT.value, "language": DEFAULT_LANGUAGE},
            "errors": errors or {},
            "statuses": list(PatientStatus),
            "languages": LANGUAGES,
            "clinics": await practice_clinics(db, staff.practice_id),
            "added": request.query_params.get("added") == "1",
            "confirm": confirm,
        },
        status_code=(
            status.HTTP_409_CONFLICT
            if confirm
            else status.HTTP_422_UNPROCESSABLE_CONTENT
            if errors
            else status.HTTP_200_OK
        ),
    )


# Editing a patient -------------------------------------------------------------------

# Not open for the patient any more: nothing to keep or send again.
CLOSED = {SecureEmailStatus.EXPIRED, SecureEmailStatus.FAILED, SecureEmailStatus.WITHDRAWN}


@dataclass(frozen=True)
class StayingBehind:
    """Open secure emails sent to an address the patient no longer has."""

    address: str
    messages: list[SecureEmail]


async def staying_behind(
    db: DbSession, patient: Patient
) -> tuple[list[StayingBehind], dict[str, SecureEmail]]:
    """The open secure emails whose address is not the patient's now, by that address,
    and, by original id, those already sent again (so the page does not offer it twice)."""
    unexpired = await secure_emails.unexpired_of_patient(db, patient.id)
    sent_again = {m.resent_from_id: m for m in unexpired if m.resent_from_id}
    by_address: dict[str, StayingBehind] = {}
    for message in reversed(unexpired):  # oldest first, as they were sent
        address = message.recipient_address
        # None: sent before the address was kept; its passcodes follow the patient.
        if address is None or normalise_address(address) == patient.email_normalised:
            continue
        if SecureEmailStatus(message.status) in CLOSED:
            continue
        key = normalise_address(address)
        by_address.setdefault(key, StayingBehind(address, [])).messages.append(message)
    return list(by_address.values()), sent_again


@router.get("/patients/{patient_id}/edit")
async def edit_patient_page(
    request: Request, db: DbSession, staff: CurrentStaff, patient_id: str
) -> HTMLResponse:
    patient = await practice_patient(db, staff, patient_id)
    typed = {
        "name": patient.name,
        "email": patient.email,
        "status": patient.status,
        "language": patient.language,
        "clinic_id": patient.clinic_id,
    }
    return await _edit_page(request, db, staff, patient, typed=typed)


@router.post("/patients/{patient_id}/edit")
async def edit_patient_form(
    request: Request,
    db: DbSession,
    staff: CurrentStaff,
    patient_id: str,
    form: Annotated[PatientTyped, Form()],
) -> Response:
    patient = await practice_patient(db, staff, patient_id)
    # The form always sends every field: an emptied one is refused as when adding.
    typed = form.checked(patient.clinic_id)
    if form.language is None:
        typed["language"] = patient.language
    try:
        change = PatientUpdate.model_validate(typed, strict=False)
    except ValidationError as error:
        return await _edit_page(request, db, staff, patient, typed=typed, errors=form_errors(error))
    if form.join_family == "1" and change.email is not None:
        head = await directory.family_to_join(
            db, staff.practice_id, normalise_address(change.email), besides=patient.id
        )
        joined: dict[str, object] = {"share_address": True}
        if head is not None and head.id != patient.id:
            joined["guarantor_id"] = head.id
        change = PatientUpdate.model_validate(
            {**change.model_dump(exclude_unset=True), **joined}, strict=False
        )
    refused_again = partial(_edit_page, request, db, staff, patient, typed=typed)
    try:
        await directory.change_patient(
            db, patient, change, changed_by=staff_actor(request, staff), reach=staff.reach
        )
    except AddressInUse as refused:
        return await refused_again(
            errors={"email": ADDRESS_IN_USE_PAGE},
            status_code=status.HTTP_409_CONFLICT,
            confirm=confirmation(
                change.name or patient.name, str(change.email), refused, staff.reach
            ),
        )
    except GuarantorRefused as refused:
        return await refused_again(
            errors={"email": GUARANTOR_REFUSED[refused.problem]},
            status_code=status.HTTP_409_CONFLICT,
        )
    except UnknownClinic:
        return await refused_again(errors={"clinic_id": UNKNOWN_CLINIC})
    return RedirectResponse(
        f"/patients/{patient.id}/edit?saved=1", status_code=status.HTTP_303_SEE_OTHER
    )


async def _edit_page(
    request: Request,
    db: DbSession,
    staff: CurrentStaff,
    patient: Patient,
    *,
    typed: dict[str, str | None],
    errors: dict[str, str] | None = None,
    status_code: int = status.HTTP_422_UNPROCESSABLE_CONTENT,
    confirm: Confirmation | None = None,
) -> HTMLResponse:
    # The page shows the patient's name and address (and, refused, what was typed).
    await audit_staff(db, request, staff, AuditAction.OFFICE_PATIENT_VIEW, patient_id=patient.id)
    behind, sent_again = await staying_behind(db, patient)
    shown = sum(len(group.messages) for group in behind)
    if shown:
        # Their subjects are PHI: the read is audited by count, as the Sent box is.
        await audit_staff(
            db,
            request,
            staff,
            AuditAction.OFFICE_SENT_LIST,
            patient_id=patient.id,
            detail=f"{shown} secure email(s)",
        )
    family = (await family_of(db, patient)).seen_from(staff.reach)
    await _audit_family(request, db, staff, family)
    return render(
        request,
        "office/patient_edit.html",
        {
            "staff": staff,
            "patient": patient,
            "typed": typed,
            "errors": errors or {},
            "statuses": list(PatientStatus),
            "languages": LANGUAGES,
            "clinics": await practice_clinics(db, staff.practice_id),
            "not_sendable": not_sendable_reason(patient.status, patient.email),
            "saved": request.query_params.get("saved") == "1" and not errors,
            "behind": behind,
            "sent_again": sent_again,
            "time_zone": await time_zone_of(db, staff.practice_id),
            "confirm": confirm,
            "family": family,
        },
        status_code=status_code if errors else status.HTTP_200_OK,
    )


async def _audit_family(
    request: Request, db: DbSession, staff: CurrentStaff, family: Family
) -> None:
    """The family's names are shown: audited as a listing, by count and ids (R13)."""
    shown = ([family.guarantor] if family.guarantor else []) + family.members
    if shown:
        summary, patient_ids = f"family: {len(shown)}", (p.id for p in shown)
        await audit_list(
            db, request, staff, AuditAction.OFFICE_PATIENT_SEARCH, summary, patient_ids
        )
