"""The office's Main Menu, with its alerts (R10)."""

from __future__ import annotations

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse

from infra import open_dental
from infra.alerts import count_open_alerts, open_alerts
from web.deps import CurrentStaff, DbSession, practice_of
from web.services.alerts import audit_alerts_shown, linked
from web.services.clinic_filter import ClinicRefused, clinic_choices, narrowed_reach
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)


@router.get("/")
async def main_menu(
    request: Request, db: DbSession, staff: CurrentStaff, clinic: str = ""
) -> HTMLResponse:
    """The Main Menu; ``clinic``, its alerts about that clinic's patients only."""
    practice = await practice_of(db, staff)
    choices = await clinic_choices(db, staff)
    context: dict[str, object] = {
        "staff": staff,
        "practice": practice,
        "clinics": choices,
        "clinic": clinic,
        "open_dental_refused": await open_dental.keys_refused(db, staff.practice_id),
    }
    try:
        reach = narrowed_reach(staff, clinic, choices)
    except ClinicRefused:
        # No alerts for a clinic not on the list, and no live feed either.
        context |= {"alert_count": 0, "alerts": [], "clinic_refused": True}
        code = status.HTTP_422_UNPROCESSABLE_CONTENT
    else:
        shown = await open_alerts(db, reach)
        await audit_alerts_shown(db, request, staff, shown)
        context |= {"alert_count": await count_open_alerts(db, reach), "alerts": linked(shown)}
        code = status.HTTP_200_OK
    return render(request, "office/menu.html", context, status_code=code)
