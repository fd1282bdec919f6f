"""The names the Audit page shows beside the ids of its events (R13): staff and patients
of the admin's own practice only, read in one query for a whole page of events; and the
clinic each event is about (R19), resolved from what the event names.

An event's clinic is not stored in the hash-chained log: it is read from the message or
patient the event names (``EventClinics.clinic_of``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, String, and_, case, literal, null, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import ActorType
from domain.reach import Reach
from infra.db.models import AuditEvent, Clinic, Patient, SecureEmail, StaffUser
from infra.reach import within

# Past this many ids, one query for every name of the practice beats a long ``IN`` list
# (and stays under the databases' limits on bound parameters): a large export.
MANY_IDS = 2_000


@dataclass(frozen=True)
class EventClinics:
    """The clinic ids an event can be resolved to: a secure email's, recorded when it was
    sent (it never changes), and a patient's, current (it may change). Ids missing here
    (none, another practice's, one removed) resolve to no clinic."""

    of_messages: dict[str, str] = field(default_factory=dict)
    of_patients: dict[str, str] = field(default_factory=dict)

    def add(self, kind: str, id_: str, clinic_id: str | None) -> None:
        """One row of the query: a "secure_email" or a "patient" and its clinic."""
        if clinic_id:
            (self.of_messages if kind == "secure_email" else self.of_patients)[id_] = clinic_id

    def clinic_of(self, event: AuditEvent) -> str | None:
        """The event's clinic: its message's when it names one (even a message sent for
        no clinic), else its patient's; None for the practice-wide (settings, staff)."""
        if event.secure_email_id:
            return self.of_messages.get(event.secure_email_id)
        if event.patient_id:
            return self.of_patients.get(event.patient_id)
        return None


@dataclass(frozen=True)
class AuditNames:
    """Names by id; an id missing here (another practice's, an operator's, one removed)
    is shown without a name. ``clinics`` holds every clinic of the practice: empty for a
    practice without clinics."""

    staff: dict[str, str] = field(default_factory=dict)
    patients: dict[str, str] = field(default_factory=dict)
    clinics: dict[str, str] = field(default_factory=dict)
    event_clinics: EventClinics = field(default_factory=EventClinics)

    def clinic_name(self, event: AuditEvent) -> str | None:
        clinic_id = self.event_clinics.clinic_of(event)
        return self.clinics.get(clinic_id) if clinic_id else None


def _ids_in(events: Iterable[AuditEvent]) -> tuple[set[str], set[str], set[str]]:
    staff_ids: set[str] = set()
    patient_ids: set[str] = set()
    message_ids: set[str] = set()
    for event in events:
        if event.actor_id and event.actor_type == ActorType.STAFF:
            staff_ids.add(event.actor_id)
        elif event.actor_id and event.actor_type == ActorType.PATIENT:
            patient_ids.add(event.actor_id)
        if event.patient_id:
            patient_ids.add(event.patient_id)
        if event.secure_email_id:
            message_ids.add(event.secure_email_id)
    return staff_ids, patient_ids, message_ids


# Every part of the one query reads (kind, id, name, clinic id); ids None: every one of
# the practice.
_NONE = null().cast(String)
Ids = set[str] | None
Part = Select[*tuple[Any, ...]]


def _among(statement: Part, column: Any, ids: Ids) -> Part:
    return statement if ids is None else statement.where(column.in_(ids))


def _staff(practice_id: str, ids: Ids) -> Part:
    statement = select(literal("staff").label("kind"), StaffUser.id, StaffUser.name, _NONE)
    return _among(statement.where(StaffUser.practice_id == practice_id), StaffUser.id, ids)


def _patients(practice_id: str, ids: Ids, reach: Reach | None = None) -> Part:
    """The patients' clinics, and the names of those within ``reach`` (with none, no names
    and only the patients of a clinic): a reader restricted to clinics sees an event of
    another clinic's patient by its id, as in the events themselves."""
    name = _NONE if reach is None else case((and_(*within(reach)), Patient.name), else_=_NONE)
    statement = select(literal("patient").label("kind"), Patient.id, name, Patient.clinic_id)
    statement = statement.where(Patient.practice_id == practice_id)
    if reach is None:
        statement = statement.where(Patient.clinic_id.is_not(None))
    return _among(statement, Patient.id, ids)


def _messages(practice_id: str, ids: Ids) -> Part:
    """The clinics the practice's messages were sent for (those sent for one)."""
    statement = select(
        literal("secure_email").label("kind"), SecureEmail.id, _NONE, SecureEmail.clinic_id
    ).where(SecureEmail.practice_id == practice_id, SecureEmail.clinic_id.is_not(None))
    return _among(statement, SecureEmail.id, ids)


def _clinics(practice_id: str) -> Part:
    """Every clinic of the practice (a few): their names, and whether it has any."""
    return select(literal("clinic").label("kind"), Clinic.id, Clinic.name, _NONE).where(
        Clinic.practice_id == practice_id
    )


def _or_all(ids: set[str], total: int, many: int) -> Ids:
    return ids if total <= many else None


async def names_in(
    db: AsyncSession, reach: Reach, events: list[AuditEvent], many: int = MANY_IDS
) -> AuditNames:
    """The names of the practice's staff and of the patients within ``reach`` that
    ``events`` name, its clinics and the clinic of each event, in one query (by their ids,
    or every name and message clinic of the practice when there are more than ``many``)."""
    practice_id = reach.practice_id
    staff_ids, patient_ids, message_ids = _ids_in(events)
    total = len(staff_ids) + len(patient_ids) + len(message_ids)
    parts = union_all(
        _staff(practice_id, _or_all(staff_ids, total, many)),
        _patients(practice_id, _or_all(patient_ids, total, many), reach),
        _messages(practice_id, _or_all(message_ids, total, many)),
        _clinics(practice_id),
    )
    names = AuditNames()
    for kind, id_, name, clinic_id in await db.execute(parts):
        if kind == "staff":
            names.staff[id_] = name
        elif kind == "clinic":
            names.clinics[id_] = name
        else:
            if kind == "patient" and name is not None:
                names.patients[id_] = name
            names.event_clinics.add(kind, id_, clinic_id)
    return names


async def clinics_in(
    db: AsyncSession, practice_id: str, events: list[AuditEvent], many: int = MANY_IDS
) -> EventClinics:
    """The clinic of each of ``events`` (``EventClinics.clinic_of``), without names, in
    one query; none read when the events name no message or patient."""
    patient_ids = {event.patient_id for event in events if event.patient_id}
    message_ids = {event.secure_email_id for event in events if event.secure_email_id}
    clinics = EventClinics()
    if not patient_ids and not message_ids:
        return clinics
    total = len(patient_ids) + len(message_ids)
    parts = union_all(
        _patients(practice_id, _or_all(patient_ids, total, many)),
        _messages(practice_id, _or_all(message_ids, total, many)),
    )
    for kind, id_, _name, clinic_id in await db.execute(parts):
        clinics.add(kind, id_, clinic_id)
    return clinics


async def patients_to_choose(db: AsyncSession, reach: Reach) -> list[tuple[str, str]]:
    """Every patient within reach as (id, name), by name: the Audit page's picker."""
    rows = await db.execute(
        select(Patient.id, Patient.name).where(*within(reach)).order_by(Patient.name, Patient.id)
    )
    return [(id_, name) for id_, name in rows]
