"""A practice's Open Dental connector in the database: reading it, saving an admin's
change (audited without the keys), and what the sync records (where it stopped, that
the keys were refused)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.errors import FieldRefused
from domain.open_dental import (
    CLINIC_NUMBERS_REFUSED,
    KEY_MISSING,
    OpenDentalChange,
    OpenDentalPublic,
    check_base_url,
    masked,
)
from infra.audit import Actor, audit
from infra.db.models import Clinic, OpenDentalClinic, OpenDentalIntegration
from infra.open_dental_client import Keys, OpenDentalClient


async def integration_of(db: AsyncSession, practice_id: str) -> OpenDentalIntegration | None:
    return await db.get(OpenDentalIntegration, practice_id)


def public(
    integration: OpenDentalIntegration, clinic_numbers: dict[int, str] | None = None
) -> OpenDentalPublic:
    return OpenDentalPublic(
        base_url=integration.base_url,
        developer_key=masked(integration.developer_key),
        customer_key=masked(integration.customer_key),
        document_category=integration.document_category,
        sync_minutes=integration.sync_minutes,
        keys_refused_at=integration.keys_refused_at,
        last_sync_at=integration.last_sync_at,
        last_sync=integration.last_sync,
        clinic_numbers={clinic: number for number, clinic in (clinic_numbers or {}).items()},
    )


async def shown(db: AsyncSession, integration: OpenDentalIntegration) -> OpenDentalPublic:
    """What ``GET`` answers: the connector, keys masked, with its clinics' numbers."""
    return public(integration, await clinics_by_number(db, integration.practice_id))


def client_of(integration: OpenDentalIntegration) -> OpenDentalClient:
    return OpenDentalClient(
        integration.base_url, Keys(integration.developer_key, integration.customer_key)
    )


async def save_integration(
    db: AsyncSession,
    practice_id: str,
    change: OpenDentalChange,
    actor: Actor,
    *,
    allow_local_http: bool,
) -> tuple[OpenDentalIntegration, bool]:
    """Saves the connector, or raises ``FieldRefused`` and changes nothing. Returns it and
    whether a key changed. Keys given (changed or not) resume a sync paused because
    Open Dental refused them.

    Audited as a settings change naming what changed; a key only as "changed"."""
    base_url = check_base_url(change.base_url, allow_local_http=allow_local_http)
    if change.clinic_numbers is not None:
        await _check_clinic_numbers(db, practice_id, change.clinic_numbers)
    found = await integration_of(db, practice_id)
    for key in ("developer_key", "customer_key"):
        if getattr(change, key) is None and found is None:
            raise FieldRefused(key, KEY_MISSING.format(key=key.replace("_", " ")))
    integration = found or OpenDentalIntegration(practice_id=practice_id)
    before = {
        "base_url": found.base_url if found else None,
        "document_category": found.document_category if found else None,
        "sync_minutes": found.sync_minutes if found else None,
    }
    after = {
        "base_url": base_url,
        "document_category": change.document_category,
        "sync_minutes": change.sync_minutes,
    }
    changes = [
        f"{name}: {before[name] if before[name] is not None else 'none'} → "
        f"{after[name] if after[name] is not None else 'none'}"
        for name in after
        if before[name] != after[name]
    ]
    keys_changed = False
    for key in ("developer_key", "customer_key"):
        given = getattr(change, key)
        if given is not None and (found is None or getattr(found, key) != given):
            setattr(integration, key, given)
            changes.append(f"{key.replace('_', ' ')} changed")
            keys_changed = True
    integration.base_url = base_url
    integration.document_category = change.document_category
    integration.sync_minutes = change.sync_minutes
    keys_given = change.developer_key is not None or change.customer_key is not None
    if keys_given or before["base_url"] != base_url:
        # Keys saved (new ones, or the same once enabled in Open Dental), or another Open
        # Dental: try them again; another Open Dental is synced from the start.
        integration.keys_refused_at = None
        if before["base_url"] != base_url:
            integration.server_date_time = None
    if found is None:
        db.add(integration)
    if change.clinic_numbers is not None:
        before_numbers = await clinics_by_number(db, practice_id)
        after_numbers = {number: clinic for clinic, number in change.clinic_numbers.items()}
        if before_numbers != after_numbers:
            await db.execute(
                delete(OpenDentalClinic).where(OpenDentalClinic.practice_id == practice_id)
            )
            await db.flush()
            db.add_all(
                OpenDentalClinic(practice_id=practice_id, clinic_num=number, clinic_id=clinic)
                for number, clinic in sorted(after_numbers.items())
            )
            shown = ", ".join(f"{c} = {n}" for c, n in sorted(change.clinic_numbers.items()))
            # An event of its own: with the other changes it would not fit the detail.
            detail = f"Open Dental ClinicNums: {shown or 'none'}"[:200]
            audit(db, practice_id, AuditAction.SETTINGS_CHANGE, actor, detail=detail)
    if changes:
        detail = ("Open Dental: " + "; ".join(changes))[:200]
        audit(db, practice_id, AuditAction.SETTINGS_CHANGE, actor, detail=detail)
    await db.commit()
    return integration, keys_changed


async def _check_clinic_numbers(
    db: AsyncSession, practice_id: str, numbers: dict[str, int]
) -> None:
    known = set(await db.scalars(select(Clinic.id).where(Clinic.practice_id == practice_id)))
    unknown = sorted(set(numbers) - known)
    if unknown:
        problem = f"{unknown[0]} is not a clinic of this practice"
        raise FieldRefused("clinic_numbers", CLINIC_NUMBERS_REFUSED.format(problem=problem))
    if len(set(numbers.values())) != len(numbers):
        problem = "two clinics have the same ClinicNum"
        raise FieldRefused("clinic_numbers", CLINIC_NUMBERS_REFUSED.format(problem=problem))


async def record_sync(
    db: AsyncSession, practice_id: str, server_date_time: str | None, summary: str
) -> None:
    integration = await integration_of(db, practice_id)
    if integration is None:
        return
    if server_date_time:
        integration.server_date_time = server_date_time
    integration.last_sync_at = datetime.now(UTC)
    integration.last_sync = summary[:200]
    await db.commit()


async def mark_keys_refused(db: AsyncSession, practice_id: str) -> bool:
    """Records that Open Dental refused the keys; True the first time since they were
    last saved (the office is told once)."""
    integration = await integration_of(db, practice_id)
    if integration is None or integration.keys_refused_at is not None:
        return False
    integration.keys_refused_at = datetime.now(UTC)
    await db.commit()
    return True


async def keys_refused(db: AsyncSession, practice_id: str) -> bool:
    """Whether Open Dental refused the practice's keys (the Main Menu says so)."""
    refused_at = await db.scalar(
        select(OpenDentalIntegration.keys_refused_at).where(
            OpenDentalIntegration.practice_id == practice_id
        )
    )
    return refused_at is not None


async def clinics_by_number(db: AsyncSession, practice_id: str) -> dict[int, str]:
    """Each Open Dental ClinicNum the practice has matched to one of its clinics."""
    rows = await db.execute(
        select(OpenDentalClinic.clinic_num, OpenDentalClinic.clinic_id)
        .join(Clinic, Clinic.id == OpenDentalClinic.clinic_id)
        .where(OpenDentalClinic.practice_id == practice_id, Clinic.practice_id == practice_id)
    )
    return {int(number): str(clinic_id) for number, clinic_id in rows}
