"""Staff management for office admins: the Staff page, with the schemas and changes it
shares with ``/api/v1/staff`` (``web.api.staff``).

Every change is audited by staff id (never a password). A temporary password is shown
once, in the answer to the request that made it, and must be replaced at the next log-in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, EmailStr, Field, ValidationError

from domain.audit import AuditAction
from domain.staff import StaffRole
from infra import accounts
from infra.accounts import StaffRuleError
from infra.db.models import StaffUser
from web.deps import CurrentAdmin, DbSession, StateDep, audit_staff, or_404
from web.errors import field_error, on_refusal
from web.templating import form_errors, render


async def _refusals_on_the_page(request: Request, state: StateDep, admin: CurrentAdmin) -> None:
    """A change the rules refuse (the last administrator, one's own password) answers the
    Staff page again, saying why. Rendered by the app's handler once the route's session
    has closed, so in a session of its own."""

    async def refused(words: str) -> Response:
        async with state.sessions() as db:
            return await _staff_page(
                request, db, admin, refusal=words, status_code=status.HTTP_409_CONFLICT
            )

    on_refusal(request, refused)


router = APIRouter(
    tags=["office"], include_in_schema=False, dependencies=[Depends(_refusals_on_the_page)]
)

NOT_FOUND = "No staff member of this practice has that id"
OWN_PASSWORD = "To change your own password, use Change password"
ROLE_NAMES = {StaffRole.ADMIN: "Administrator", StaffRole.CLERK: "Clerk"}


class PracticeRole(BaseModel):
    """The roles an office admin can give: operators are the platform's, not a practice's."""

    role: StaffRole = Field(description="`admin` or `clerk`")

    def checked(self) -> StaffRole:
        if self.role == StaffRole.OPERATOR:
            raise field_error("role", "Choose admin or clerk")
        return self.role


class StaffCreate(PracticeRole):
    model_config = ConfigDict(extra="forbid")

    # No control characters: PostgreSQL refuses NUL in text, and names are shown on pages.
    name: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")
    email: EmailStr
    role: StaffRole = StaffRole.CLERK


class StaffRoleChange(PracticeRole):
    model_config = ConfigDict(extra="forbid")


class StaffPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    email: str
    role: StaffRole
    active: bool
    must_change_password: bool
    created_at: datetime


class StaffList(BaseModel):
    items: list[StaffPublic]


class StaffWithPassword(StaffPublic):
    temporary_password: str = Field(
        description="Shown this once; the person must choose their own at the next log-in"
    )


# The changes themselves, shared by the API and the page ------------------------------


async def practice_member(db: DbSession, admin: StaffUser, staff_id: str) -> StaffUser:
    return or_404(await accounts.staff_member(db, admin.practice_id, staff_id), NOT_FOUND)


def added_detail(member: StaffUser) -> str:
    return f"staff {member.id} as {member.role}"


async def change_role_member(
    request: Request,
    db: DbSession,
    admin: StaffUser,
    member: StaffUser,
    role: StaffRole,
) -> None:
    before = await accounts.change_role(db, member, role)
    if before != role:
        await audit_staff(
            db,
            request,
            admin,
            AuditAction.STAFF_ROLE_CHANGE,
            detail=f"staff {member.id}: {before.value} → {role.value}",
        )


async def deactivate_member(
    request: Request, db: DbSession, admin: StaffUser, member: StaffUser
) -> None:
    if not member.active:
        return
    await accounts.deactivate(db, member)
    await audit_staff(db, request, admin, AuditAction.STAFF_DEACTIVATE, detail=f"staff {member.id}")


async def reset_member(request: Request, db: DbSession, admin: StaffUser, member: StaffUser) -> str:
    if member.id == admin.id:
        # Their own: through Change password, which asks for the current one.
        raise StaffRuleError(OWN_PASSWORD)
    password = await accounts.reset_password(db, member)
    await audit_staff(
        db, request, admin, AuditAction.STAFF_PASSWORD_RESET, detail=f"staff {member.id}"
    )
    return password


# The Staff page ------------------------------------------------------------------------


async def _staff_page(
    request: Request,
    db: DbSession,
    admin: StaffUser,
    *,
    typed: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    refusal: str | None = None,
    issued: tuple[StaffUser, str] | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    done = {
        "role": "Role changed.",
        "deactivated": "Account deactivated: its sessions and API tokens stopped working.",
    }.get(request.query_params.get("done", ""))
    return render(
        request,
        "office/staff.html",
        {
            "staff": admin,
            "members": await accounts.practice_staff(db, admin.practice_id),
            "typed": typed or {"role": StaffRole.CLERK.value},
            "errors": errors or {},
            "refusal": refusal,
            "issued": issued,
            "done": done,
            "roles": ROLE_NAMES,
        },
        status_code=status_code,
    )


@router.get("/staff")
async def staff_page(request: Request, db: DbSession, admin: CurrentAdmin) -> HTMLResponse:
    return await _staff_page(request, db, admin)


@router.post("/staff")
async def add_staff_form(
    request: Request,
    db: DbSession,
    admin: CurrentAdmin,
    name: Annotated[str, Form()] = "",
    email: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = StaffRole.CLERK.value,
) -> Response:
    typed = {"name": name, "email": email, "role": role}
    try:
        new = StaffCreate.model_validate({"name": name.strip(), "email": email, "role": role})
        member, password = await accounts.add_staff(
            db, admin.practice_id, str(new.email), new.name, new.role
        )
    except ValidationError as error:
        errors = form_errors(error)
        if "pattern" in errors.get("name", ""):
            errors["name"] = "Name: letters, digits, spaces and punctuation only"
        return await _staff_page(request, db, admin, typed=typed, errors=errors, status_code=422)
    except StaffRuleError as error:
        return await _staff_page(
            request,
            db,
            admin,
            typed=typed,
            errors={error.field or "email": error.message},
            status_code=status.HTTP_409_CONFLICT,
        )
    await audit_staff(db, request, admin, AuditAction.STAFF_ADD, detail=added_detail(member))
    # Shown in this answer only: the password is in no URL, log or later page.
    return await _staff_page(request, db, admin, issued=(member, password))


@router.post("/staff/{staff_id}/deactivate")
async def deactivate_form(
    request: Request, db: DbSession, admin: CurrentAdmin, staff_id: str
) -> Response:
    member = await practice_member(db, admin, staff_id)
    await deactivate_member(request, db, admin, member)
    return RedirectResponse("/staff?done=deactivated", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/staff/{staff_id}/role")
async def change_role_form(
    request: Request,
    db: DbSession,
    admin: CurrentAdmin,
    staff_id: str,
    role: Annotated[str, Form()] = "",
) -> Response:
    member = await practice_member(db, admin, staff_id)
    if role not in (StaffRole.ADMIN.value, StaffRole.CLERK.value):
        return await _staff_page(
            request, db, admin, refusal="Choose Administrator or Clerk", status_code=422
        )
    await change_role_member(request, db, admin, member, StaffRole(role))
    return RedirectResponse("/staff?done=role", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/staff/{staff_id}/reset-password")
async def reset_password_form(
    request: Request, db: DbSession, admin: CurrentAdmin, staff_id: str
) -> Response:
    member = await practice_member(db, admin, staff_id)
    password = await reset_member(request, db, admin, member)
    return await _staff_page(request, db, admin, issued=(member, password))
