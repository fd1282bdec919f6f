"""``/api/v1/staff``: the practice's staff, for office administrators.

Every change is audited by staff id (never a password); a temporary password is shown
once, in the answer to the request that made it.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from domain.audit import AuditAction
from domain.errors import FieldRefused
from domain.staff import (
    PracticeRole,
    StaffChange,
    StaffCreate,
    StaffList,
    StaffPublic,
    StaffRole,
    StaffWithPassword,
)
from infra.db.models import StaffUser
from web.api.responses import (
    ADMINS_ONLY,
    CONFLICT,
    INVALID,
    JSON_BODY,
    NOT_FOUND,
    business_rules,
    declared,
    with_address,
)
from web.deps import ApiAdmin, DbSession, audit_staff
from web.errors import field_error
from web.services import staff as members

router = APIRouter(prefix="/staff", tags=["staff"], responses=ADMINS_ONLY)

# A change to one member: unknown, or refused by the rules (the last admin, their own).
MEMBER = declared(NOT_FOUND, CONFLICT, INVALID)
CLINICS_RULE = "each a clinic of the practice"


def _role(chosen: PracticeRole) -> StaffRole:
    """The role asked for, or a 422 on ``role`` if it is not one a practice can give."""
    try:
        return chosen.checked()
    except FieldRefused as refused:
        raise field_error(refused.field, refused.message) from None


def _with_password(member: StaffUser, password: str) -> StaffWithPassword:
    public = StaffPublic.model_validate(member).model_dump()
    return StaffWithPassword(**public, temporary_password=password)


@router.get("")
async def list_staff(db: DbSession, admin: ApiAdmin) -> StaffList:
    listed = await members.members_within_reach(db, admin)
    return StaffList(items=[StaffPublic.model_validate(member) for member in listed])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses=with_address(clinic_ids=CLINICS_RULE),
)
async def create_staff(
    request: Request, db: DbSession, admin: ApiAdmin, new: StaffCreate
) -> StaffWithPassword:
    _role(new)
    try:
        member, password = await members.add_member(db, admin, new)
    except members.ClinicsRefused as refused:
        raise field_error("clinic_ids", refused.message) from None
    await audit_staff(
        db, request, admin, AuditAction.STAFF_ADD, detail=members.added_detail(member)
    )
    return _with_password(member, password)


@router.post("/{staff_id}/deactivate", responses=MEMBER)
async def deactivate_staff(
    request: Request, db: DbSession, admin: ApiAdmin, staff_id: str
) -> StaffPublic:
    member = await members.practice_member(db, admin, staff_id)
    await members.deactivate_member(request, db, admin, member)
    return StaffPublic.model_validate(member)


@router.patch(
    "/{staff_id}", responses=declared(MEMBER, JSON_BODY, business_rules(clinic_ids=CLINICS_RULE))
)
async def change_staff(
    request: Request, db: DbSession, admin: ApiAdmin, staff_id: str, change: StaffChange
) -> StaffPublic:
    """Changes the fields given: ``role``, and ``clinic_ids`` (the clinics whose patients
    they work with; empty for every clinic). Nothing is changed if one is refused."""
    member = await members.practice_member(db, admin, staff_id)
    role = None if change.role is None else _role(PracticeRole(role=change.role))
    if change.clinic_ids is not None:
        try:
            await members.change_clinics_member(request, db, admin, member, change.clinic_ids)
        except members.ClinicsRefused as refused:
            raise field_error("clinic_ids", refused.message) from None
    if role is not None:
        await members.change_role_member(request, db, admin, member, role)
    return StaffPublic.model_validate(member)


@router.post("/{staff_id}/reset-password", responses=MEMBER)
async def reset_staff_password(
    request: Request, db: DbSession, admin: ApiAdmin, staff_id: str
) -> StaffWithPassword:
    member = await members.practice_member(db, admin, staff_id)
    password = await members.reset_member(request, db, admin, member)
    return _with_password(member, password)
