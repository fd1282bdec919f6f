"""``/api/v1/practice``: the practice's Secure Email settings.

Any staff member may read them (practice software acting as a clerk needs to know whether
Secure Email is on and how long messages live); only admins change them. Every change is
audited field by field, old → new: none of these settings is PHI.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import Field

from domain.practice import PracticePublic, PracticeRuleError, PracticeUpdate
from infra.db.models import StaffUser
from infra.practices import change_settings
from infra.settings import Settings
from web.api.responses import (
    ADDRESS_RULE,
    ADMINS_ONLY,
    JSON_BODY,
    PHONE_RULE,
    SENDER_RULE,
    TIME_ZONE_RULE,
    business_rules,
    declared,
)
from web.deps import ApiAdmin, ApiStaff, DbSession, SettingsDep, practice_of, staff_actor
from web.errors import field_error

router = APIRouter(prefix="/practice", tags=["practice"])

# Changes: admins only; the body may be too large or break a rule (422, per field).
RULES = {
    "sender_address": SENDER_RULE,
    "secure_email_enabled": "on only with a sender address",
    "reminder_after_hours": "before the expiry: fewer than `expiry_days` × 24 hours",
    "expiry_days": "longer than the reminder (`reminder_after_hours`)",
    "time_zone": TIME_ZONE_RULE,
    "phone": PHONE_RULE,
    "address": ADDRESS_RULE,
}
CHANGE = declared(ADMINS_ONLY, JSON_BODY, business_rules(**RULES))
# PUT takes back what GET returns, its id included.
REPLACE = declared(CHANGE, business_rules(**RULES, id="this practice's own id, or left out"))


class PracticeSettings(PracticeUpdate):
    """What ``GET`` returns, sent back as it is (DESIGN §4): its ``id`` must be this
    practice's and changes nothing."""

    id: str | None = Field(default=None, description="This practice's id, if given")


@router.get("")
async def read_practice(db: DbSession, staff: ApiStaff) -> PracticePublic:
    return PracticePublic.model_validate(await practice_of(db, staff))


async def _change(
    request: Request, db: DbSession, settings: Settings, admin: StaffUser, change: PracticeUpdate
) -> PracticePublic:
    practice = await practice_of(db, admin)
    try:
        practice = await change_settings(
            db, practice, change, settings, staff_actor(request, admin)
        )
    except PracticeRuleError as error:
        raise field_error(error.field, error.message) from error
    return PracticePublic.model_validate(practice)


@router.put("", responses=REPLACE)
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


@router.patch("", responses=CHANGE)
async def change_some_practice_settings(
    request: Request, db: DbSession, settings: SettingsDep, admin: ApiAdmin, change: PracticeUpdate
) -> PracticePublic:
    """Changes only the fields given; the others keep their value."""
    return await _change(request, db, settings, admin, change)
