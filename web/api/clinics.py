"""``/api/v1/clinics``: the practice's clinics (R19), each with its own sender, phone,
address, time zone and Secure Email switch.

Any staff member may read them (practice software acting as a clerk sets a patient's
``clinic_id``); only admins add or change them, audited field by field like the
practice's settings. Another practice's clinic is not found (404).
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from domain.clinics import UNKNOWN_CLINIC, ClinicCreate, ClinicList, ClinicPublic, ClinicUpdate
from domain.practice import PracticeRuleError
from infra.clinics import add_clinic, change_clinic, practice_clinic, practice_clinics
from infra.db.models import Clinic, StaffUser
from web.api.responses import (
    ADDRESS_RULE,
    ADMINS_ONLY,
    INVALID,
    JSON_BODY,
    NOT_FOUND,
    PHONE_RULE,
    SENDER_RULE,
    TIME_ZONE_RULE,
    business_rules,
    declared,
)
from web.deps import ApiAdmin, ApiStaff, DbSession, SettingsDep, or_404, practice_of, staff_actor
from web.errors import field_error

router = APIRouter(prefix="/clinics", tags=["clinics"])

RULES = business_rules(
    name="not the name of another clinic of the practice",
    sender_address=SENDER_RULE,
    secure_email_enabled="on only with a sender address",
    time_zone=TIME_ZONE_RULE,
    phone=PHONE_RULE,
    address=ADDRESS_RULE,
)


async def _clinic(db: DbSession, staff: StaffUser, clinic_id: str) -> Clinic:
    return or_404(await practice_clinic(db, staff.practice_id, clinic_id), UNKNOWN_CLINIC)


@router.get("")
async def list_clinics(db: DbSession, staff: ApiStaff) -> ClinicList:
    clinics = await practice_clinics(db, staff.practice_id)
    return ClinicList(items=[ClinicPublic.model_validate(clinic) for clinic in clinics])


@router.post(
    "", status_code=status.HTTP_201_CREATED, responses=declared(ADMINS_ONLY, JSON_BODY, RULES)
)
async def create_clinic(
    request: Request, db: DbSession, settings: SettingsDep, admin: ApiAdmin, new: ClinicCreate
) -> ClinicPublic:
    practice = await practice_of(db, admin)
    try:
        clinic = await add_clinic(db, practice, new, settings, staff_actor(request, admin))
    except PracticeRuleError as error:
        raise field_error(error.field, error.message) from error
    return ClinicPublic.model_validate(clinic)


@router.get("/{clinic_id}", responses=declared(NOT_FOUND, INVALID))
async def read_clinic(db: DbSession, staff: ApiStaff, clinic_id: str) -> ClinicPublic:
    return ClinicPublic.model_validate(await _clinic(db, staff, clinic_id))


@router.patch("/{clinic_id}", responses=declared(ADMINS_ONLY, NOT_FOUND, JSON_BODY, RULES))
async def change_some_clinic_settings(
    request: Request,
    db: DbSession,
    settings: SettingsDep,
    admin: ApiAdmin,
    clinic_id: str,
    change: ClinicUpdate,
) -> ClinicPublic:
    """Changes only the fields given; the others keep their value."""
    clinic = await _clinic(db, admin, clinic_id)
    try:
        clinic = await change_clinic(db, clinic, change, settings, staff_actor(request, admin))
    except PracticeRuleError as error:
        raise field_error(error.field, error.message) from error
    return ClinicPublic.model_validate(clinic)
