"""Practices: reading them, and changing their Secure Email settings (R1, R8), audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.practice import (
    CLEARABLE,
    PracticeRuleError,
    PracticeUpdate,
    check_practice,
    check_reminder,
    logo_type,
)
from infra.audit import Actor, audit
from infra.db.models import Practice
from infra.mail.factory import sender_is_verified
from infra.settings import Settings

UNVERIFIED_SENDER = (
    "This sender address is not verified with the mail service. Verify it in SendGrid "
    "and add it to SECURE_EMAIL_SENDGRID_VERIFIED_SENDERS first."
)


async def update_practice(
    db: AsyncSession, practice: Practice, change: PracticeUpdate, settings: Settings
) -> Practice:
    """Applies a partial update, or raises ``PracticeRuleError`` and changes nothing."""
    values = change.model_dump(exclude_unset=True)
    if "sender_address" in values and values["sender_address"] is not None:
        values["sender_address"] = str(values["sender_address"])
    merged_enabled = values.get("secure_email_enabled", practice.secure_email_enabled)
    merged_sender = values.get("sender_address", practice.sender_address)
    check_practice(bool(merged_enabled), merged_sender)
    merged_expiry = values.get("expiry_days") or practice.expiry_days
    merged_reminder = values.get("reminder_after_hours")
    if merged_reminder is None:
        merged_reminder = practice.reminder_after_hours
    # Named for what was asked: the reminder if it was given, else the shorter expiry.
    changed = "reminder_after_hours" if "reminder_after_hours" in values else "expiry_days"
    check_reminder(merged_reminder, merged_expiry, changed)
    if merged_sender and not sender_is_verified(merged_sender, settings):
        # Caught now, not at the first notice SendGrid would refuse.
        raise PracticeRuleError("sender_address", UNVERIFIED_SENDER)
    for name, value in values.items():
        if value is not None or name in CLEARABLE:
            setattr(practice, name, value)
    await db.commit()
    return practice


async def practice(db: AsyncSession, practice_id: str) -> Practice | None:
    return await db.get(Practice, practice_id)


async def time_zone_of(db: AsyncSession, practice_id: str) -> str:
    """The zone the practice's pages show times in (R16); UTC for no such practice."""
    found = await db.get(Practice, practice_id)
    return found.time_zone if found else "UTC"


async def all_practices(db: AsyncSession) -> list[Practice]:
    return list((await db.scalars(select(Practice).order_by(Practice.name))).all())


async def logo_of(db: AsyncSession, practice: Practice) -> bytes | None:
    """The practice's logo (a deferred column: most reads of a practice need not carry it)."""
    return await db.scalar(select(Practice.logo).where(Practice.id == practice.id))


async def change_logo(
    db: AsyncSession, practice: Practice, data: bytes | None, actor: Actor
) -> Practice:
    """Sets the logo (``data``, checked by its first bytes) or removes it (None), audited.

    Raises ``PracticeRuleError`` and changes nothing if the file is refused."""
    content_type = None if data is None else logo_type(data)
    old = practice.logo_type
    if data is None and old is None:
        return practice
    practice.logo = data
    practice.logo_type = content_type
    shown = "none" if data is None else f"{content_type}, {-(-len(data) // 1024)} KB"
    audit(
        db,
        practice.id,
        AuditAction.SETTINGS_CHANGE,
        actor,
        detail=f"logo: {old or 'none'} → {shown}",
    )
    await db.commit()
    return practice


# Not settings: never shown as changed. The logo's bytes are audited by ``change_logo``.
_NOT_SETTINGS = frozenset({"id", "created_at", "logo"})
# The audit log's detail column holds 200 characters; each value keeps a readable start.
_VALUE_CHARS = 60


def practice_settings(practice: Practice) -> dict[str, Any]:
    """Every setting column, so settings added later are audited without a change here."""
    return {
        column.key: getattr(practice, column.key)
        for column in inspect(Practice).column_attrs
        if column.key not in _NOT_SETTINGS
    }


def shown_setting(value: Any) -> str:
    text = "none" if value is None else str(value)
    return text if len(text) <= _VALUE_CHARS else f"{text[: _VALUE_CHARS - 1]}…"


async def change_settings(
    db: AsyncSession, practice: Practice, change: PracticeUpdate, settings: Settings, actor: Actor
) -> Practice:
    """Applies the change with one audit event per changed field, in one transaction.

    Raises ``PracticeRuleError`` and changes (and records) nothing if a rule refuses it.
    """
    seen = practice_settings(practice)

    def record_changes(*_: object) -> None:
        # At the flush that writes the change: the values as stored, whatever
        # update_practice normalised, and in the same commit as the change itself.
        nonlocal seen
        now = practice_settings(practice)
        for name, old in seen.items():
            if now[name] != old:
                detail = f"{name}: {shown_setting(old)} → {shown_setting(now[name])}"
                audit(db, practice.id, AuditAction.SETTINGS_CHANGE, actor, detail=detail)
        seen = now

    event.listen(db.sync_session, "before_flush", record_changes)
    try:
        return await update_practice(db, practice, change, settings)
    finally:
        event.remove(db.sync_session, "before_flush", record_changes)
