"""The office's alerts (R10) as the Main Menu's live feed and ``/api/v1/alerts`` both show
them: each with the office page it leads to, and the audit of showing them.
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import Request
from pydantic import BaseModel, computed_field

from domain import secure_email_views as views
from domain.audit import AuditAction
from domain.secure_email_views import AlertKind
from infra.db.models import StaffUser
from web.deps import DbSession, audit_list


# The domain's alert with the office page it leads to (``/api/v1/alerts``'s schema shows
# the docstring).
class AlertPublic(views.AlertPublic):
    """An office alert: ids, the patient's name and times; never anyone's words."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def href(self) -> str:
        if self.kind == AlertKind.REPLY and self.reply_id:
            return f"/email-client/replies/{self.reply_id}"
        if self.kind == AlertKind.OPEN_DENTAL_REFUSED:
            return f"/patients/{self.patient_id}/chart"
        return f"/secure-emails/{self.secure_email_id}"


class AlertList(BaseModel):
    items: list[AlertPublic]


def linked(alerts: list[views.AlertPublic]) -> list[AlertPublic]:
    """The alerts, each with the page it leads to."""
    return [AlertPublic.model_validate(alert, from_attributes=True) for alert in alerts]


async def audit_alerts_shown(
    db: DbSession, request: Request, staff: StaffUser, shown: Sequence[views.AlertPublic]
) -> None:
    """Alerts carry the patient's name, so showing them is a read of PHI: one event naming
    the patients by id. A response showing none read nothing and records nothing."""
    if not shown:
        return
    summary = f"{len(shown)} alert(s)"
    patient_ids = (alert.patient_id for alert in shown)
    await audit_list(db, request, staff, AuditAction.OFFICE_ALERT_LIST, summary, patient_ids)
