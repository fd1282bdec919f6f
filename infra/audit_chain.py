"""The audit log's hash chain (R13): a deleted, edited or reordered event shows.

Each event has a link (``audit_links``): its ``position`` in the chain, ``prev_hash``
(the hash of the link before it) and ``hash`` (SHA-256 over the event's content, its id
and ``prev_hash``). One chain runs through the whole log in position order, and the
``audit_chain_head`` row holds the newest link, so deleting the newest events shows too.

Why one global chain rather than one per practice: verifying is one pass, one head row
covers deletions at the end, and events that belong to no practice (an operator's
log-in, ``domain.audit.PLATFORM``) sit in the same chain.

Why linking is a step of its own: an event is written with an empty link (by the
database: a trigger on ``audit_events``, migration 0033), in the action's own
transaction, and takes no shared lock. The linker (``keep_linking``, in
every web and worker process) then links every committed empty link in one short
transaction, in event-id order, holding the head row's lock only for that: on PostgreSQL
the UPDATE of the head locks the row, on SQLite it takes the database's write lock, so
two linkers never give two links the same predecessor, and audited requests never queue
on that lock (docs/BENCHMARKS.md section 2). The price is a second or two in which a new
event is append-only (the triggers, the app's role) but not yet chained; ``securemail
audit verify`` reports such events as not linked yet, and one still waiting after
``LINK_LAG`` as held out of the chain.

The database, not the linker, decides where a link goes (migration 0017's triggers): a
link is written empty, filled once, only as the next one after the head (its position
one past the head's, its ``prev_hash`` the head's hash; on PostgreSQL its hash is
recomputed too), and the fill moves the head; the head moves no other way. So the app's
role can neither take an event out of the chain nor move the head.

The chain shows tampering by anyone who does not rewrite every later link too; the
database's owner could. ``securemail audit anchor`` prints the newest link as
``POSITION:HASH``: kept somewhere else (a ticket, the operators' log), ``securemail audit
verify --anchor`` holds even the owner to everything up to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Collection,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import Connection, Table, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import finishes_when_cancelled
from infra.db.models import AuditChainHead, AuditEvent, AuditLink

# The hash before the first event.
GENESIS = "0" * 64
# Part of what is hashed, so a later change of the recipe cannot pass for this one.
CHAIN_VERSION = "audit-chain-v1"
HEAD_ID = 1
# The columns each hash covers, in this order (``prev_hash`` is the link's). PostgreSQL's
# trigger computes the same hash (``audit_link_hash``, migration 0017): a new recipe
# needs a new ``CHAIN_VERSION`` and a migration that teaches the trigger it.
HASHED = (
    "id",
    "at",
    "practice_id",
    "action",
    "actor_type",
    "actor_id",
    "patient_id",
    "secure_email_id",
    "client_address",
    "detail",
    "prev_hash",
)
# Links made per linking transaction, and events read per verify batch.
BATCH = 1000
# How often each process's linker looks for new events.
LINK_EVERY_SECONDS = 1.0
# How long an event may wait for its link before ``verify`` calls it held out of the
# chain: every process links each second and once more as it stops, so only a stopped
# app, or a lock someone holds on the event's link, leaves one waiting this long.
LINK_LAG = timedelta(minutes=5)
# How far back an event's time may go from the latest before it along the chain before
# ``verify`` calls it back-dated. Times come from each process's clock when the event is
# written, and the linker chains events as their transactions commit: a transaction
# that commits late (a slow request, a wait for SQLite's write lock), or a host whose
# clock runs a little behind, puts an event a little out of order without anyone
# tampering. The same margin allows a time that far in the future.
CLOCK_TOLERANCE = timedelta(minutes=5)

events = cast(Table, AuditEvent.__table__)
links = cast(Table, AuditLink.__table__)
head = cast(Table, AuditChainHead.__table__)
log = logging.getLogger(__name__)
T = TypeVar("T")


class AuditChainHeadMissing(RuntimeError):
    """The head row is gone: the linker must stop rather than start a new chain."""


def _instant(at: datetime) -> str:
    # SQLite hands datetimes back without their zone; both backends keep microseconds.
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(event: Mapping[Any, Any]) -> str:
    """SHA-256 over an event's columns as stored and its link's ``prev_hash``."""
    values: list[Any] = [CHAIN_VERSION]
    for column in HASHED:
        value = event[column]
        values.append(_instant(value) if isinstance(value, datetime) else value)
    canonical = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


# Linking -------------------------------------------------------------------------------

_unlinked = links.c.position.is_(None)


def _link_batch(connection: Connection) -> int:
    """Links up to ``BATCH`` committed events, oldest id first, in one transaction."""
    # The head's UPDATE comes first: it is what makes linkers take turns.
    previous = connection.execute(
        update(head)
        .where(head.c.id == HEAD_ID)
        .values(last_position=head.c.last_position)
        .returning(head.c.last_position, head.c.last_hash)
    ).one_or_none()
    if previous is None:
        raise AuditChainHeadMissing("the audit chain's head row is missing: nothing can be linked")
    pending = (
        connection.execute(
            select(events)
            .join(links, links.c.event_id == events.c.id)
            .where(_unlinked)
            .order_by(events.c.id)
            .limit(BATCH)
        )
        .mappings()
        .all()
    )
    position, last_hash = previous.last_position, previous.last_hash
    made = []
    for event in pending:
        position += 1
        digest = event_hash({**event, "prev_hash": last_hash})
        made.append(
            {"event": event["id"], "position": position, "prev_hash": last_hash, "hash": digest}
        )
        last_hash = digest
    if made:
        # Each fill moves the head too (the triggers do, and refuse any other place).
        connection.execute(
            update(links)
            .where(links.c.event_id == bindparam("event"), _unlinked)
            .values(
                position=bindparam("position"),
                prev_hash=bindparam("prev_hash"),
                hash=bindparam("hash"),
            ),
            made,
        )
    return len(made)


@finishes_when_cancelled  # the linker is cancelled when its process stops
async def _link_next_batch(engine: AsyncEngine) -> int | None:
    """One batch in one transaction: how many it linked, None if nothing was waiting."""
    async with engine.connect() as connection:
        # A read first: no write lock at all while there is nothing to link.
        waiting = await connection.scalar(select(links.c.event_id).where(_unlinked).limit(1))
        if waiting is None:
            return None
        await connection.rollback()
        made = await connection.run_sync(_link_batch)
        await connection.commit()
        return made


async def link_pending(engine: AsyncEngine) -> int:
    """Links every event committed so far; returns how many it linked."""
    linked = 0
    while True:
        made = await _link_next_batch(engine)
        if made is None:
            return linked
        linked += made
        if made < BATCH:
            return linked


async def _keep_linking(engine: AsyncEngine, every: float) -> None:
    while True:
        try:
            await link_pending(engine)
        except Exception:
            # The events are kept either way; ``securemail audit verify`` shows the backlog.
            log.exception("linking the audit log failed; retrying in %.0f s", every)
        await asyncio.sleep(every)


@asynccontextmanager
async def keep_linking(
    engine: AsyncEngine, every: float = LINK_EVERY_SECONDS
) -> AsyncIterator[None]:
    """Links new events every ``every`` seconds while the block runs, and once at its
    end, so a process that stops leaves nothing of its own unlinked."""
    task = asyncio.create_task(_keep_linking(engine, every), name="audit-linker")
    try:
        yield
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass
        try:
            await link_pending(engine)
        except Exception:
            log.exception("linking the audit log at shutdown failed")


# Verifying -----------------------------------------------------------------------------

_ANCHOR = re.compile(r"(?:([0-9]+):)?([0-9a-f]{64})")


class MalformedAnchor(ValueError):
    """An ``--anchor`` that is not ``POSITION:HASH``."""


@dataclass(frozen=True)
class Anchor:
    """A link's position and hash kept outside the database (``securemail audit
    anchor``): while the link at ``position`` still has ``hash``, nothing at or before it
    changed, whoever can write to the database. A bare hash, without its position, must
    be at some link."""

    position: int | None
    hash: str

    @classmethod
    def parse(cls, text: str) -> Anchor:
        found = _ANCHOR.fullmatch(text.strip().lower())
        if found is None:
            raise MalformedAnchor(
                f"malformed anchor {text!r}: expected POSITION:HASH as `securemail audit "
                "anchor` prints it, a link's position and its 64 hexadecimal digits"
            )
        return cls(int(found[1]) if found[1] is not None else None, found[2])

    def __str__(self) -> str:
        return self.hash if self.position is None else f"{self.position}:{self.hash}"


@dataclass(frozen=True)
class ChainReport:
    """What ``verify`` found: ``broken_at`` is the id of the first event that fails;
    ``unlinked`` events are written but not yet linked (the linker's backlog)."""

    checked: int
    last_id: int | None
    last_hash: str
    broken_at: int | None = None
    problem: str | None = None
    unlinked: int = 0
    oldest_unlinked_at: datetime | None = None
    last_position: int = 0

    @property
    def intact(self) -> bool:
        return self.problem is None

    @property
    def head(self) -> Anchor:
        return Anchor(self.last_position, self.last_hash)


@dataclass(frozen=True)
class Unchained:
    """What lies outside the chain when the walk ends."""

    # Links still empty, and the oldest of their events.
    unlinked: int = 0
    oldest_unlinked_at: datetime | None = None
    oldest_unlinked_id: int | None = None
    # An empty link whose event is gone, and an event that has no link at all.
    deleted_unlinked: int | None = None
    without_link: int | None = None


def _utc(at: datetime) -> datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _when(at: datetime) -> str:
    return f"{at:%Y-%m-%d %H:%M:%S} UTC"


def _span(length: timedelta) -> str:
    seconds = int(length.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}(s)"
    return f"{seconds} second(s)"


def check(
    rows: Iterable[Mapping[Any, Any]],
    head_before: Mapping[Any, Any] | None,
    read_head_after: Callable[[], Mapping[Any, Any] | None],
    anchors: Collection[Anchor] = (),
    read_unchained: Callable[[], Unchained] = Unchained,
    now: datetime | None = None,
) -> ChainReport:
    """Walks the links in position order (each with its event's columns, ``id`` empty
    when the event is gone) and reports the first that does not hold.

    The links are the record; the head row only adds what they cannot show alone, that
    the newest of them are all there. It is read before the walk and again after it: a
    running linker moves it meanwhile, and SQLite has no snapshot to share across the
    walk's statements.

    ``anchors`` were taken earlier and kept elsewhere: each link they name must still have
    its hash, or the log was rewritten at or before it by someone able to recompute every
    later hash (the database's owner).
    """
    now = now or datetime.now(UTC)
    at_position = {a.position: a for a in anchors if a.position is not None}
    unseen = {a.hash for a in anchors if a.position is None}
    checked = 0
    previous_id: int | None = None
    previous_position = 0
    expected_prev = GENESIS
    # The latest time seen so far along the chain, and whose it is.
    latest: tuple[datetime, int] | None = None

    def broken(at: int | None, problem: str) -> ChainReport:
        return ChainReport(
            checked, previous_id, expected_prev, at, problem, last_position=previous_position
        )

    start = at_position.get(0)
    if start is not None and start.hash != GENESIS:
        return broken(None, f"the anchor {start} is not the chain's start")
    for row in rows:
        checked += 1
        event_id, position = int(row["event_id"]), int(row["position"])
        after = f"event {previous_id}" if previous_id is not None else "the start"
        unseen.discard(row["hash"])
        if position <= previous_position:
            return broken(
                event_id,
                f"event {event_id} is at link {position}, before the chain's start (link 1): "
                "it was taken out of the chain",
            )
        if position != previous_position + 1:
            return broken(
                event_id,
                f"event {event_id} does not follow {after}: links {previous_position + 1} "
                f"to {position - 1} are missing, so events between them were deleted",
            )
        if row["id"] is None:
            return broken(event_id, f"event {event_id} was deleted; its link is still there")
        if event_hash(row) != row["hash"]:
            return broken(
                event_id,
                f"event {event_id} was altered or moved: its content no longer matches its hash",
            )
        if row["prev_hash"] != expected_prev:
            return broken(
                event_id,
                f"event {event_id} does not follow {after}: an event between them "
                "was deleted, or one was altered or moved",
            )
        at = _utc(row["at"])
        if at > now + CLOCK_TOLERANCE:
            return broken(
                event_id, f"event {event_id} is dated {_when(at)}, in the future: forward-dated"
            )
        if latest is not None and at < latest[0] - CLOCK_TOLERANCE:
            return broken(
                event_id,
                f"event {event_id} is dated {_when(at)}, {_span(latest[0] - at)} before "
                f"event {latest[1]} ahead of it in the chain ({_when(latest[0])}): one of "
                "them was back- or forward-dated",
            )
        if latest is None or at > latest[0]:
            latest = (at, event_id)
        anchor = at_position.get(position)
        if anchor is not None and anchor.hash != row["hash"]:
            return broken(
                event_id,
                f"link {position} (event {event_id}) no longer has the hash of the anchor "
                f"{anchor}: the log was rewritten at or before it",
            )
        previous_id, previous_position, expected_prev = event_id, position, row["hash"]

    head_after = read_head_after()
    last = f"the last link {previous_position} (event {previous_id or 'none'})"
    if head_before is None or head_after is None:
        return broken(None, "the audit chain's head row is missing")
    if previous_position < head_before["last_position"]:
        return broken(
            previous_id,
            f"the head row names link {head_before['last_position']}, past {last}: the "
            f"newest events are missing (links {previous_position + 1} to "
            f"{head_before['last_position']} deleted with their events), or the head row "
            "was changed",
        )
    if previous_position > head_after["last_position"]:
        return broken(
            previous_id,
            f"the chain goes on past its head row (link {head_after['last_position']}) to "
            f"link {previous_position} (event {previous_id}): the head row was moved back",
        )
    for head_row in (head_before, head_after):
        if head_row["last_position"] == previous_position and head_row["last_hash"] != (
            expected_prev
        ):
            return broken(
                previous_id,
                f"the head row names link {previous_position} (event {previous_id}) but not "
                "its hash: the head row was changed",
            )
    past = [
        a for a in at_position.values() if a.position is not None and a.position > previous_position
    ]
    if past:
        return broken(
            None,
            f"the anchor {past[0]} names link {past[0].position}, past the chain's last link "
            f"{previous_position}: the newest events were deleted, or the anchor is from "
            "another database",
        )
    if unseen:
        return broken(
            None,
            f"the recorded head hash {sorted(unseen)[0]} is in no event: the log was "
            "rewritten after it was recorded",
        )
    unchained = read_unchained()
    if unchained.without_link is not None:
        return broken(
            unchained.without_link,
            f"event {unchained.without_link} has no link: it was inserted outside the chain",
        )
    if unchained.deleted_unlinked is not None:
        return broken(
            unchained.deleted_unlinked,
            f"event {unchained.deleted_unlinked} was deleted before it was linked",
        )
    oldest = unchained.oldest_unlinked_at
    if oldest is not None and _utc(oldest) < now - LINK_LAG:
        return broken(
            unchained.oldest_unlinked_id,
            f"event {unchained.oldest_unlinked_id} is not linked {_span(now - _utc(oldest))} "
            f"after it was written ({_when(_utc(oldest))}): no linker is running (start the "
            "app: it links the backlog), or something holds the event's link",
        )
    return ChainReport(
        checked,
        previous_id,
        expected_prev,
        unlinked=unchained.unlinked,
        oldest_unlinked_at=unchained.oldest_unlinked_at,
        last_position=previous_position,
    )


def _head(connection: Connection) -> Mapping[Any, Any] | None:
    found = connection.execute(select(head).where(head.c.id == HEAD_ID)).mappings().one_or_none()
    # Outside any transaction: each read sees what is committed now.
    connection.commit()
    return found


def _links(connection: Connection) -> Iterator[Mapping[Any, Any]]:
    # In batches by position, so a long log is never held in memory at once. The first
    # batch starts at the lowest position, whatever it is: a link placed before the
    # chain's start must show too.
    columns = [
        *(events.c[name] for name in HASHED if name != "prev_hash"),
        links.c.event_id,
        links.c.position,
        links.c.prev_hash,
        links.c.hash,
    ]
    after: int | None = None
    while True:
        query = (
            select(*columns)
            .select_from(links.outerjoin(events, events.c.id == links.c.event_id))
            .where(links.c.position.is_not(None))
            .order_by(links.c.position)
            .limit(BATCH)
        )
        if after is not None:
            query = query.where(links.c.position > after)
        batch = connection.execute(query).mappings().all()
        connection.commit()
        yield from batch
        if len(batch) < BATCH:
            return
        after = int(batch[-1]["position"])


def _unchained(connection: Connection) -> Unchained:
    no_link = ~exists().where(links.c.event_id == events.c.id)
    without_link = connection.scalar(select(func.min(events.c.id)).where(no_link))
    count, deleted = connection.execute(
        select(func.count(), func.min(links.c.event_id).filter(events.c.id.is_(None)))
        .select_from(links.outerjoin(events, events.c.id == links.c.event_id))
        .where(_unlinked)
    ).one()
    oldest = connection.execute(
        select(events.c.id, events.c.at)
        .join(links, links.c.event_id == events.c.id)
        .where(_unlinked)
        .order_by(events.c.at, events.c.id)
        .limit(1)
    ).one_or_none()
    connection.commit()
    return Unchained(
        count,
        oldest.at if oldest is not None else None,
        oldest.id if oldest is not None else None,
        deleted,
        without_link,
    )


def _verify(connection: Connection, anchors: Collection[Anchor]) -> ChainReport:
    head_before = _head(connection)
    return check(
        _links(connection),
        head_before,
        lambda: _head(connection),
        anchors,
        lambda: _unchained(connection),
    )


async def verify(engine: AsyncEngine, anchors: Collection[Anchor] = ()) -> ChainReport:
    """Checks the whole chain; it needs only SELECT, so the app's role can run it."""
    async with engine.connect() as connection:
        return await connection.run_sync(_verify, anchors)


async def newest_link(engine: AsyncEngine) -> Anchor:
    """The chain's newest link, from the links themselves: what ``securemail audit
    anchor`` prints to keep elsewhere (``0:`` and the genesis hash while none is made)."""
    async with engine.connect() as connection:
        found = (
            await connection.execute(
                select(links.c.position, links.c.hash)
                .where(links.c.position.is_not(None))
                .order_by(links.c.position.desc())
                .limit(1)
            )
        ).one_or_none()
    if found is None:
        return Anchor(0, GENESIS)
    return Anchor(int(found.position), str(found.hash))


async def _with_engine(database_url: str, use: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    from infra.db.engine import make_engine

    engine = make_engine(database_url)
    try:
        return await use(engine)
    finally:
        await engine.dispose()


async def verify_database(database_url: str, anchors: Collection[Anchor] = ()) -> ChainReport:
    return await _with_engine(database_url, lambda engine: verify(engine, anchors))


async def anchor_database(database_url: str) -> Anchor:
    return await _with_engine(database_url, newest_link)
