"""``/api/v1/alerts``: the office's unacknowledged alerts (R10), and acknowledging one."""

from __future__ import annotations

from fastapi import APIRouter, Request

from domain.audit import AuditAction
from infra.alerts import acknowledge_alert, open_alerts
from web.api.responses import INVALID, NOT_FOUND, declared
from web.deps import ApiStaff, DbSession, audit_staff, or_404
from web.services.alerts import AlertList, AlertPublic, audit_alerts_shown, linked

router = APIRouter(prefix="/alerts", tags=["alerts"])


@router.get("")
async def list_alerts(request: Request, db: DbSession, staff: ApiStaff) -> AlertList:
    """Unacknowledged alerts, newest first."""
    shown = await open_alerts(db, staff.reach, limit=1000)
    await audit_alerts_shown(db, request, staff, shown)
    return AlertList(items=linked(shown))


@router.post("/{alert_id}/ack", responses=declared(NOT_FOUND, INVALID))
async def acknowledge(
    request: Request, db: DbSession, staff: ApiStaff, alert_id: str
) -> AlertPublic:
    alert = or_404(await acknowledge_alert(db, staff.reach, alert_id), "Alert not found")
    await audit_staff(
        db,
        request,
        staff,
        AuditAction.OFFICE_ALERT_ACK,
        patient_id=alert.patient_id,
        secure_email_id=alert.secure_email_id,
        detail=alert.id,
    )
    return AlertPublic.model_validate(alert, from_attributes=True)
