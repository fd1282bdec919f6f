"""The audit log's filters (R13) as a query string gives them: shared by the office's
Audit page, its CSV export and ``/api/v1/audit``, so all three read them alike.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated

from fastapi import Depends, HTTPException, Query, status

from domain.audit import AuditAction
from domain.strict import IsoDate
from infra.audit import AuditFilter

Text = Annotated[str | None, Query()]
# One of the actions, or empty for every one (the Audit page's "All actions").
Action = Annotated[
    str | None,
    Query(
        description="Only events of this action; empty for every action",
        json_schema_extra={"enum": ["", *AuditAction]},
    ),
]
Day = Annotated[IsoDate | None, Query()]


async def audit_filter(
    action: Action = None,
    secure_email_id: Text = None,
    patient_id: Text = None,
    since: Day = None,
    until: Day = None,
) -> AuditFilter:
    """The query string's filters; an unknown action is a 422 on ``action``."""
    try:
        chosen = AuditAction(action) if action else None
    except ValueError:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            detail=[{"loc": ["query", "action"], "msg": "Unknown action", "type": "enum"}],
        ) from None
    return AuditFilter(
        action=chosen,
        secure_email_id=secure_email_id or None,
        patient_id=patient_id or None,
        since=datetime.combine(since, time(), UTC) if since else None,
        # "until" is the last day shown, inclusive.
        until=datetime.combine(until, time(), UTC) + timedelta(days=1) if until else None,
    )


Filter = Annotated[AuditFilter, Depends(audit_filter)]
