"""``python -m bench.hot_reads``: the CPU of the portal's two hot reads, by how they are built.

The link's message (``infra.secure_emails.by_link``, every page reached by a link) and the
portal session (``infra.portal_sessions.live``, every signed-in page), each looked up
``--lookups`` times in a session of its own on a migrated SQLite file, as the product
runs them (the statement built once, its key a bound parameter) and as they were built
before (a new ``select`` per call; and the same as a ``lambda_stmt``). Tokens that match
no row: what is measured is the statement's cost to SQLAlchemy and the driver, not the
objects a found row becomes, which is the same whichever way the statement is built.
Process CPU (``time.process_time``, every thread: aiosqlite's included) per lookup,
median of ``--repeats`` runs, the ways alternating.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import Executable, Select, StatementLambdaElement, lambda_stmt, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bench.common import say
from infra import portal_sessions, secure_emails
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade
from infra.db.models import Patient, PortalSession, Practice, SecureEmail
from infra.security import token_hash

Lookup = Callable[[AsyncSession, str], Awaitable[object]]


def per_call_link(key: str) -> Select[SecureEmail, Patient, Practice]:
    return (
        select(SecureEmail, Patient, Practice)
        .outerjoin(Patient, Patient.id == SecureEmail.patient_id)
        .outerjoin(Practice, Practice.id == SecureEmail.practice_id)
        .where(SecureEmail.link_token_hash == key)
    )


def per_call_session(key: str) -> Select[PortalSession, Patient, Practice]:
    return (
        select(PortalSession, Patient, Practice)
        .outerjoin(Patient, Patient.id == PortalSession.patient_id)
        .outerjoin(Practice, Practice.id == Patient.practice_id)
        .where(PortalSession.token_hash == key)
    )


Build = Callable[[str], Executable]


def as_lambda(build: Build, hashing: bool = False) -> Lookup:
    async def lookup(db: AsyncSession, key: str) -> object:
        # ``live`` hashes the cookie's token itself: so do its other ways.
        hashed = token_hash(key) if hashing else key
        statement: StatementLambdaElement = lambda_stmt(lambda: build(hashed))
        return (await db.execute(statement)).first()

    return lookup


def per_call(build: Build, hashing: bool = False) -> Lookup:
    async def lookup(db: AsyncSession, key: str) -> object:
        return (await db.execute(build(token_hash(key) if hashing else key))).first()

    return lookup


WAYS: dict[str, dict[str, Lookup]] = {
    "link's message (by_link)": {
        "built once (the product)": secure_emails.by_link,
        "built per call (before)": per_call(per_call_link),
        "lambda_stmt": as_lambda(per_call_link),
    },
    "portal session (live)": {
        "built once (the product)": portal_sessions.live,
        "built per call (before)": per_call(per_call_session, hashing=True),
        "lambda_stmt": as_lambda(per_call_session, hashing=True),
    },
}


async def per_lookup_us(
    sessions: async_sessionmaker[AsyncSession], lookup: Lookup, lookups: int
) -> float:
    keys = [f"{index:064x}" for index in range(lookups)]
    started = time.process_time()
    for key in keys:
        async with sessions() as db:
            await lookup(db, key)
    return (time.process_time() - started) / lookups * 1e6


async def run(lookups: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-hot-reads-") as directory:
        url = f"sqlite+aiosqlite:///{Path(directory) / 'hot.sqlite3'}"
        await asyncio.to_thread(upgrade, url)
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)
        found: dict[tuple[str, str], list[float]] = {}
        try:
            for _ in range(repeats):
                for read, ways in WAYS.items():
                    for way, lookup in ways.items():
                        figure = await per_lookup_us(sessions, lookup, lookups)
                        found.setdefault((read, way), []).append(figure)
        finally:
            await engine.dispose()
    say(f"\nCPU µs per lookup (a session each), median of {repeats} runs of {lookups}")
    say("| read | " + " | ".join(next(iter(WAYS.values()))) + " |")
    say("|---|" + "---|" * len(next(iter(WAYS.values()))))
    for read, ways in WAYS.items():
        cells = [f"{statistics.median(found[read, way]):.0f}" for way in ways]
        say(f"| {read} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.hot_reads", description=__doc__)
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.lookups, args.repeats))


if __name__ == "__main__":
    main()
