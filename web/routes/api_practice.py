"""``/api/v1/practice``: the practice's Secure Email settings."""

from __future__ import annotations

from fastapi import APIRouter

from domain.practice import PracticePublic, PracticeRuleError, PracticeUpdate
from infra.practices import update_practice
from web.deps import ApiStaff, DbSession, SettingsDep, practice_of
from web.errors import field_error

router = APIRouter(prefix="/practice", tags=["practice"])


@router.get("")
async def read_practice(db: DbSession, staff: ApiStaff) -> PracticePublic:
    return PracticePublic.model_validate(await practice_of(db, staff))


@router.put("")
async def change_practice(
    db: DbSession, settings: SettingsDep, staff: ApiStaff, change: PracticeUpdate
) -> PracticePublic:
    practice = await practice_of(db, staff)
    try:
        practice = await update_practice(db, practice, change, settings)
    except PracticeRuleError as error:
        raise field_error(error.field, error.message) from error
    return PracticePublic.model_validate(practice)
