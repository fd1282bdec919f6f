"""Staff management for office admins: the Staff page (``/api/v1/staff`` makes the same
changes, through ``web.services.staff``).

Every change is audited by staff id (never a password). A temporary password is shown
once, in the answer to the request that made it, and must be replaced at the next log-in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError

from domain.audit import AuditAction
from domain.staff import StaffCreate, StaffRole
from infra.accounts import StaffRuleError
from infra.clinics import practice_clinics
from infra.db.models import StaffUser
from web.deps import CurrentAdmin, DbSession, StateDep, audit_staff
from web.errors import on_refusal
from web.services import staff as members
from web.templating import form_errors, render


async def _refusals_on_the_page(request: Request, state: StateDep, admin: CurrentAdmin) -> None:
    """A change the rules refuse (the last administrator, one's own password) answers the
    Staff page again, saying why. Rendered by the app's handler once the route's session
    has closed, so in a session of its own."""

    async def refused(message: str) -> Response:
        async with state.sessions() as db:
            return await _staff_page(
                request, db, admin, refusal=message, status_code=status.HTTP_409_CONFLICT
            )

    on_refusal(request, refused)


router = APIRouter(
    tags=["office"], include_in_schema=False, dependencies=[Depends(_refusals_on_the_page)]
)

ROLE_NAMES = {StaffRole.ADMIN: "Administrator", StaffRole.CLERK: "Clerk"}


class StaffTyped(BaseModel):
    """The add form as typed, shown again as it was when refused; no clinic ticked means
    every clinic."""

    name: str = ""
    email: str = ""
    role: str = StaffRole.CLERK.value
    clinic_ids: list[str] = []

    def values(self) -> dict[str, object]:
        """What is checked as a ``StaffCreate``: the name without surrounding spaces."""
        return self.model_dump() | {"name": self.name.strip()}


# The Staff page ------------------------------------------------------------------------


async def _staff_page(
    request: Request,
    db: DbSession,
    admin: StaffUser,
    *,
    typed: Mapping[str, object] | None = None,
    errors: dict[str, str] | None = None,
    refusal: str | None = None,
    issued: tuple[StaffUser, str] | None = None,
    status_code: int = status.HTTP_200_OK,
) -> HTMLResponse:
    done = {
        "role": "Role changed.",
        "clinics": "Clinics changed: the change holds from their next click.",
        "deactivated": "Account deactivated: its sessions and API tokens stopped working.",
    }.get(request.query_params.get("done", ""))
    return render(
        request,
        "office/staff.html",
        {
            "staff": admin,
            "members": await members.members_within_reach(db, admin),
            "clinics": await practice_clinics(db, admin.practice_id),
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
    request: Request, db: DbSession, admin: CurrentAdmin, form: Annotated[StaffTyped, Form()]
) -> Response:
    typed = form.model_dump()
    try:
        new = StaffCreate.model_validate(form.values(), strict=False)
        member, password = await members.add_member(db, admin, new)
    except ValidationError as error:
        errors = form_errors(error)
        if "pattern" in errors.get("name", ""):
            errors["name"] = "Name: letters, digits, spaces and punctuation only"
        return await _staff_page(request, db, admin, typed=typed, errors=errors, status_code=422)
    except members.ClinicsRefused as refused:
        errors = {"clinic_ids": refused.message}
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
    await audit_staff(
        db, request, admin, AuditAction.STAFF_ADD, detail=members.added_detail(member)
    )
    # Shown in this answer only: the password is in no URL, log or later page.
    return await _staff_page(request, db, admin, issued=(member, password))


@router.post("/staff/{staff_id}/deactivate")
async def deactivate_form(
    request: Request, db: DbSession, admin: CurrentAdmin, staff_id: str
) -> Response:
    member = await members.practice_member(db, admin, staff_id)
    await members.deactivate_member(request, db, admin, member)
    return RedirectResponse("/staff?done=deactivated", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/staff/{staff_id}/role")
async def change_role_form(
    request: Request,
    db: DbSession,
    admin: CurrentAdmin,
    staff_id: str,
    role: Annotated[str, Form()] = "",
) -> Response:
    member = await members.practice_member(db, admin, staff_id)
    if role not in (StaffRole.ADMIN.value, StaffRole.CLERK.value):
        return await _staff_page(
            request, db, admin, refusal="Choose Administrator or Clerk", status_code=422
        )
    await members.change_role_member(request, db, admin, member, StaffRole(role))
    return RedirectResponse("/staff?done=role", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/staff/{staff_id}/clinics")
async def change_clinics_form(
    request: Request,
    db: DbSession,
    admin: CurrentAdmin,
    staff_id: str,
    clinic_ids: Annotated[list[str] | None, Form()] = None,
) -> Response:
    """The clinics ticked (none: every clinic)."""
    member = await members.practice_member(db, admin, staff_id)
    try:
        await members.change_clinics_member(request, db, admin, member, clinic_ids or [])
    except members.ClinicsRefused as refused:
        return await _staff_page(request, db, admin, refusal=refused.message, status_code=422)
    return RedirectResponse("/staff?done=clinics", status_code=status.HTTP_303_SEE_OTHER)


@router.post("/staff/{staff_id}/reset-password")
async def reset_password_form(
    request: Request, db: DbSession, admin: CurrentAdmin, staff_id: str
) -> Response:
    member = await members.practice_member(db, admin, staff_id)
    password = await members.reset_member(request, db, admin, member)
    return await _staff_page(request, db, admin, issued=(member, password))
