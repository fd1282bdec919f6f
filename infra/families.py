"""Families: patients of one practice who share an address, and each one's guarantor.

A family is headed by its guarantor; a patient names the guarantor with ``guarantor_id``
and the head names none. Chains of guarantors end (``infra.directory`` refuses a cycle),
but every walk here also stops at a patient it has already seen, so a cycle written by
hand into the database cannot hang a page.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.reach import Reach
from infra.db.models import Patient


async def holders_of(
    db: AsyncSession, practice_id: str, address_normalised: str, *, besides: str | None = None
) -> list[Patient]:
    """The practice's patients whose address is this one, the earliest added first."""
    statement = select(Patient).where(
        Patient.practice_id == practice_id, Patient.email_normalised == address_normalised
    )
    if besides is not None:
        statement = statement.where(Patient.id != besides)
    statement = statement.order_by(Patient.created_at, Patient.id)
    return list((await db.scalars(statement)).all())


async def chain_of(db: AsyncSession, patient: Patient) -> list[Patient]:
    """The patient, their guarantor, that one's guarantor, and so on to the head."""
    chain = [patient]
    seen = {patient.id}
    while chain[-1].guarantor_id is not None and chain[-1].guarantor_id not in seen:
        guarantor = await db.get(Patient, chain[-1].guarantor_id)
        if guarantor is None:
            break
        chain.append(guarantor)
        seen.add(guarantor.id)
    return chain


async def head_of(db: AsyncSession, patient: Patient) -> Patient:
    """The head of the patient's family: the end of their guarantor chain."""
    return (await chain_of(db, patient))[-1]


@dataclass(frozen=True)
class Family:
    """Who the patient page lists beside a patient."""

    guarantor: Patient | None
    # Everyone else at the patient's address, with the same guarantor, or whose guarantor
    # the patient is; by name.
    members: list[Patient]
    # Those of ``members`` at the patient's address: they read the same mailbox.
    same_address: list[Patient]
    # Patients at the address whom the member of staff may not see (``seen_from``): not
    # named, but the mailbox is shared with them all the same.
    unseen_at_address: int = 0

    def seen_from(self, reach: Reach) -> Family:
        """The family as a member of staff with this reach sees it: the patients of
        clinics they do not work for left out."""

        def seen(patients: list[Patient]) -> list[Patient]:
            return [patient for patient in patients if reach.covers(patient.clinic_id)]

        guarantor = self.guarantor
        if guarantor is not None and not reach.covers(guarantor.clinic_id):
            guarantor = None
        same_address = seen(self.same_address)
        unseen = self.unseen_at_address + len(self.same_address) - len(same_address)
        return Family(guarantor, seen(self.members), same_address, unseen)


async def family_of(db: AsyncSession, patient: Patient) -> Family:
    guarantor = (
        await db.get(Patient, patient.guarantor_id) if patient.guarantor_id is not None else None
    )
    # No address (removed in Open Dental) is no one's shared address.
    related = [Patient.guarantor_id == patient.id]
    if patient.email_normalised:
        related.append(Patient.email_normalised == patient.email_normalised)
    if patient.guarantor_id is not None:
        related.append(Patient.guarantor_id == patient.guarantor_id)
    statement = (
        select(Patient)
        .where(Patient.practice_id == patient.practice_id, Patient.id != patient.id, or_(*related))
        .order_by(Patient.name, Patient.id)
    )
    members = [
        member
        for member in (await db.scalars(statement)).all()
        if guarantor is None or member.id != guarantor.id
    ]
    address = patient.email_normalised
    same_address = [m for m in members if address and m.email_normalised == address]
    if guarantor is not None and address and guarantor.email_normalised == address:
        same_address.insert(0, guarantor)
    return Family(guarantor=guarantor, members=members, same_address=same_address)
