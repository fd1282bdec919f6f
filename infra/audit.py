"""Writing and reading the audit trail (R13)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import ActorType, AuditAction
from infra.db.models import AuditEvent

PAGE_LIMIT = 1000


@dataclass(frozen=True)
class Actor:
    type: ActorType
    id: str | None = None
    client_address: str | None = None


SYSTEM = Actor(ActorType.SYSTEM)


def audit(
    db: AsyncSession,
    practice_id: str,
    action: AuditAction,
    actor: Actor,
    *,
    patient_id: str | None = None,
    secure_email_id: str | None = None,
    detail: str | None = None,
) -> None:
    """Adds an event to the caller's transaction: it is kept exactly when the action is.

    It is written with an empty link; each process's linker (``infra.audit_chain``) puts
    it into the hash chain once it has committed."""
    db.add(
        AuditEvent(
            practice_id=practice_id,
            action=action.value,
            actor_type=actor.type.value,
            actor_id=actor.id,
            client_address=actor.client_address,
            patient_id=patient_id,
            secure_email_id=secure_email_id,
            detail=detail,
        )
    )


class AboutSecureEmail(Protocol):
    """A secure email as its audit events name it (a row, or its owners)."""

    @property
    def id(self) -> str: ...
    @property
    def practice_id(self) -> str: ...
    @property
    def patient_id(self) -> str: ...


def audit_secure_email(
    db: AsyncSession,
    secure_email: AboutSecureEmail,
    action: AuditAction,
    actor: Actor,
    detail: str | None = None,
) -> None:
    """An event about one secure email: its practice, patient and id, never its words."""
    audit(
        db,
        secure_email.practice_id,
        action,
        actor,
        patient_id=secure_email.patient_id,
        secure_email_id=secure_email.id,
        detail=detail,
    )


@dataclass(frozen=True)
class AuditFilter:
    action: AuditAction | None = None
    secure_email_id: str | None = None
    patient_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def find_events(
    db: AsyncSession, practice_id: str, where: AuditFilter, limit: int = PAGE_LIMIT
) -> list[AuditEvent]:
    statement = select(AuditEvent).where(AuditEvent.practice_id == practice_id)
    if where.action is not None:
        statement = statement.where(AuditEvent.action == where.action.value)
    if where.secure_email_id:
        statement = statement.where(AuditEvent.secure_email_id == where.secure_email_id)
    if where.patient_id:
        # A list's read names the patients it showed in its detail (``listing_detail``).
        statement = statement.where(
            or_(
                AuditEvent.patient_id == where.patient_id,
                AuditEvent.detail.contains(where.patient_id, autoescape=True),
            )
        )
    if where.since is not None:
        statement = statement.where(AuditEvent.at >= where.since)
    if where.until is not None:
        statement = statement.where(AuditEvent.at < where.until)
    statement = statement.order_by(AuditEvent.id).limit(limit)
    return list((await db.scalars(statement)).all())
