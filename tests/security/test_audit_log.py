"""An audit log no app process can erase, and whose tampering shows (R13).

Attacks on the log itself: the app's PostgreSQL role (what a compromised web or worker
process holds) tries to empty, edit or switch off the log; the database's owner, who can,
deletes, edits and reorders rows, and ``securemail audit verify`` names the first event
that no longer holds. The roles are the ones ``deploy/postgres/init-databases.sh``
creates for docker-compose, made by running that script.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import DateTime, Executable, column, insert, select, table, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner, Result

from domain.audit import ActorType, AuditAction
from domain.staff import StaffRole
from infra.accounts import create_practice, create_staff_user
from infra.audit import Actor, audit
from infra.audit_chain import (
    GENESIS,
    LINK_LAG,
    Anchor,
    MalformedAnchor,
    event_hash,
    events,
    keep_linking,
    link_pending,
    links,
)
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade, upgrade_async
from infra.db.models import AuditEvent
from infra.settings import Settings, get_settings
from tests.conftest import (
    STAFF_PASSWORD,
    TEST_KEYS,
    Browser,
    some_client_address,
)
from tests.fixtures.migrated import MigratedTemplates, migrated_templates
from tests.fixtures.postgres import POSTGRES_ADMIN_DSN, admin_execute
from tests.fixtures.rows import raw_rows
from tests.fixtures.waiting import eventually
from tests.test_compose import env_example, environment
from web.app import create_app
from workers.cli import app as securemail

ROOT = Path(__file__).resolve().parents[2]
PRACTICE = "practice-under-audit"
CLERK = Actor(ActorType.STAFF, "staff-1", "10.0.0.7")


@pytest.fixture(scope="session")
async def migrated(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[MigratedTemplates]:
    """A SQLite file and a PostgreSQL database migrated once in this test process."""
    async with migrated_templates(tmp_path_factory.mktemp("migrated")) as templates:
        yield templates


@pytest.fixture(params=["sqlite", "postgresql"])
async def log_database(
    request: pytest.FixtureRequest, tmp_path: Path, migrated: MigratedTemplates
) -> AsyncIterator[str]:
    """A database of this test's own, migrated: a broken chain must not spill over."""
    async with migrated.new_database(
        request.param, tmp_path / "audit.db", "securemail_audit"
    ) as url:
        yield url


async def write_events(url: str, count: int, *, linked: bool = True) -> list[int]:
    """What the app does: ``audit()`` in a transaction of its own, then commit; and,
    unless ``linked`` is false, what every app process's linker then does."""
    engine = make_engine(url)
    ids = []
    try:
        for number in range(count):
            async with make_sessionmaker(engine)() as db:
                audit(
                    db,
                    PRACTICE,
                    AuditAction.OFFICE_VIEW,
                    CLERK,
                    patient_id=f"patient-{number}",
                    secure_email_id=f"email-{number}",
                )
                await db.commit()
        if linked:
            await link_pending(engine)
        async with make_sessionmaker(engine)() as db:
            ids = list((await db.scalars(select(AuditEvent.id).order_by(AuditEvent.id))).all())
    finally:
        await engine.dispose()
    return ids


async def as_owner(url: str, *statements: str) -> None:
    """The database's owner changes rows past the append-only triggers, as it can."""
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                for name in OWNED:
                    await connection.execute(text(f"ALTER TABLE {name} DISABLE TRIGGER USER"))
            else:
                # The database is this test's own and only read afterwards.
                triggers = await connection.scalars(
                    text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
                )
                for trigger in triggers.all():
                    await connection.execute(text(f"DROP TRIGGER {trigger}"))
            for statement in statements:
                await connection.execute(text(statement))
            if connection.dialect.name == "postgresql":
                for name in OWNED:
                    await connection.execute(text(f"ALTER TABLE {name} ENABLE TRIGGER USER"))
    finally:
        await engine.dispose()


OWNED = ("audit_events", "audit_links", "audit_chain_head")


@dataclass
class Verdict:
    code: int
    output: str


async def audit_verify(url: str, *options: str) -> Verdict:
    """``securemail audit verify``: the command's own code, output and exit code."""
    return await audit_command(url, "verify", *options)


async def audit_command(url: str, *arguments: str) -> Verdict:
    """``securemail audit ...`` run by its click command in this process, its settings
    from the environment as in a process of its own (``env`` is set for the call only).
    A thread of its own, since the command runs its own event loop; the seconds a new
    interpreter takes to import the app are left to ``audit_process``."""

    def invoke() -> Result:
        # The settings are cached per process: read afresh, as a new process would,
        # and not left behind for the rest of this one.
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(
                securemail,
                ["audit", *arguments],
                env={"SECURE_EMAIL_DATABASE_URL": url},
                catch_exceptions=False,
            )
        finally:
            get_settings.cache_clear()

    done = await asyncio.to_thread(invoke)
    return Verdict(done.exit_code, done.output)


async def audit_process(url: str, *arguments: str) -> Verdict:
    """``securemail audit ...`` as an operator runs it, in a process of its own."""
    env = {**os.environ, "SECURE_EMAIL_DATABASE_URL": url}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "workers.cli", "audit", *arguments],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return Verdict(done.returncode, done.stdout + done.stderr)


# Verify: the owner's tampering shows -------------------------------------------------------


async def test_verify_passes_an_untouched_log(log_database: str) -> None:
    ids = await write_events(log_database, 5)
    assert ids == [1, 2, 3, 4, 5]
    # The operator's command end to end, from its entry point.
    verdict = await audit_process(log_database, "verify")
    assert verdict.code == 0, verdict.output
    assert "Intact: 5 event(s), newest event 5." in verdict.output
    assert re.search(r"Head: 5:[0-9a-f]{64}\n", verdict.output), verdict.output


@pytest.mark.parametrize(
    ("written", "tampering", "expected"),
    [
        pytest.param(
            5,
            ["DELETE FROM audit_events WHERE id = 3"],
            ["BROKEN at event 3: event 3 was deleted; its link is still there"],
            id="deleted",
        ),
        pytest.param(
            5,
            ["DELETE FROM audit_events WHERE id = 3", "DELETE FROM audit_links WHERE event_id = 3"],
            ["BROKEN at event 4", "links 3 to 3 are missing"],
            id="deleted-with-its-link",
        ),
        pytest.param(
            5,
            ["UPDATE audit_events SET patient_id = 'someone-else' WHERE id = 2"],
            ["BROKEN at event 2", "altered"],
            id="edited",
        ),
        pytest.param(
            5,
            [
                "UPDATE audit_events SET id = 100 WHERE id = 2",
                "UPDATE audit_events SET id = 2 WHERE id = 4",
                "UPDATE audit_events SET id = 4 WHERE id = 100",
            ],
            ["BROKEN at event 2"],
            id="reordered",
        ),
        pytest.param(
            5,
            [
                "UPDATE audit_links SET position = 100 WHERE position = 2",
                "UPDATE audit_links SET position = 2 WHERE position = 4",
                "UPDATE audit_links SET position = 4 WHERE position = 100",
            ],
            ["BROKEN at event 4: event 4 does not follow event 1"],
            id="links-reordered",
        ),
        pytest.param(
            5,
            [
                "DELETE FROM audit_events WHERE id >= 4",
                "DELETE FROM audit_links WHERE event_id >= 4",
            ],
            [
                "BROKEN at event 3: the head row names link 5, past the last link 3 (event 3): "
                "the newest events are missing"
            ],
            id="newest-deleted",
        ),
        pytest.param(
            2,
            [
                "INSERT INTO audit_events (id, at, practice_id, action, actor_type) "
                "VALUES (7, CURRENT_TIMESTAMP, 'p', 'staff.log_in', 'staff')"
            ],
            ["BROKEN at event 7: event 7 has no link: it was inserted outside the chain"],
            id="inserted-outside-the-chain",
        ),
    ],
)
async def test_verify_names_where_the_owner_tampered(
    log_database: str, written: int, tampering: list[str], expected: list[str]
) -> None:
    await write_events(log_database, written)
    await as_owner(log_database, *tampering)
    verdict = await audit_verify(log_database)
    assert verdict.code == 1
    for phrase in expected:
        assert phrase in verdict.output


async def test_verify_finds_an_edit_whose_hash_was_recomputed(log_database: str) -> None:
    # The owner edits event 2 and gives it a matching hash: event 3 no longer follows it.
    await write_events(log_database, 5)
    engine = make_engine(log_database)
    async with engine.connect() as connection:
        row = (await connection.execute(select(events).where(events.c.id == 2))).mappings().one()
        link = (
            (await connection.execute(select(links).where(links.c.event_id == 2))).mappings().one()
        )
    await engine.dispose()
    forged = {**row, "detail": "nothing to see", "prev_hash": link["prev_hash"]}
    await as_owner(
        log_database,
        "UPDATE audit_events SET detail = 'nothing to see' WHERE id = 2",
        f"UPDATE audit_links SET hash = '{event_hash(forged)}' WHERE event_id = 2",
    )
    # A broken chain's verdict and exit code, from the command's entry point.
    verdict = await audit_process(log_database, "verify")
    assert verdict.code == 1
    assert "BROKEN at event 3: event 3 does not follow event 2" in verdict.output


async def owner_drops_the_newest_of_five(log_database: str) -> None:
    """The owner deletes event 5 with its link and moves the head back onto link 4: a
    chain that still holds, as it must for anyone who can rewrite all of it."""
    await as_owner(
        log_database,
        "DELETE FROM audit_events WHERE id = 5",
        "DELETE FROM audit_links WHERE event_id = 5",
        "UPDATE audit_chain_head SET last_position = 4, "
        "last_hash = (SELECT hash FROM audit_links WHERE position = 4)",
    )


async def test_a_recorded_head_hash_catches_the_owner_rewriting_the_end(
    log_database: str,
) -> None:
    await write_events(log_database, 5)
    first = await audit_verify(log_database)
    # The hash alone, without its position: it must be at some link.
    recorded = first.output.split("Head: ")[1].strip().split(":")[1]
    await owner_drops_the_newest_of_five(log_database)
    assert (await audit_verify(log_database)).code == 0
    verdict = await audit_verify(log_database, "--anchor", recorded)
    assert verdict.code == 1
    assert f"BROKEN: the recorded head hash {recorded} is in no event" in verdict.output


async def test_verify_of_a_database_without_the_log_says_so(tmp_path: Path) -> None:
    verdict = await audit_verify(f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}")
    assert verdict.code == 2
    assert "Cannot read the audit log (is the database migrated?)" in verdict.output
    assert "Traceback" not in verdict.output


async def test_concurrent_writers_and_linkers_make_one_chain(log_database: str) -> None:
    """Two processes' worth of engines writing and linking at once never fork the chain."""
    engines = [make_engine(log_database), make_engine(log_database)]

    async def one_event(engine: AsyncEngine, number: int) -> None:
        async with make_sessionmaker(engine)() as db:
            audit(db, PRACTICE, AuditAction.STAFF_LOG_IN, CLERK, detail=str(number))
            await db.commit()
        await link_pending(engine)

    await asyncio.gather(*(one_event(engines[n % 2], n) for n in range(24)))
    for engine in engines:
        await engine.dispose()
    verdict = await audit_verify(log_database)
    assert verdict.code == 0, verdict.output
    assert "Intact: 24 event(s), newest event 24." in verdict.output
    assert "Not linked yet" not in verdict.output


async def test_events_not_linked_yet_are_reported_and_then_linked(log_database: str) -> None:
    await write_events(log_database, 2)
    await write_events(log_database, 3, linked=False)
    verdict = await audit_verify(log_database)
    assert verdict.code == 0, verdict.output
    assert "Intact: 2 event(s), newest event 2." in verdict.output
    assert "Not linked yet: 3 newer event(s), the oldest from " in verdict.output
    # What every web and worker process runs: it links them within its period.
    engine = make_engine(log_database)
    try:
        async with keep_linking(engine, every=0.05):

            async def all_linked() -> bool:
                return (await audit_verify(log_database)).output.count("Not linked yet") == 0

            await eventually(all_linked, what="the linker linked the backlog")
    finally:
        await engine.dispose()
    verdict = await audit_verify(log_database)
    assert "Intact: 5 event(s), newest event 5." in verdict.output, verdict.output


async def test_an_event_deleted_before_it_was_linked_shows(log_database: str) -> None:
    await write_events(log_database, 2)
    await write_events(log_database, 1, linked=False)
    await as_owner(log_database, "DELETE FROM audit_events WHERE id = 3")
    verdict = await audit_verify(log_database)
    assert verdict.code == 1
    assert "BROKEN at event 3: event 3 was deleted before it was linked" in verdict.output


async def test_an_audited_action_does_not_wait_for_the_chains_lock(
    tmp_path: Path, migrated: MigratedTemplates
) -> None:
    """On PostgreSQL a request's event commits while the head row is locked: only the
    linker takes that lock (before, every audited transaction queued on it)."""
    async with migrated.new_database(
        "postgresql", tmp_path / "unused.db", "securemail_audit"
    ) as url:
        engine = make_engine(url)
        try:
            async with engine.connect() as linker:
                await linker.execute(text("SELECT * FROM audit_chain_head FOR UPDATE"))
                await asyncio.wait_for(write_events(url, 1, linked=False), timeout=10)
                await linker.rollback()
            await link_pending(engine)
        finally:
            await engine.dispose()
        assert "Intact: 1 event(s)" in (await audit_verify(url)).output


async def test_migration_chains_the_events_written_before_it(log_database: str) -> None:
    # A database that was at revision 0008 (no chain) with events in it, ids with a gap.
    await admin_reset(log_database)
    await asyncio.to_thread(upgrade, log_database, "0008")
    before_the_chain = table(
        "audit_events",
        *(column(name) for name in ("id", "practice_id", "action", "actor_type", "detail")),
        column("at", DateTime(timezone=True)),
    )
    engine = make_engine(log_database)
    async with engine.begin() as connection:
        await connection.execute(
            insert(before_the_chain),
            [
                {
                    "id": event_id,
                    "at": datetime(2026, 11, 30, 9, 0, event_id, 123456, tzinfo=UTC),
                    "practice_id": "p",
                    "action": "staff.log_in",
                    "actor_type": "staff",
                    "detail": f"old {event_id}",
                }
                for event_id in (1, 2, 5)
            ],
        )
    await engine.dispose()
    await upgrade_async(log_database)
    assert await write_events(log_database, 1) == [1, 2, 5, 6]
    verdict = await audit_verify(log_database)
    assert verdict.code == 0, verdict.output
    assert "Intact: 4 event(s), newest event 6." in verdict.output
    await as_owner(log_database, "DELETE FROM audit_events WHERE id = 2")
    verdict = await audit_verify(log_database)
    assert verdict.code == 1 and "BROKEN at event 2: event 2 was deleted" in verdict.output


async def admin_reset(url: str) -> None:
    """Back to an empty database, so an older revision can be built."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(str(parsed.database)).unlink()
        return
    await admin_execute(
        f'DROP DATABASE "{parsed.database}" WITH (FORCE)', f'CREATE DATABASE "{parsed.database}"'
    )


# The app's PostgreSQL role ---------------------------------------------------------------


@dataclass
class Deployment:
    owner_url: str
    app_url: str


@asynccontextmanager
async def new_deployment() -> AsyncIterator[Deployment]:
    """The roles and database docker-compose's PostgreSQL starts with, from its own script
    (names made unique, since the cluster is shared), migrated as ``securemail migrate``
    does in the ``migrate`` service."""
    suffix = uuid.uuid4().hex[:8]
    script = (ROOT / "deploy" / "postgres" / "init-databases.sh").read_text()
    script = script.replace("securemail", f"securemail_{suffix}").replace(
        "temporal", f"temporal_{suffix}"
    )
    admin = make_url(POSTGRES_ADMIN_DSN)
    env = {
        **os.environ,
        "POSTGRES_USER": admin.username or "postgres",
        "PGHOST": admin.host or "127.0.0.1",
        "PGPORT": str(admin.port or 5432),
        "TEMPORAL_DB_PASSWORD": "t",
        "SECUREMAIL_DB_PASSWORD": "app-password",
        "SECUREMAIL_OWNER_DB_PASSWORD": "owner-password",
    }
    done = await asyncio.to_thread(
        subprocess.run, ["sh", "-c", script], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    app_role, owner_role = f"securemail_{suffix}", f"securemail_{suffix}_owner"
    base = f"postgresql+asyncpg://{{}}@{env['PGHOST']}:{env['PGPORT']}/securemail_{suffix}"
    found = Deployment(owner_url=base.format(owner_role), app_url=base.format(app_role))
    try:
        await upgrade_async(found.owner_url, app_database_url=found.app_url)
        yield found
    finally:
        await admin_execute(
            *(
                f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
                for name in (
                    f"securemail_{suffix}",
                    f"temporal_{suffix}",
                    f"temporal_{suffix}_visibility",
                )
            ),
            *(
                f'DROP ROLE IF EXISTS "{role}"'
                for role in (app_role, owner_role, f"temporal_{suffix}")
            ),
        )


@pytest.fixture
async def deployment() -> AsyncIterator[Deployment]:
    async with new_deployment() as found:
        yield found


ERASURES = [
    "TRUNCATE audit_events",
    "TRUNCATE audit_events CASCADE",
    "DELETE FROM audit_events",
    "UPDATE audit_events SET detail = 'nothing happened'",
    "ALTER TABLE audit_events DISABLE TRIGGER ALL",
    "ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only",
    "DROP TRIGGER audit_events_append_only ON audit_events",
    "DROP TABLE audit_events",
    "ALTER TABLE audit_events RENAME TO old_audit_events",
    "DELETE FROM audit_links",
    "TRUNCATE audit_links",
    "DROP TRIGGER audit_links_fill_once ON audit_links",
    "DELETE FROM audit_chain_head",
    "TRUNCATE audit_chain_head",
    "INSERT INTO audit_chain_head (id, last_position, last_hash) VALUES (2, 0, 'x')",
    "DROP TABLE audit_chain_head",
    "CREATE TABLE audit_events_shadow (id integer)",
]


async def test_the_apps_role_cannot_erase_the_audit_log(deployment: Deployment) -> None:
    await write_events(deployment.app_url, 3)
    engine = make_engine(deployment.app_url)
    try:
        for statement in ERASURES:
            with pytest.raises(DBAPIError, match="permission denied|must be owner"):
                async with engine.begin() as connection:
                    await connection.execute(text(statement))
        # Its grant to fill links is held to filling an empty one, once, by the triggers.
        with pytest.raises(DBAPIError, match="append-only"):
            async with engine.begin() as connection:
                await connection.execute(text("UPDATE audit_links SET hash = 'x'"))
        # What it may do: read the log, and add to it, even by hand: the database writes
        # each event's empty link (migration 0033), so no insert goes past the chain.
        async with engine.begin() as connection:
            count = (await connection.execute(text("SELECT count(*) FROM audit_events"))).one()
            await connection.execute(
                text(
                    "INSERT INTO audit_events (id, at, practice_id, action, actor_type) "
                    "VALUES (1000, now(), 'p', 'staff.log_in', 'staff')"
                )
            )
    finally:
        await engine.dispose()
    assert count == (3,)
    # Verify, run as the app's role, sees it waiting for the linker, then chained.
    verdict = await audit_verify(deployment.app_url)
    assert verdict.code == 0 and "Not linked yet: 1 newer event(s)" in verdict.output
    await link(deployment.app_url)
    verdict = await audit_verify(deployment.app_url)
    assert verdict.code == 0 and "Intact: 4 event(s), newest event 1000." in verdict.output


async def test_the_owner_cannot_truncate_the_log_by_accident(deployment: Deployment) -> None:
    await write_events(deployment.owner_url, 1)
    engine = make_engine(deployment.owner_url)
    try:
        for statement in ("TRUNCATE audit_events", "DELETE FROM audit_events"):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as connection:
                    await connection.execute(text(statement))
    finally:
        await engine.dispose()
    assert (await audit_verify(deployment.app_url)).code == 0


async def test_the_app_runs_and_audits_as_its_restricted_role(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The web app as docker-compose runs it: app role (its start-up check reads the
    revision as that role), the office's normal work audited through the chain."""
    engine = make_engine(deployment.app_url)
    email = f"admin-{uuid.uuid4().hex[:8]}@smile-dental.example"
    async with make_sessionmaker(engine)() as db:
        practice = await create_practice(db, "Smile Dental", sender_address="o@smile.example")
        await create_staff_user(db, practice, email, STAFF_PASSWORD, role=StaffRole.ADMIN)
        await db.commit()
    await engine.dispose()
    settings = Settings(
        data_dir=tmp_path / "data",
        database_url=deployment.app_url,
        public_url="http://portal.test",
        **TEST_KEYS.settings_fields(),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with Browser(
            transport=httpx.ASGITransport(app=app, client=(some_client_address(), 50000)),
            base_url="http://portal.test",
        ) as browser:
            wrong = await browser.post("/login", data={"email": email, "password": "nope"})
            assert wrong.status_code in (400, 401, 403, 429), wrong.text
            signed_in = await browser.post(
                "/login", data={"email": email, "password": STAFF_PASSWORD}
            )
            assert signed_in.status_code == 303, signed_in.text
            page = await browser.get("/audit")
            assert page.status_code == 200
            # Each event's row: its phrase, its code kept in the cell's title.
            assert 'title="staff.log_in_failed">failed to log in<' in page.text
            assert 'title="staff.log_in">logged in<' in page.text
    verdict = await audit_verify(deployment.app_url)
    assert verdict.code == 0, verdict.output
    assert "Intact: " in verdict.output


async def test_migrations_again_keep_the_app_role_in_its_place(deployment: Deployment) -> None:
    # Every `securemail migrate` grants again; it must never widen the audit log's grants.
    await upgrade_async(deployment.owner_url, app_database_url=deployment.app_url)
    granted = await raw_rows(
        deployment.owner_url,
        "SELECT table_name, privilege_type FROM information_schema.role_table_grants "
        "WHERE grantee = :role AND table_name IN "
        "('audit_events', 'audit_links', 'audit_chain_head')",
        role=make_url(deployment.app_url).username,
    )
    assert sorted(granted) == [
        ("audit_chain_head", "SELECT"),
        ("audit_chain_head", "UPDATE"),
        ("audit_events", "INSERT"),
        ("audit_events", "SELECT"),
        ("audit_links", "INSERT"),
        ("audit_links", "SELECT"),
        ("audit_links", "UPDATE"),
    ]


# The chain the app's role cannot bend ----------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def roles(
    request: pytest.FixtureRequest, tmp_path: Path, migrated: MigratedTemplates
) -> AsyncIterator[Deployment]:
    """The app's URL and the owner's: on PostgreSQL a deployment's two roles; SQLite has
    no roles, so there both are the file."""
    if request.param == "sqlite":
        async with migrated.new_database("sqlite", tmp_path / "audit.db", "unused") as url:
            yield Deployment(owner_url=url, app_url=url)
        return
    async with new_deployment() as found:
        yield found


async def as_app(url: str, *statements: str | Executable) -> None:
    """Statements in one transaction, as whoever ``url`` names (the app's role)."""
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(
                    text(statement) if isinstance(statement, str) else statement
                )
    finally:
        await engine.dispose()


async def add_event(url: str, at: datetime) -> int:
    """An event dated ``at``, as the app's role may insert them (the database writes its
    empty link: migration 0033's trigger)."""
    engine = make_engine(url)
    try:
        async with engine.begin() as connection:
            event_id: int | None = await connection.scalar(
                insert(events)
                .values(at=at, practice_id=PRACTICE, action="staff.log_in", actor_type="staff")
                .returning(events.c.id)
            )
            assert event_id is not None
    finally:
        await engine.dispose()
    return event_id


async def link(url: str) -> None:
    engine = make_engine(url)
    try:
        await link_pending(engine)
    finally:
        await engine.dispose()


NOT_NEXT = "an audit link must come next after the chain's head"
FORGED = "f" * 64


@pytest.mark.parametrize(
    ("position", "prev_hash"),
    [
        pytest.param("-1", f"'{GENESIS}'", id="before-the-start"),
        pytest.param("0", f"'{GENESIS}'", id="at-zero"),
        pytest.param("4", "(SELECT hash FROM audit_links WHERE position = 2)", id="past-the-next"),
        pytest.param("1000000", "'x'", id="far-past-the-next"),
        pytest.param("3", f"'{GENESIS}'", id="next-after-the-wrong-link"),
    ],
)
async def test_the_apps_role_cannot_fill_a_link_out_of_turn(
    roles: Deployment, position: str, prev_hash: str
) -> None:
    await write_events(roles.app_url, 2)
    await write_events(roles.app_url, 1, linked=False)
    with pytest.raises(DBAPIError, match=NOT_NEXT):
        await as_app(
            roles.app_url,
            f"UPDATE audit_links SET position = {position}, prev_hash = {prev_hash}, "
            f"hash = '{FORGED}' WHERE event_id = 3 AND position IS NULL",
        )
    # The event stays in the linker's hands, which puts it next.
    await link(roles.app_url)
    verdict = await audit_verify(roles.app_url)
    assert verdict.code == 0, verdict.output
    assert "Intact: 3 event(s), newest event 3." in verdict.output


async def test_the_apps_role_cannot_insert_a_filled_link(roles: Deployment) -> None:
    await write_events(roles.app_url, 2)
    with pytest.raises(DBAPIError, match="an audit link is written empty"):
        await as_app(
            roles.app_url,
            insert(events).values(
                id=50,
                at=datetime.now(UTC),
                practice_id=PRACTICE,
                action="staff.log_in",
                actor_type="staff",
            ),
            insert(links).values(event_id=50, position=-1, prev_hash=GENESIS, hash=FORGED),
        )
    assert (await audit_verify(roles.app_url)).code == 0


HEAD_MOVES = [
    "UPDATE audit_chain_head SET last_position = 10",
    "UPDATE audit_chain_head SET last_position = last_position + 1",
    "UPDATE audit_chain_head SET last_position = 1, "
    "last_hash = (SELECT hash FROM audit_links WHERE position = 1)",
    f"UPDATE audit_chain_head SET last_hash = '{FORGED}'",
    "UPDATE audit_chain_head SET id = 2",
]


async def test_the_apps_role_cannot_move_the_chains_head(roles: Deployment) -> None:
    await write_events(roles.app_url, 3)
    for statement in HEAD_MOVES:
        with pytest.raises(DBAPIError, match="the audit chain's head moves only with its links"):
            await as_app(roles.app_url, statement)
    # What the linker does to take its turn is still allowed.
    await as_app(roles.app_url, "UPDATE audit_chain_head SET last_position = last_position")
    await write_events(roles.app_url, 1)
    verdict = await audit_verify(roles.app_url)
    assert verdict.code == 0, verdict.output
    assert "Intact: 4 event(s), newest event 4." in verdict.output


@pytest.mark.parametrize(
    ("tampering", "expected", "not_said"),
    [
        pytest.param(
            "UPDATE audit_chain_head SET last_position = 9",
            "the head row names link 9, past the last link 5 (event 5)",
            "linked outside the chain",
            id="ahead",
        ),
        pytest.param(
            "UPDATE audit_chain_head SET last_position = 2, "
            "last_hash = (SELECT hash FROM audit_links WHERE position = 2)",
            "the chain goes on past its head row (link 2) to link 5 (event 5): "
            "the head row was moved back",
            "linked outside the chain",
            id="behind",
        ),
        pytest.param(
            f"UPDATE audit_chain_head SET last_hash = '{FORGED}'",
            "the head row names link 5 (event 5) but not its hash: the head row was changed",
            "deleted",
            id="other-hash",
        ),
    ],
)
async def test_a_head_row_the_owner_moved_is_named_as_such(
    log_database: str, tampering: str, expected: str, not_said: str
) -> None:
    await write_events(log_database, 5)
    await as_owner(log_database, tampering)
    verdict = await audit_verify(log_database)
    assert verdict.code == 1
    assert expected in verdict.output, verdict.output
    assert not_said not in verdict.output


async def test_a_link_the_owner_took_out_of_the_chain_shows(log_database: str) -> None:
    # What the app's role could do before its fills were held to the chain's head.
    await write_events(log_database, 5)
    await as_owner(
        log_database,
        "UPDATE audit_links SET position = -1 WHERE event_id = 5",
        "UPDATE audit_chain_head SET last_position = 4, "
        "last_hash = (SELECT hash FROM audit_links WHERE position = 4)",
    )
    verdict = await audit_verify(log_database)
    assert verdict.code == 1
    assert "BROKEN at event 5: event 5 is at link -1, before the chain's start" in verdict.output


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        pytest.param(
            datetime(2020, 1, 1, 9, tzinfo=UTC),
            "BROKEN at event 3: event 3 is dated 2020-01-01 09:00:00 UTC, ",
            id="years-back",
        ),
        pytest.param(
            timedelta(minutes=30),
            "BROKEN at event 3: event 3 is dated ",
            id="half-an-hour-back",
        ),
        pytest.param(timedelta(days=-2), "BROKEN at event 3: event 3 is dated ", id="ahead"),
        pytest.param(timedelta(seconds=20), None, id="a-slow-commit"),
    ],
)
async def test_a_back_dated_event_shows(
    roles: Deployment, age: datetime | timedelta, expected: str | None
) -> None:
    """The app's role inserts an event with a time of its choosing (a date, or this long
    ago), and the linker chains it like any other."""
    await write_events(roles.app_url, 2)
    at = age if isinstance(age, datetime) else datetime.now(UTC) - age
    assert await add_event(roles.app_url, at) == 3
    await link(roles.app_url)
    await write_events(roles.app_url, 1)
    verdict = await audit_verify(roles.app_url)
    if expected is None:
        # Writers commit a little out of order: that is no tampering.
        assert verdict.code == 0, verdict.output
        return
    assert verdict.code == 1, verdict.output
    assert expected in verdict.output, verdict.output


async def test_an_event_left_unlinked_past_the_linkers_lag_shows(roles: Deployment) -> None:
    await write_events(roles.app_url, 2)
    await add_event(roles.app_url, datetime.now(UTC) - LINK_LAG - timedelta(minutes=1))
    verdict = await audit_verify(roles.app_url)
    assert verdict.code == 1, verdict.output
    assert "BROKEN at event 3: event 3 is not linked " in verdict.output, verdict.output


def rewritten(rows: list[dict[str, object]], event_id: int, detail: str) -> list[str]:
    """What the database's owner runs to edit one event and recompute every later link,
    so that the chain alone still holds."""
    statements = [f"UPDATE audit_events SET detail = '{detail}' WHERE id = {event_id}"]
    previous = GENESIS
    for row in rows:
        if row["id"] == event_id:
            row = {**row, "detail": detail}
        digest = event_hash({**row, "prev_hash": previous})
        statements.append(
            f"UPDATE audit_links SET prev_hash = '{previous}', hash = '{digest}' "
            f"WHERE event_id = {row['id']}"
        )
        previous = digest
    statements.append(f"UPDATE audit_chain_head SET last_hash = '{previous}'")
    return statements


async def test_an_anchor_holds_even_the_owner_to_the_log(roles: Deployment) -> None:
    await write_events(roles.app_url, 5)
    taken = await audit_command(roles.app_url, "anchor")
    assert taken.code == 0, taken.output
    anchor = taken.output.strip()
    assert re.fullmatch(r"5:[0-9a-f]{64}", anchor), anchor
    assert (await audit_verify(roles.app_url, "--anchor", anchor)).code == 0
    engine = make_engine(roles.owner_url)
    async with engine.connect() as connection:
        rows = [
            dict(row)
            for row in (await connection.execute(select(events).order_by(events.c.id))).mappings()
        ]
    await engine.dispose()
    await as_owner(roles.owner_url, *rewritten(rows, 2, "nothing to see"))
    assert (await audit_verify(roles.app_url)).code == 0
    verdict = await audit_verify(roles.app_url, "--anchor", anchor)
    assert verdict.code == 1
    assert (
        f"BROKEN at event 5: link 5 (event 5) no longer has the hash of the anchor {anchor}: "
        "the log was rewritten at or before it"
    ) in verdict.output, verdict.output


async def test_an_anchor_past_the_end_of_the_chain_shows(log_database: str) -> None:
    await write_events(log_database, 5)
    anchor = (await audit_command(log_database, "anchor")).output.strip()
    await owner_drops_the_newest_of_five(log_database)
    assert (await audit_verify(log_database)).code == 0
    verdict = await audit_verify(log_database, "--anchor", anchor)
    assert verdict.code == 1
    assert (
        f"BROKEN: the anchor {anchor} names link 5, past the chain's last link 4" in verdict.output
    ), verdict.output


async def test_verify_prints_the_head_as_an_anchor(log_database: str) -> None:
    await write_events(log_database, 3)
    anchor = (await audit_command(log_database, "anchor")).output.strip()
    verdict = await audit_verify(log_database)
    assert f"Head: {anchor}" in verdict.output, verdict.output


@pytest.mark.parametrize(
    "anchor",
    [
        "nonsense",
        "5:",
        ":" + "a" * 64,
        "five:" + "a" * 64,
        "5:" + "g" * 64,
        "5:abc",
        "-1:" + "a" * 64,
    ],
)
def test_a_malformed_anchor_is_refused_plainly(anchor: str) -> None:
    with pytest.raises(MalformedAnchor, match="expected POSITION:HASH"):
        Anchor.parse(anchor)


async def test_the_command_refuses_a_malformed_anchor_before_reading_the_log(
    tmp_path: Path,
) -> None:
    # No database at all: the anchor is refused before anything is read.
    url = f"sqlite+aiosqlite:///{tmp_path / 'no-such.db'}"
    verdict = await audit_verify(url, "--anchor", "5:abc")
    assert verdict.code == 2, verdict.output
    assert "POSITION:HASH" in verdict.output, verdict.output
    assert "Traceback" not in verdict.output


async def test_the_database_and_the_linker_hash_alike(roles: Deployment) -> None:
    """PostgreSQL recomputes each link's hash as the app's role fills it: awkward content
    must hash the same in both."""
    engine = make_engine(roles.app_url)
    try:
        async with make_sessionmaker(engine)() as db:
            for detail in ('quote " back \\ slash', "line\nbreak\ttab\x01\x1f\x7f", "é € 😀", None):
                audit(db, PRACTICE, AuditAction.OFFICE_VIEW, Actor(ActorType.SYSTEM), detail=detail)
            await db.commit()
        assert await link_pending(engine) == 4
    finally:
        await engine.dispose()
    verdict = await audit_verify(roles.app_url)
    assert verdict.code == 0, verdict.output


async def test_the_apps_role_cannot_fill_a_link_with_a_forged_hash(
    deployment: Deployment,
) -> None:
    """A compromised process filling an empty link in its turn, before the linker does,
    must still give it its event's hash: PostgreSQL computes it too."""
    await write_events(deployment.app_url, 2)
    await write_events(deployment.app_url, 1, linked=False)
    with pytest.raises(DBAPIError, match="an audit link's hash must match its event"):
        await as_app(
            deployment.app_url,
            f"UPDATE audit_links SET position = 3, hash = '{FORGED}', prev_hash = "
            "(SELECT hash FROM audit_links WHERE position = 2) WHERE event_id = 3",
        )
    await link(deployment.app_url)
    assert "Intact: 3 event(s)" in (await audit_verify(deployment.app_url)).output


async def test_a_forged_hash_the_owner_gave_a_link_shows(log_database: str) -> None:
    # SQLite computes no hashes in its triggers, and the owner passes them: verify names it.
    await write_events(log_database, 3)
    await as_owner(log_database, f"UPDATE audit_links SET hash = '{FORGED}' WHERE event_id = 3")
    verdict = await audit_verify(log_database)
    assert verdict.code == 1
    assert "BROKEN at event 3" in verdict.output, verdict.output


# docker-compose ----------------------------------------------------------------------------


def test_only_the_migrate_service_holds_the_owners_password() -> None:
    migrate = environment("migrate")
    owner = make_url(migrate["SECURE_EMAIL_MIGRATION_DATABASE_URL"])
    app = make_url(migrate["SECURE_EMAIL_DATABASE_URL"])
    assert owner.username == "securemail_owner" and app.username == "securemail"
    owner_password = env_example()["SECUREMAIL_OWNER_DB_PASSWORD"]
    assert owner.password == owner_password
    for service in ("web", "worker"):
        settings = environment(service)
        assert "SECURE_EMAIL_MIGRATION_DATABASE_URL" not in settings, service
        assert owner_password not in str(settings), service
        assert make_url(settings["SECURE_EMAIL_DATABASE_URL"]).username == "securemail"
