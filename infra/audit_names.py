"""The names the Audit page shows beside the ids of its events (R13): staff and patients
of the admin's own practice only, read in one query for a whole page of events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import ActorType
from infra.db.models import AuditEvent, Patient, StaffUser

# Past this many ids, one query for every name of the practice beats a long ``IN`` list
# (and stays under the databases' limits on bound parameters): a large export.
MANY_IDS = 2_000


@dataclass(frozen=True)
class AuditNames:
    """Names by id; an id missing here (another practice's, an operator's, one removed)
    is shown without a name."""

    staff: dict[str, str] = field(default_factory=dict)
    patients: dict[str, str] = field(default_factory=dict)


def _ids_in(events: Iterable[AuditEvent]) -> tuple[set[str], set[str]]:
    staff_ids: set[str] = set()
    patient_ids: set[str] = set()
    for event in events:
        if event.actor_id and event.actor_type == ActorType.STAFF:
            staff_ids.add(event.actor_id)
        elif event.actor_id and event.actor_type == ActorType.PATIENT:
            patient_ids.add(event.actor_id)
        if event.patient_id:
            patient_ids.add(event.patient_id)
    return staff_ids, patient_ids


async def names_in(
    db: AsyncSession, practice_id: str, events: list[AuditEvent], many: int = MANY_IDS
) -> AuditNames:
    """The names of the practice's staff and patients that ``events`` name, in one query
    (by their ids, or every name of the practice when there are more than ``many``)."""
    staff_ids, patient_ids = _ids_in(events)
    if not staff_ids and not patient_ids:
        return AuditNames()
    staff = select(literal("staff").label("kind"), StaffUser.id, StaffUser.name).where(
        StaffUser.practice_id == practice_id
    )
    patients = select(literal("patient").label("kind"), Patient.id, Patient.name).where(
        Patient.practice_id == practice_id
    )
    if len(staff_ids) + len(patient_ids) <= many:
        staff = staff.where(StaffUser.id.in_(staff_ids))
        patients = patients.where(Patient.id.in_(patient_ids))
    names = AuditNames()
    for kind, id_, name in await db.execute(union_all(staff, patients)):
        (names.staff if kind == "staff" else names.patients)[id_] = name
    return names


async def patients_to_choose(db: AsyncSession, practice_id: str) -> list[tuple[str, str]]:
    """Every patient of the practice as (id, name), by name: the Audit page's picker."""
    rows = await db.execute(
        select(Patient.id, Patient.name)
        .where(Patient.practice_id == practice_id)
        .order_by(Patient.name, Patient.id)
    )
    return [(id_, name) for id_, name in rows]
