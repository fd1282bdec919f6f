"""Importing a CSV file's patients (``domain.patient_import``) into a practice's directory:
the checks that need the database, then every write in one transaction.

A row with an ``external_id`` updates the patient the practice already has from a CSV
file with that id, or adds them; a row without one always adds a patient. The work is
done in batches, whatever the file's length: one query for the patients the file's ids
name, one for the patients who already have the file's addresses (each in chunks of
``CHUNK`` values, under the databases' limits on bound parameters), then the additions,
changes and their audit events flushed together and committed once.

An address another patient of the practice has is taken only within a family of the
file (the same ``family_id``): a row cannot say, as the office's "Join the family" or
the API's ``share_address`` do, that whoever reads that mailbox may read this patient's
secure emails, so such a row is refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.clinics import UNKNOWN_CLINIC
from domain.patient_import import (
    ImportResult,
    ImportRow,
    ParsedFile,
    RowError,
    without_refused_heads,
)
from domain.patient_sources import PatientSource
from domain.reach import Reach
from infra.audit import Actor, audit
from infra.clinics import practice_clinics
from infra.db.models import Clinic, Patient, new_id

CHUNK = 1_000
SOURCE = PatientSource.CSV.value

ADDRESS_IN_USE = (
    "Another patient of the practice has this address: give both the same family_id to share it"
)
OUT_OF_REACH = "This external_id is a patient of a clinic you do not work for"
CLINIC_REQUIRED = "Required: you work with the patients of some clinics only"


class ImportCollided(Exception):
    """Another import added a patient with one of the file's ids at the same time: nothing
    of this one was written."""


@dataclass(frozen=True)
class _Planned:
    row: ImportRow
    clinic_id: str | None
    existing: Patient | None


async def import_rows(
    db: AsyncSession,
    reach: Reach,
    parsed: ParsedFile,
    *,
    dry_run: bool,
    skip_errors: bool,
    actor: Actor,
) -> ImportResult:
    """Imports the rows within ``reach`` (the member of staff's). A file with any error
    imports nothing unless ``skip_errors``; a dry run answers what the import would, and
    writes nothing."""
    practice_id = reach.practice_id
    errors = list(parsed.errors)
    clinics = _clinics_by_name(await practice_clinics(db, practice_id))
    ids = [row.external_id for row in parsed.rows if row.external_id is not None]
    existing = {
        p.external_id: p
        for p in await _by_external_id(db, practice_id, ids)
        if p.external_id is not None
    }
    planned: list[_Planned] = []
    for row in parsed.rows:
        refusal = _refusal(row, reach, clinics, existing)
        if refusal is not None:
            errors.append(refusal)
            continue
        clinic = clinics.get(row.clinic.casefold()) if row.clinic is not None else None
        found = existing.get(row.external_id) if row.external_id is not None else None
        planned.append(_Planned(row, clinic.id if clinic else None, found))
    errors.extend(await _addresses_in_use(db, practice_id, planned))
    refused = {error.row for error in errors}
    planned = [plan for plan in planned if plan.row.row not in refused]
    kept, orphans = without_refused_heads([p.row for p in planned], refused, parsed.heads)
    errors.extend(orphans)
    kept_rows = {row.row for row in kept}
    planned = [plan for plan in planned if plan.row.row in kept_rows]
    errors.sort(key=lambda error: (error.row, error.column or ""))

    if errors and not skip_errors:
        return ImportResult(errors=errors)
    result = _apply(db, practice_id, planned, actor, write=not dry_run)
    result.errors = errors
    if dry_run:
        return result
    audit(db, practice_id, AuditAction.PATIENT_IMPORT, actor, detail=_summary(result))
    try:
        await db.commit()
    except IntegrityError as error:
        await db.rollback()
        raise ImportCollided from error
    return result


def _clinics_by_name(clinics: list[Clinic]) -> dict[str, Clinic]:
    """The practice's clinics by name, compared case-insensitively (a name typed in
    another system's capitals is still the clinic)."""
    by_name: dict[str, Clinic] = {}
    for clinic in clinics:
        by_name.setdefault(clinic.name.strip().casefold(), clinic)
    return by_name


def _refusal(
    row: ImportRow, reach: Reach, clinics: dict[str, Clinic], existing: dict[str, Patient]
) -> RowError | None:
    if row.clinic is None:
        if not reach.covers(None):
            return RowError(row=row.row, column="clinic", message=CLINIC_REQUIRED)
    else:
        clinic = clinics.get(row.clinic.casefold())
        # A clinic out of the member of staff's reach is answered as another practice's.
        if clinic is None or not reach.covers(clinic.id):
            return RowError(row=row.row, column="clinic", message=UNKNOWN_CLINIC)
    found = existing.get(row.external_id) if row.external_id is not None else None
    if found is not None and not reach.covers(found.clinic_id):
        return RowError(row=row.row, column="external_id", message=OUT_OF_REACH)
    return None


def _chunks(values: list[str]) -> Iterator[list[str]]:
    unique = list(dict.fromkeys(values))
    for start in range(0, len(unique), CHUNK):
        yield unique[start : start + CHUNK]


async def _by_external_id(db: AsyncSession, practice_id: str, ids: list[str]) -> list[Patient]:
    found: list[Patient] = []
    for chunk in _chunks(ids):
        statement = select(Patient).where(
            Patient.practice_id == practice_id,
            Patient.external_source == SOURCE,
            Patient.external_id.in_(chunk),
        )
        found.extend((await db.scalars(statement)).all())
    return found


async def _addresses_in_use(
    db: AsyncSession, practice_id: str, planned: list[_Planned]
) -> list[RowError]:
    """A row's address held by a patient of the practice whom the file does not name
    (the file's own rows were compared with each other already)."""
    named = {plan.existing.id for plan in planned if plan.existing is not None}
    wanted = [plan.row.email_normalised for plan in planned]
    held: set[str] = set()
    for chunk in _chunks(wanted):
        statement = select(Patient.id, Patient.email_normalised).where(
            Patient.practice_id == practice_id, Patient.email_normalised.in_(chunk)
        )
        held.update(
            address for id_, address in (await db.execute(statement)).all() if id_ not in named
        )
    return [
        RowError(row=plan.row.row, column="email", message=ADDRESS_IN_USE)
        for plan in planned
        if plan.row.email_normalised in held
    ]


def _apply(
    db: AsyncSession, practice_id: str, planned: Iterable[_Planned], actor: Actor, *, write: bool
) -> ImportResult:
    """Counts what the rows add and change and, when ``write``, adds and changes the
    patients in the session, each audited (not flushed yet)."""
    result = ImportResult()
    heads: dict[str, str] = {}  # family_id -> the head's patient id
    added: list[Patient] = []
    for plan in planned:
        row = plan.row
        patient = plan.existing
        patient_id = patient.id if patient is not None else new_id()
        guarantor_id: str | None = None
        if row.family_id is not None:
            head_id = heads.setdefault(row.family_id, patient_id)
            guarantor_id = None if head_id == patient_id else head_id
        wanted: dict[str, str | None] = {
            "name": row.name,
            "email": row.email,
            "status": row.status.value,
            "language": row.language,
            "clinic_id": plan.clinic_id,
        }
        # A row of no family leaves the patient's family as the office set it.
        if row.family_id is not None:
            wanted["guarantor_id"] = guarantor_id
        if patient is None:
            result.created += 1
            if not write:
                continue
            added.append(
                Patient(
                    id=patient_id,
                    practice_id=practice_id,
                    email_normalised=row.email_normalised,
                    external_source=SOURCE,
                    external_id=row.external_id,
                    **wanted,
                )
            )
            audit(db, practice_id, AuditAction.PATIENT_ADD, actor, patient_id=patient_id)
            continue
        changed = [name for name, value in wanted.items() if getattr(patient, name) != value]
        if not changed:
            result.unchanged += 1
            continue
        result.updated += 1
        if not write:
            continue
        for name in changed:
            setattr(patient, name, wanted[name])
        patient.email_normalised = row.email_normalised
        audit(
            db,
            practice_id,
            AuditAction.PATIENT_EDIT,
            actor,
            patient_id=patient.id,
            detail=f"changed: {', '.join(changed)}",
        )
    db.add_all(added)
    return result


def _summary(result: ImportResult) -> str:
    """The import's own event: counts only, never a name or an address."""
    refused = len({error.row for error in result.errors})
    return (
        f"csv: {result.created} created, {result.updated} updated, "
        f"{result.unchanged} unchanged, {refused} rows refused"
    )
