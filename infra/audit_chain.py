"""The audit log's hash chain (R13): a deleted, edited or reordered event shows.

Each event stores ``prev_hash`` (the hash of the event before it) and ``hash`` (SHA-256
over its own content, its id and ``prev_hash``). One chain runs through the whole table
in id order, and the ``audit_chain_head`` row holds the newest link, so deleting the
newest events shows too.

Why one global chain rather than one per practice: verifying is one pass in id order,
one head row covers deletions at the end, and events that belong to no practice
(an operator's log-in, ``domain.audit.PLATFORM``) sit in the same chain. The price is
that every audited transaction takes the head row's lock until it commits; audited
transactions are short (``web.deps.audit_staff`` commits at once), and SQLite serialises
every writer anyway.

The link is made while the event is inserted, under that lock: the first statement
*updates* the head row, which on PostgreSQL locks the row until the transaction ends and
on SQLite takes the database's write lock, so two web processes and a worker can never
link two events to the same predecessor. The event's id is the head's id plus one, so
ids follow the chain.

The chain shows tampering by anyone who does not rewrite every later event too; the
database owner could. Keep the head hash that ``securemail audit verify`` prints somewhere
else (a ticket, the operators' log) to hold even the owner to it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Connection, Table, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from infra.db.models import AuditChainHead, AuditEvent, utcnow

# The hash before the first event.
GENESIS = "0" * 64
# Part of what is hashed, so a later change of the recipe cannot pass for this one.
CHAIN_VERSION = "audit-chain-v1"
HEAD_ID = 1
# The columns each hash covers, in this order.
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

events = cast(Table, AuditEvent.__table__)
head = cast(Table, AuditChainHead.__table__)


class AuditChainHeadMissing(RuntimeError):
    """The head row is gone: audited actions must fail rather than start a new chain."""


def _instant(at: datetime) -> str:
    # SQLite hands datetimes back without their zone; both backends keep microseconds.
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(event: Mapping[Any, Any]) -> str:
    """SHA-256 over an event's columns as stored (a row mapping or a dict)."""
    values: list[Any] = [CHAIN_VERSION]
    for column in HASHED:
        value = event[column]
        values.append(_instant(value) if isinstance(value, datetime) else value)
    canonical = json.dumps(values, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def link(connection: Connection, event: AuditEvent) -> None:
    """Gives ``event`` its id and both hashes, and moves the head onto it.

    Called by the ``before_insert`` hook on ``AuditEvent`` (``infra.db.models``), inside
    the caller's transaction: if the action rolls back, so do the event and the head.
    """
    previous = connection.execute(
        update(head)
        .where(head.c.id == HEAD_ID)
        .values(last_event_id=head.c.last_event_id + 1)
        .returning(head.c.last_event_id, head.c.last_hash)
    ).one_or_none()
    if previous is None:
        raise AuditChainHeadMissing("the audit chain's head row is missing; see README")
    if event.at is None:
        event.at = utcnow()
    event.id = previous.last_event_id
    event.prev_hash = previous.last_hash
    event.hash = event_hash({column: getattr(event, column) for column in HASHED})
    connection.execute(update(head).where(head.c.id == HEAD_ID).values(last_hash=event.hash))


@dataclass(frozen=True)
class ChainReport:
    """What ``verify`` found: ``broken_at`` is the id of the first event that fails."""

    checked: int
    last_id: int | None
    last_hash: str
    broken_at: int | None = None
    problem: str | None = None

    @property
    def intact(self) -> bool:
        return self.problem is None


def check(
    rows: Iterable[Mapping[Any, Any]],
    head_before: Mapping[Any, Any] | None,
    read_head_after: Callable[[], Mapping[Any, Any] | None],
    anchors: Collection[str] = (),
) -> ChainReport:
    """Walks the events in id order and reports the first link that does not hold.

    The head is read before the walk and again after it: events committed meanwhile by
    a running app are neither missed nor taken for tampering, and without one snapshot
    for the whole walk (SQLite has none to share across statements here).

    ``anchors`` are head hashes printed by earlier runs and kept elsewhere: each must
    still be in the chain, or the log was rewritten from some point on, by someone able
    to recompute every later hash (the database's owner).
    """
    unseen = set(anchors)
    checked = 0
    previous_id: int | None = None
    expected_prev = GENESIS
    # Ids past the head as first read: a running app may add them; anything else past
    # the head as read at the end was inserted outside the chain.
    late: list[int] = []
    for row in rows:
        checked += 1
        event_id = int(row["id"])
        if head_before is not None and event_id > head_before["last_event_id"]:
            late.append(event_id)
        unseen.discard(row["hash"])
        if event_hash(row) != row["hash"]:
            return ChainReport(
                checked,
                previous_id,
                expected_prev,
                event_id,
                f"event {event_id} was altered or moved: its content no longer matches its hash",
            )
        if row["prev_hash"] != expected_prev:
            after = f"event {previous_id}" if previous_id is not None else "the start"
            gap = (
                f"; ids {previous_id + 1} to {event_id - 1} are missing"
                if previous_id is not None and event_id - previous_id > 1
                else ""
            )
            return ChainReport(
                checked,
                previous_id,
                expected_prev,
                event_id,
                f"event {event_id} does not follow {after}{gap}: an event between them "
                "was deleted, or one was altered or moved",
            )
        previous_id, expected_prev = event_id, row["hash"]

    def broken(at: int | None, problem: str) -> ChainReport:
        return ChainReport(checked, previous_id, expected_prev, at, problem)

    head_after = read_head_after()
    if head_before is None or head_after is None:
        return broken(None, "the audit chain's head row is missing")
    last = previous_id or 0
    if last < head_before["last_event_id"]:
        return broken(
            head_before["last_event_id"],
            f"the newest events are missing: the log ends at event {last} but the chain's "
            f"head is event {head_before['last_event_id']}",
        )
    beyond = [event_id for event_id in late if event_id > head_after["last_event_id"]]
    if beyond:
        return broken(
            beyond[0],
            f"event {beyond[0]} is past the chain's head (event "
            f"{head_after['last_event_id']}): it was inserted outside the chain",
        )
    for head_row in (head_before, head_after):
        if head_row["last_event_id"] == last and head_row["last_hash"] != expected_prev:
            return broken(last, f"the chain's head does not match event {last}")
    if unseen:
        return broken(
            None,
            f"the recorded head hash {sorted(unseen)[0]} is in no event: the log was "
            "rewritten after it was recorded",
        )
    return ChainReport(checked, previous_id, expected_prev)


BATCH = 1000


def _head(connection: Connection) -> Mapping[Any, Any] | None:
    found = connection.execute(select(head).where(head.c.id == HEAD_ID)).mappings().one_or_none()
    # Outside any transaction: each read sees what is committed now.
    connection.commit()
    return found


def _events(connection: Connection) -> Iterator[Mapping[Any, Any]]:
    # In batches by id, so a long log is never held in memory at once.
    after: int | None = None
    while True:
        statement = select(events).order_by(events.c.id).limit(BATCH)
        if after is not None:
            statement = statement.where(events.c.id > after)
        batch = connection.execute(statement).mappings().all()
        connection.commit()
        yield from batch
        if len(batch) < BATCH:
            return
        after = int(batch[-1]["id"])


def _verify(connection: Connection, anchors: Collection[str]) -> ChainReport:
    head_before = _head(connection)
    return check(_events(connection), head_before, lambda: _head(connection), anchors)


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
