"""``/api/v1/practice``: the practice's Secure Email settings.

Any staff member may read them (practice software acting as a clerk needs to know whether
Secure Email is on and how long messages live); only admins change them. Every change is
audited field by field, old → new: none of these settings is PHI.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field
from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession

from domain.audit import AuditAction
from domain.practice import PracticePublic, PracticeRuleError, PracticeUpdate
from infra.audit import audit
from infra.db.models import Practice, StaffUser
from infra.practices import update_practice
from infra.settings import Settings
from web.deps import ApiAdmin, ApiStaff, DbSession, SettingsDep, practice_of, staff_actor
from web.errors import field_error

router = APIRouter(prefix="/practice", tags=["practice"])

# Not settings: never shown as changed.
_NOT_SETTINGS = frozenset({"id", "created_at"})
# The audit log's detail column holds 200 characters; each value keeps a readable start.
_VALUE_CHARS = 60


def practice_settings(practice: Practice) -> dict[str, Any]:
    """Every setting column, so settings added later are audited without a change here."""
    return {
        column.key: getattr(practice, column.key)
        for column in inspect(Practice).column_attrs
        if column.key not in _NOT_SETTINGS
    }


def _shown(value: Any) -> str:
    text = "none" if value is None else str(value)
    return text if len(text) <= _VALUE_CHARS else f"{text[: _VALUE_CHARS - 1]}…"


async def change_settings(
    db: AsyncSession,
    request: Request,
    admin: StaffUser,
    practice: Practice,
    change: PracticeUpdate,
    settings: Settings,
) -> Practice:
    """Applies the change with one audit event per changed field, in one transaction.

    Raises ``PracticeRuleError`` and changes (and records) nothing if a rule refuses it.
    """
    actor = staff_actor(request, admin)
    seen = practice_settings(practice)

    def record_changes(*_: object) -> None:
        # At the flush that writes the change: the values as stored, whatever
        # update_practice normalised, and in the same commit as the change itself.
        nonlocal seen
        now = practice_settings(practice)
        for name, old in seen.items():
            if now[name] != old:
                detail = f"{name}: {_shown(old)} → {_shown(now[name])}"
                audit(db, admin.practice_id, AuditAction.SETTINGS_CHANGE, actor, detail=detail)
        seen = now

    event.listen(db.sync_session, "before_flush", record_changes)
    try:
        return await update_practice(db, practice, change, settings)
    finally:
        event.remove(db.sync_session, "before_flush", record_changes)


class PracticeSettings(PracticeUpdate):
    """What ``GET`` returns, sent back as it is (DESIGN §4): its ``id`` must be this
    practice's and changes nothing."""

    id: str | None = Field(default=None, description="This practice's id, if given")


@router.get("")
async def read_practice(db: DbSession, staff: ApiStaff) -> PracticePublic:
    return PracticePublic.model_validate(await practice_of(db, staff))


async def _change(
    request: Request, db: AsyncSession, settings: Settings, admin: StaffUser, change: PracticeUpdate
) -> PracticePublic:
    practice = await practice_of(db, admin)
    try:
        practice = await change_settings(db, request, admin, practice, change, settings)
    except PracticeRuleError as error:
        raise field_error(error.field, error.message) from error
    return PracticePublic.model_validate(practice)


@router.put("")
async def change_practice(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    admin: ApiAdmin,
    change: PracticeSettings,
) -> PracticePublic:
    if change.id is not None and change.id != admin.practice_id:
        raise field_error("id", "This is not your practice's id: leave it out or send your own")
    values = change.model_dump(exclude_unset=True, exclude={"id"})
    return await _change(request, db, settings, admin, PracticeUpdate.model_validate(values))


@router.patch("")
async def change_some_practice_settings(
    request: Request, db: DbSession, settings: SettingsDep, admin: ApiAdmin, change: PracticeUpdate
) -> PracticePublic:
    """Changes only the fields given; the others keep their value."""
    return await _change(request, db, settings, admin, change)
