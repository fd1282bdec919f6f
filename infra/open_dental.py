"""A practice's Open Dental connector in the database: reading it, saving an admin's
change (audited without the keys), and what the sync records (where it stopped, that
the keys were refused)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.errors import FieldRefused
from domain.open_dental import (
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


def public(integration: OpenDentalIntegration) -> OpenDentalPublic:
    return OpenDentalPublic(
        base_url=integration.base_url,
        developer_key=masked(integration.developer_key),
        customer_key=masked(integration.customer_key),
        document_category=integration.document_category,
        sync_minutes=integration.sync_minutes,
        keys_refused_at=integration.keys_refused_at,
        last_sync_at=integration.last_sync_at,
        last_sync=integration.last_sync,
    )


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
    if changes:
        detail = ("Open Dental: " + "; ".join(changes))[:200]
        audit(db, practice_id, AuditAction.SETTINGS_CHANGE, actor, detail=detail)
    await db.commit()
    return integration, keys_changed


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
