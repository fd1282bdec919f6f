"""The audit log's hash chain (R13): a deleted, edited or reordered event shows.

Each event has a link (``audit_links``): its ``position`` in the chain, ``prev_hash``
(the hash of the link before it) and ``hash`` (SHA-256 over the event's content, its id
and ``prev_hash``). One chain runs through the whole log in position order, and the
``audit_chain_head`` row holds the newest link, so deleting the newest events shows too.

Why one global chain rather than one per practice: verifying is one pass, one head row
covers deletions at the end, and events that belong to no practice (an operator's
log-in, ``domain.audit.PLATFORM``) sit in the same chain.

Why linking is a step of its own: an event is written with an empty link, in the
action's own transaction, and takes no shared lock. The linker (``keep_linking``, in
every web and worker process) then links every committed empty link in one short
transaction, in event-id order, holding the head row's lock only for that: on PostgreSQL
the UPDATE of the head locks the row, on SQLite it takes the database's write lock, so
two linkers never give two links the same predecessor. Before, every audited request
took that lock itself and held it until it committed, so audited requests of every
process ran one at a time (docs/BENCHMARKS.md section 2). The price is a second or two
in which a new event is append-only (the triggers, the app's role) but not yet chained:
in that time only the database's owner could remove it unseen, and ``securemail audit
verify`` reports such events as not linked yet.

The chain shows tampering by anyone who does not rewrite every later link too; the
database owner could. Keep the head hash that ``securemail audit verify`` prints somewhere
else (a ticket, the operators' log) to hold even the owner to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Collection, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, bindparam, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.engine import finishes_when_cancelled
from infra.db.models import AuditChainHead, AuditEvent, AuditLink

# The hash before the first event.
GENESIS = "0" * 64
# Part of what is hashed, so a later change of the recipe cannot pass for this one.
CHAIN_VERSION = "audit-chain-v1"
HEAD_ID = 1
# The columns each hash covers, in this order (``prev_hash`` is the link's).
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

events = cast(Table, AuditEvent.__table__)
links = cast(Table, AuditLink.__table__)
head = cast(Table, AuditChainHead.__table__)
log = logging.getLogger(__name__)


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
        connection.execute(
            update(head)
            .where(head.c.id == HEAD_ID)
            .values(last_position=position, last_hash=last_hash)
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

    @property
    def intact(self) -> bool:
        return self.problem is None


@dataclass(frozen=True)
class Unchained:
    """What lies outside the chain when the walk ends."""

    # Links still empty, and how old the oldest of their events is.
    unlinked: int = 0
    oldest_unlinked_at: datetime | None = None
    # An empty link whose event is gone, and an event that has no link at all.
    deleted_unlinked: int | None = None
    without_link: int | None = None


def check(
    rows: Iterable[Mapping[Any, Any]],
    head_before: Mapping[Any, Any] | None,
    read_head_after: Callable[[], Mapping[Any, Any] | None],
    anchors: Collection[str] = (),
    read_unchained: Callable[[], Unchained] = Unchained,
) -> ChainReport:
    """Walks the links in position order (each with its event's columns, ``id`` empty
    when the event is gone) and reports the first that does not hold.

    The head is read before the walk and again after it: links made meanwhile by a
    running linker are neither missed nor taken for tampering, and without one snapshot
    for the whole walk (SQLite has none to share across statements here).

    ``anchors`` are head hashes printed by earlier runs and kept elsewhere: each must
    still be in the chain, or the log was rewritten from some point on, by someone able
    to recompute every later hash (the database's owner).
    """
    unseen = set(anchors)
    checked = 0
    previous_id: int | None = None
    previous_position = 0
    expected_prev = GENESIS
    # Positions past the head as first read: a running linker may add them; anything
    # else past the head as read at the end was linked outside the chain.
    late: list[tuple[int, int]] = []

    def broken(at: int | None, problem: str) -> ChainReport:
        return ChainReport(checked, previous_id, expected_prev, at, problem)

    for row in rows:
        checked += 1
        event_id, position = int(row["event_id"]), int(row["position"])
        after = f"event {previous_id}" if previous_id is not None else "the start"
        if head_before is not None and position > head_before["last_position"]:
            late.append((position, event_id))
        unseen.discard(row["hash"])
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
        previous_id, previous_position, expected_prev = event_id, position, row["hash"]

    head_after = read_head_after()
    if head_before is None or head_after is None:
        return broken(None, "the audit chain's head row is missing")
    if previous_position < head_before["last_position"]:
        return broken(
            previous_id,
            f"the newest events are missing: the chain ends at link {previous_position} "
            f"(event {previous_id or 'none'}) but its head is link "
            f"{head_before['last_position']}",
        )
    beyond = [(p, e) for p, e in late if p > head_after["last_position"]]
    if beyond:
        return broken(
            beyond[0][1],
            f"event {beyond[0][1]} is linked past the chain's head (link "
            f"{head_after['last_position']}): it was linked outside the chain",
        )
    for head_row in (head_before, head_after):
        if head_row["last_position"] == previous_position and head_row["last_hash"] != (
            expected_prev
        ):
            return broken(previous_id, f"the chain's head does not match event {previous_id}")
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
    return ChainReport(
        checked,
        previous_id,
        expected_prev,
        unlinked=unchained.unlinked,
        oldest_unlinked_at=unchained.oldest_unlinked_at,
    )


def _head(connection: Connection) -> Mapping[Any, Any] | None:
    found = connection.execute(select(head).where(head.c.id == HEAD_ID)).mappings().one_or_none()
    # Outside any transaction: each read sees what is committed now.
    connection.commit()
    return found


def _links(connection: Connection) -> Iterator[Mapping[Any, Any]]:
    # In batches by position, so a long log is never held in memory at once.
    columns = [
        *(events.c[name] for name in HASHED if name != "prev_hash"),
        links.c.event_id,
        links.c.position,
        links.c.prev_hash,
        links.c.hash,
    ]
    after = 0
    while True:
        batch = (
            connection.execute(
                select(*columns)
                .select_from(links.outerjoin(events, events.c.id == links.c.event_id))
                .where(links.c.position > after)
                .order_by(links.c.position)
                .limit(BATCH)
            )
            .mappings()
            .all()
        )
        connection.commit()
        yield from batch
        if len(batch) < BATCH:
            return
        after = int(batch[-1]["position"])


def _unchained(connection: Connection) -> Unchained:
    no_link = ~exists().where(links.c.event_id == events.c.id)
    without_link = connection.scalar(select(func.min(events.c.id)).where(no_link))
    count, oldest, deleted = connection.execute(
        select(
            func.count(),
            func.min(events.c.at),
            func.min(links.c.event_id).filter(events.c.id.is_(None)),
        )
        .select_from(links.outerjoin(events, events.c.id == links.c.event_id))
        .where(_unlinked)
    ).one()
    connection.commit()
    return Unchained(count, oldest, deleted, without_link)


def _verify(connection: Connection, anchors: Collection[str]) -> ChainReport:
    head_before = _head(connection)
    return check(
        _links(connection),
        head_before,
        lambda: _head(connection),
        anchors,
        lambda: _unchained(connection),
    )


async def verify(engine: AsyncEngine, anchors: Collection[str] = ()) -> ChainReport:
    """Checks the whole chain; it needs only SELECT, so the app's role can run it."""
    async with engine.connect() as connection:
        return await connection.run_sync(_verify, anchors)


async def verify_database(database_url: str, anchors: Collection[str] = ()) -> ChainReport:
    from infra.db.engine import make_engine

    engine = make_engine(database_url)
    try:
        return await verify(engine, anchors)
    finally:
        await engine.dispose()
