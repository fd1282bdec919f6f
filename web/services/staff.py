"""Changes to one member of the practice's staff, made by an office administrator on the
Staff page or through ``/api/v1/staff``.

Every change is audited by staff id, never a password. A change the rules refuse (the
last administrator, one's own password) raises ``StaffRuleError``; each caller answers it
its own way.
"""

from __future__ import annotations

from fastapi import Request

from domain.audit import AuditAction
from domain.staff import StaffRole
from infra import accounts
from infra.accounts import StaffRuleError
from infra.db.models import StaffUser
from web.deps import DbSession, audit_staff, or_404

NOT_FOUND = "No staff member of this practice has that id"
OWN_PASSWORD = "To change your own password, use Change password"


async def practice_member(db: DbSession, admin: StaffUser, staff_id: str) -> StaffUser:
    """A staff member of the admin's practice; 404 for any other id."""
    return or_404(await accounts.staff_member(db, admin.practice_id, staff_id), NOT_FOUND)


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
    ``UnknownClinics`` if one is not the practice's."""
    before = await accounts.change_clinics(db, member, clinic_ids)
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
