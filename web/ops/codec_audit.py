"""Whose secure emails an operator's decode opened, for the practices' audit logs (R13).

A history names its secure email by id (``secure_email_id``, or the workflow id
``secure-email-<id>``); the decoded payloads are searched for those ids, and each
practice concerned gets the event in its own log, so a practice can see every time an
operator read one of its workflows. A decode that names no known secure email is
recorded in the platform's log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from fastapi import Request
from temporalio.api.common.v1 import Payload

from domain.audit import PLATFORM, AuditAction
from infra.audit import audit
from infra.db.models import StaffUser
from infra.secure_emails import owners
from web.deps import DbSession, staff_actor

# One decode request audits at most this many secure emails (the UI sends a page of a
# history at a time); more are summed up in the detail of the last event.
MAX_AUDITED = 50
_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_WORKFLOW_ID = re.compile(rf"^secure-email-({_UUID})$")
_SECURE_EMAIL_ID = re.compile(rf"^{_UUID}$")


def _ids_in(value: object, key: str | None = None) -> Iterator[str]:
    if isinstance(value, dict):
        for name, item in value.items():
            yield from _ids_in(item, name)
    elif isinstance(value, list):
        for item in value:
            yield from _ids_in(item, key)
    elif isinstance(value, str):
        if key == "secure_email_id" and _SECURE_EMAIL_ID.match(value):
            yield value
        elif match := _WORKFLOW_ID.match(value):
            yield match.group(1)


def secure_email_ids(payloads: list[Payload]) -> list[str]:
    """The secure emails the decoded payloads name, in order of first mention."""
    found: dict[str, None] = {}
    for payload in payloads:
        if not payload.metadata.get("encoding", b"").startswith(b"json/"):
            continue
        try:
            value = json.loads(payload.data)
        except ValueError:
            continue
        found.update(dict.fromkeys(_ids_in(value)))
    return list(found)


async def audit_decode(
    db: DbSession, request: Request, operator: StaffUser, decoded: list[Payload]
) -> None:
    ids = secure_email_ids(decoded)
    rows = await owners(db, ids[:MAX_AUDITED])
    actor = staff_actor(request, operator)
    for row in rows:
        audit(
            db,
            row.practice_id,
            AuditAction.OPERATOR_DECODE,
            actor,
            patient_id=row.patient_id,
            secure_email_id=row.id,
            detail=f"{len(decoded)} payload(s)",
        )
    if not rows:
        audit(db, PLATFORM, AuditAction.OPERATOR_DECODE, actor, detail=f"{len(decoded)} payload(s)")
    await db.commit()
