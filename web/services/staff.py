"""Changes to one member of the practice's staff, made by an office administrator on the
Staff page or through ``/api/v1/staff``.

Every change is audited by staff id, never a password. A change the rules refuse (the
last administrator, one's own password) raises ``StaffRuleError``; each caller answers it
its own way.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request

from domain.audit import AuditAction
from domain.clinics import UNKNOWN_CLINIC
from domain.reach import Reach
from domain.staff import StaffCreate, StaffRole
from infra import accounts
from infra.accounts import StaffRuleError, UnknownClinics
from infra.db.models import StaffUser
from web.deps import DbSession, audit_staff, or_404

NOT_FOUND = "No staff member of this practice has that id"
OWN_PASSWORD = "To change your own password, use Change password"
BEYOND_REACH = "You work for some clinics only: choose one or more of your own clinics"


class ClinicsRefused(ValueError):
    """The clinics given for a member of staff are refused, for ``message``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


async def practice_member(db: DbSession, admin: StaffUser, staff_id: str) -> StaffUser:
    """A staff member of the admin's practice within the admin's reach; 404 for any other
    id. An admin restricted to clinics cannot deactivate, reset or change anyone who
    reaches further (a reset password would be a way into their reach)."""
    member = await accounts.staff_member(db, admin.practice_id, staff_id)
    if member is not None and not admin.reach.includes(member.reach):
        member = None
    return or_404(member, NOT_FOUND)


async def members_within_reach(db: DbSession, admin: StaffUser) -> list[StaffUser]:
    """The staff the admin may manage: everyone, unless restricted to clinics."""
    members = await accounts.practice_staff(db, admin.practice_id)
    return [member for member in members if admin.reach.includes(member.reach)]


def _check_given(admin: StaffUser, clinic_ids: Sequence[str]) -> None:
    if not admin.reach.includes(Reach(admin.practice_id, frozenset(clinic_ids) or None)):
        raise ClinicsRefused(BEYOND_REACH)


async def add_member(db: DbSession, admin: StaffUser, new: StaffCreate) -> tuple[StaffUser, str]:
    """A new member of staff and their temporary password. ``ClinicsRefused`` if a clinic
    is not the practice's or reaches further than the admin's own; ``StaffRuleError`` as
    ``accounts.add_staff``."""
    _check_given(admin, new.clinic_ids)
    try:
        return await accounts.add_staff(
            db, admin.practice_id, str(new.email), new.name, new.role, new.clinic_ids
        )
    except UnknownClinics:
        raise ClinicsRefused(UNKNOWN_CLINIC) from None


def added_detail(member: StaffUser) -> str:
    """What the audit event of a new staff member says: their id, role and clinics."""
    clinics = f" for {clinics_shown(member.clinic_ids)}" if member.clinic_ids else ""
    return f"staff {member.id} as {member.role}{clinics}"


async def change_role_member(
    request: Request,
    db: DbSession,
    admin: StaffUser,
    member: StaffUser,
    role: StaffRole,
) -> None:
    """Gives ``member`` the role; audited only when it changed."""
    before = await accounts.change_role(db, member, role)
    if before != role:
        await audit_staff(
            db,
            request,
            admin,
            AuditAction.STAFF_ROLE_CHANGE,
            detail=f"staff {member.id}: {before.value} → {role.value}",
        )


def clinics_shown(clinic_ids: list[str]) -> str:
    """The clinics as an audit event names them: ids, or every clinic."""
    return ", ".join(f"clinic {clinic_id}" for clinic_id in clinic_ids) or "every clinic"


async def change_clinics_member(
    request: Request,
    db: DbSession,
    admin: StaffUser,
    member: StaffUser,
    clinic_ids: list[str],
) -> None:
    """Gives ``member`` these clinics (none: every clinic); audited only when they changed.
    ``ClinicsRefused`` if one is not the practice's or reaches further than the admin's."""
    _check_given(admin, clinic_ids)
    try:
        before = await accounts.change_clinics(db, member, clinic_ids)
    except UnknownClinics:
        raise ClinicsRefused(UNKNOWN_CLINIC) from None
    if before != member.clinic_ids:
        change = f"{clinics_shown(before)} → {clinics_shown(member.clinic_ids)}"
        await audit_staff(
            db,
            request,
            admin,
            AuditAction.STAFF_CLINICS_CHANGE,
            detail=f"staff {member.id}: {change}",
        )


async def deactivate_member(
    request: Request, db: DbSession, admin: StaffUser, member: StaffUser
) -> None:
    """Deactivates ``member`` (their sessions and API tokens stop working); audited once."""
    if not member.active:
        return
    await accounts.deactivate(db, member)
    await audit_staff(db, request, admin, AuditAction.STAFF_DEACTIVATE, detail=f"staff {member.id}")


async def reset_member(request: Request, db: DbSession, admin: StaffUser, member: StaffUser) -> str:
    """A temporary password for ``member``, who must replace it at the next log-in."""
    if member.id == admin.id:
        # Their own: through Change password, which asks for the current one.
        raise StaffRuleError(OWN_PASSWORD)
    password = await accounts.reset_password(db, member)
    await audit_staff(
        db, request, admin, AuditAction.STAFF_PASSWORD_RESET, detail=f"staff {member.id}"
    )
    return password
