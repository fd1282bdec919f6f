"""Alerts (R10): the live feed behind the Main Menu's badge, and ``/api/v1/alerts``.

The feed polls the database rather than listening inside one process, so a reply
recorded by any worker reaches office browsers connected to any web replica.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import StreamingResponse
from sqlalchemy.exc import SQLAlchemyError

from domain.audit import AuditAction
from domain.secure_email_views import AlertFeed, AlertList, AlertPublic
from infra.replies import acknowledge_alert, count_open_alerts, open_alerts
from web.deps import ApiStaff, DbSession, NotSignedIn, StateDep, account_from_cookie, audit_staff
from web.state import AppState

api_router = APIRouter(prefix="/alerts", tags=["alerts"])
page_router = APIRouter(tags=["office"], include_in_schema=False)

logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
# Proxies and load balancers drop connections that stay silent for about a minute.
KEEP_ALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 5000


@api_router.get("")
async def list_alerts(db: DbSession, staff: ApiStaff) -> AlertList:
    """Unacknowledged alerts, newest first."""
    return AlertList(items=await open_alerts(db, staff.practice_id, limit=1000))


@api_router.post("/{alert_id}/ack")
async def acknowledge(
    request: Request, db: DbSession, staff: ApiStaff, alert_id: str
) -> AlertPublic:
    alert = await acknowledge_alert(db, staff.practice_id, alert_id)
    if alert is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Alert not found")
    await audit_staff(
        db,
        request,
        staff,
        AuditAction.OFFICE_ALERT_ACK,
        patient_id=alert.patient_id,
        secure_email_id=alert.secure_email_id,
        detail=alert.id,
    )
    return alert


@page_router.get("/alerts/stream")
async def alert_stream(request: Request, state: StateDep) -> StreamingResponse:
    """Server-sent events: the alerts now, then again whenever they change."""
    # No DbSession dependency: it would stay open (holding a pooled connection) for as
    # long as the browser keeps the stream, which is all day.
    first = await _snapshot(state, request)
    if first is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Log in again")
    return StreamingResponse(
        _events(request, state, first),
        media_type="text/event-stream",
        # A buffering proxy (nginx) would hold events back until its buffer fills.
        headers={"X-Accel-Buffering": "no"},
    )


async def _snapshot(state: AppState, request: Request) -> str | None:
    """The feed as JSON, or None once the staff session has ended (log out, expiry)."""
    async with state.sessions() as db:
        try:
            staff = await account_from_cookie(request, db)
        except NotSignedIn:
            return None
        if staff.is_operator:
            return None
        feed = AlertFeed(
            count=await count_open_alerts(db, staff.practice_id),
            items=await open_alerts(db, staff.practice_id),
        )
    return feed.model_dump_json()


def _event(data: str) -> str:
    return f"event: alerts\ndata: {data}\n\n"


async def _events(request: Request, state: AppState, first: str) -> AsyncIterator[str]:
    yield f"retry: {RECONNECT_MILLISECONDS}\n{_event(first)}"
    last = first
    last_sent = time.monotonic()
    while True:
        await asyncio.sleep(POLL_SECONDS)
        if await request.is_disconnected():
            return
        try:
            snapshot = await _snapshot(state, request)
        except (SQLAlchemyError, OSError):
            # The database restarting is no reason to drop every office's stream.
            logger.warning("alert feed: database unavailable", exc_info=True)
            snapshot = last
        if snapshot is None:
            return
        if snapshot != last:
            last = snapshot
            last_sent = time.monotonic()
            yield _event(snapshot)
        elif time.monotonic() - last_sent >= KEEP_ALIVE_SECONDS:
            last_sent = time.monotonic()
            yield ": keep-alive\n\n"
