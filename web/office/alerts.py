"""Alerts (R10): the live feed behind the Main Menu's badge (``/api/v1/alerts`` is
``web.api.alerts``; both show them through ``web.services.alerts``).

The feed polls the database rather than listening inside one process, so a reply
recorded by any worker reaches office browsers connected to any web replica.

Each staff member has at most MAX_STREAMS_PER_STAFF open feeds (tabs, screens); opening
another closes their oldest, so forgotten tabs cannot pile up database polls. The count
is kept in this process: exact for one web process (docker-compose runs one); with
several replicas it holds per replica.

Why not sse-starlette: it would write the event lines and the keep-alive, about ten
lines of ``_events``; what is left (the stream limit, refusing a closed stream's
reconnect with 204, the staff session checked on every poll without holding a pooled
connection, riding out a database restart) is ours either way. Its keep-alive runs on a
timer of its own, while ours is sent after 15 s of silence by the same loop that polls,
which the tests read as proof that the loop is alive. Ten lines are not worth one more
dependency in the supply chain of a PHI service.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel

from infra import accounts, alerts
from infra.db.engine import DATABASE_ERRORS
from infra.db.models import StaffUser
from infra.practices import time_zone_of
from infra.settings import Settings
from web.deps import DbSession, StateDep, staff_cookie_name
from web.services.alerts import AlertPublic, audit_alerts_shown, linked
from web.state import AppState
from web.templating import moment_in

router = APIRouter(tags=["office"], include_in_schema=False)


class FeedAlert(AlertPublic):
    """An alert as the Main Menu lists it: ``shown_at`` is its time in the office's words,
    in the practice's zone, exactly as the page's own ``local_time`` writes it (R16)."""

    shown_at: str


class AlertFeed(BaseModel):
    """One server-sent event of the Main Menu's alerts: the count and the newest few."""

    count: int
    items: list[FeedAlert]


def feed_items(alerts: list[AlertPublic], zone: str) -> list[FeedAlert]:
    return [
        FeedAlert(
            **alert.model_dump(exclude={"href", "message"}),
            shown_at=moment_in(alert.created_at, zone),
        )
        for alert in alerts
    ]


logger = logging.getLogger(__name__)

POLL_SECONDS = 1.0
# Proxies and load balancers drop connections that stay silent for about a minute.
KEEP_ALIVE_SECONDS = 15.0
RECONNECT_MILLISECONDS = 5000
MAX_STREAMS_PER_STAFF = 3
CLOSED_FOR_NEWER = (
    "Live alerts stopped on this screen: they are open on three newer ones. "
    "Reload this page to see alerts here again."
)


@router.get("/alerts/stream", response_model=None)
async def alert_stream(request: Request, state: StateDep) -> Response:
    """Server-sent events: the alerts now, then again whenever they change."""
    # A browser reconnecting a stream that was closed for a newer one is told to stop:
    # 204 is the one answer EventSource does not retry, so the tabs cannot take turns
    # closing each other. Reloading the page opens a fresh stream (no Last-Event-ID).
    if live_streams.was_closed(request.headers.get("last-event-id", "")):
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    # No DbSession dependency: it would stay open (holding a pooled connection) for as
    # long as the browser keeps the stream, which is all day.
    first = await _snapshot(state, request)
    if first is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail="Log in again")
    staff_id, feed = first
    return StreamingResponse(
        _events(request, state, staff_id, feed),
        media_type="text/event-stream",
        # A buffering proxy (nginx) would hold events back until its buffer fills.
        headers={"X-Accel-Buffering": "no"},
    )


@dataclass
class LiveStream:
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class LiveStreams:
    """The open alert streams of this process, oldest first per staff member."""

    def __init__(self, per_staff: int, remember_closed: int = 10_000) -> None:
        self.per_staff = per_staff
        self._open: dict[str, list[LiveStream]] = {}
        # Ids of streams closed for newer ones, so their reconnects can be refused.
        self._closed: OrderedDict[str, None] = OrderedDict()
        self._remember_closed = remember_closed

    def open(self, staff_id: str) -> LiveStream:
        stream = LiveStream()
        streams = self._open.setdefault(staff_id, [])
        streams.append(stream)
        while len(streams) > self.per_staff:
            oldest = streams.pop(0)
            oldest.closed.set()
            self._closed[oldest.id] = None
            while len(self._closed) > self._remember_closed:
                self._closed.popitem(last=False)
        return stream

    def end(self, staff_id: str, stream: LiveStream) -> None:
        streams = self._open.get(staff_id, [])
        if stream in streams:
            streams.remove(stream)
        if not streams:
            self._open.pop(staff_id, None)

    def count(self, staff_id: str) -> int:
        return len(self._open.get(staff_id, []))

    def was_closed(self, stream_id: str) -> bool:
        return stream_id in self._closed


live_streams = LiveStreams(MAX_STREAMS_PER_STAFF)


async def _stream_owner(request: Request, db: DbSession, settings: Settings) -> StaffUser | None:
    """The practice staff member whose live session this is, or None once it has ended.

    Read-only on purpose: the stream's polls are not the person at the desk, so they must
    not move the idle clock (an open Main Menu would otherwise never be logged off).
    """
    token = request.cookies.get(staff_cookie_name(settings))
    session = await accounts.staff_session(db, token)
    if session is None:
        return None
    now = datetime.now(UTC)
    last_seen = session.last_seen_at or session.created_at
    if session.expires_at <= now or now - last_seen >= timedelta(
        minutes=settings.staff_idle_minutes
    ):
        return None
    user = await accounts.staff_user(db, session.staff_id)
    if user is None or not user.active or user.is_operator or user.must_change_password:
        return None
    return user


async def _snapshot(
    state: AppState, request: Request, last: str | None = None
) -> tuple[str, str] | None:
    """Whose feed, and the feed as JSON; None once the staff session has ended.

    A feed other than ``last`` is sent to the browser, so its alerts are audited as shown
    before it is returned: a feed that could not be audited is not sent."""
    async with state.sessions() as db:
        staff = await _stream_owner(request, db, state.settings)
        if staff is None:
            return None
        # The Main Menu's clinic filter (checked when the page was shown): a clinic out of
        # reach, or no longer in it, narrows the feed to nothing.
        reach = staff.reach.narrowed_to(request.query_params.get("clinic") or None)
        shown = await alerts.open_alerts(db, reach)
        # Read on every poll: a zone changed in Settings shows on the next event.
        zone = await time_zone_of(db, staff.practice_id)
        feed = AlertFeed(
            count=await alerts.count_open_alerts(db, reach),
            items=feed_items(linked(shown), zone),
        ).model_dump_json()
        if feed != last:
            await audit_alerts_shown(db, request, staff, shown)
    return staff.id, feed


def _event(data: str) -> str:
    return f"event: alerts\ndata: {data}\n\n"


async def _events(
    request: Request, state: AppState, staff_id: str, first: str
) -> AsyncIterator[str]:
    stream = live_streams.open(staff_id)
    try:
        # The id comes back as Last-Event-ID when the browser reconnects.
        yield f"retry: {RECONNECT_MILLISECONDS}\nid: {stream.id}\n{_event(first)}"
        last = first
        last_sent = time.monotonic()
        while True:
            try:
                await asyncio.wait_for(stream.closed.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
            else:
                yield f"event: closed\ndata: {CLOSED_FOR_NEWER}\n\n"
                return
            if await request.is_disconnected():
                return
            try:
                found = await _snapshot(state, request, last)
            except DATABASE_ERRORS:
                # The database restarting is no reason to drop every office's stream.
                logger.warning("alert feed: database unavailable", exc_info=True)
                found = (staff_id, last)
            if found is None:
                return
            snapshot = found[1]
            if snapshot != last:
                last = snapshot
                last_sent = time.monotonic()
                yield _event(snapshot)
            elif time.monotonic() - last_sent >= KEEP_ALIVE_SECONDS:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
    finally:
        live_streams.end(staff_id, stream)
