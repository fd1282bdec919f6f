"""The office's Main Menu, with its alerts (R10)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from infra.alerts import count_open_alerts, open_alerts
from web.deps import CurrentStaff, DbSession, practice_of
from web.services.alerts import audit_alerts_shown, linked
from web.templating import render

router = APIRouter(tags=["office"], include_in_schema=False)


@router.get("/")
async def main_menu(request: Request, db: DbSession, staff: CurrentStaff) -> HTMLResponse:
    practice = await practice_of(db, staff)
    shown = await open_alerts(db, staff.reach)
    await audit_alerts_shown(db, request, staff, shown)
    context = {
        "staff": staff,
        "practice": practice,
        "alert_count": await count_open_alerts(db, staff.reach),
        "alerts": linked(shown),
    }
    return render(request, "office/menu.html", context)
