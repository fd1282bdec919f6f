"""A consistent copy of the database, and putting one back.

PostgreSQL: ``pg_dump --format=custom`` under a snapshot the backup exports, so the
counts, the audit chain's head and the schema revision in the manifest describe exactly
the rows in the dump; ``pg_restore`` puts it back as the tables' owner
(``SECURE_EMAIL_MIGRATION_DATABASE_URL``), then the app's role gets its rights again.
SQLite (development): the online backup API copies a consistent file while the
deployment runs; the manifest is read from that copy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from infra.audit_chain import GENESIS, Anchor, links
from infra.db.models import Base

SQLITE_FILE = "database.sqlite3"
POSTGRES_FILE = "database.pgdump"
# Tables the product's data lives in, and the migrations' own.
TABLES = [*sorted(Base.metadata.tables), "alembic_version"]
# What decides "empty": a deployment with none of these has no data to lose.
DATA_TABLES = ("practices", "staff_users", "patients", "secure_emails", "audit_events")


class DatabaseToolMissing(RuntimeError):
    """``pg_dump`` or ``pg_restore`` is not installed (Debian: postgresql-client)."""


class DatabaseCopyFailed(RuntimeError):
    """``pg_dump`` or ``pg_restore`` exited with an error (its message is kept)."""


@dataclass(frozen=True)
class DatabaseFacts:
    """What the manifest says of the copied database, under the manifest's names."""

    database: str  # "sqlite" or "postgresql"
    database_file: str
    counts: dict[str, int]
    audit_head: str
    schema_revision: list[str]


def kind_of(url: str) -> str:
    return "postgresql" if make_url(url).get_backend_name() == "postgresql" else "sqlite"


def sqlite_path(url: str) -> Path:
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("the SQLite database must be a file to back up or restore")
    return Path(database)


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """A libpq connection string without the password, and the environment that
    carries it (a password in argv is visible to every user of the machine)."""
    parsed = make_url(url)
    environment = dict(os.environ)
    if parsed.password is not None:
        environment["PGPASSWORD"] = str(parsed.password)
    plain = parsed.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), environment


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise DatabaseToolMissing(
            f"{name} is not installed: install PostgreSQL's client tools "
            "(Debian: apt-get install postgresql-client), the same major version as the server"
        )
    return found


async def _run(*argv: str, environment: dict[str, str]) -> None:
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    _, errors = await process.communicate()
    if process.returncode != 0:
        name = Path(argv[0]).name
        raise DatabaseCopyFailed(f"{name} failed: {errors.decode(errors='replace').strip()}")


def _facts(connection: Connection, kind: str, file: str) -> DatabaseFacts:
    present = set(connection.dialect.get_table_names(connection))
    counts = {
        table: int(connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())
        for table in TABLES
        if table in present
    }
    newest = connection.execute(
        select(links.c.position, links.c.hash)
        .where(links.c.position.is_not(None))
        .order_by(links.c.position.desc())
        .limit(1)
    ).one_or_none()
    head = Anchor(0, GENESIS) if newest is None else Anchor(int(newest[0]), str(newest[1]))
    revision = sorted(
        str(row[0]) for row in connection.execute(text("SELECT version_num FROM alembic_version"))
    )
    return DatabaseFacts(kind, file, counts, str(head), revision)


async def back_up(engine: AsyncEngine, owner_url: str, directory: Path) -> DatabaseFacts:
    """Copies the database into ``directory``; what was copied, as the manifest says it."""
    if kind_of(owner_url) == "postgresql":
        return await _back_up_postgres(engine, owner_url, directory)
    source = sqlite_path(owner_url)
    target = directory / SQLITE_FILE
    await asyncio.to_thread(_sqlite_copy, source, target)
    # Read from the copy itself: it is what a restore brings back.
    return await asyncio.to_thread(_sqlite_facts, target)


def _sqlite_copy(source: Path, target: Path) -> None:
    if not source.exists():
        raise FileNotFoundError(f"no SQLite database at {source}")
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy:
        origin.backup(copy)
    origin.close()
    copy.close()


def _sqlite_facts(path: Path) -> DatabaseFacts:
    from sqlalchemy import create_engine

    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            return _facts(connection, "sqlite", path.name)
    finally:
        engine.dispose()


async def _back_up_postgres(engine: AsyncEngine, owner_url: str, directory: Path) -> DatabaseFacts:
    pg_dump = _tool("pg_dump")
    target = directory / POSTGRES_FILE
    dsn, environment = _libpq(owner_url)
    async with engine.connect() as connection:
        repeatable = await connection.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
        # The snapshot this transaction sees: pg_dump copies exactly these rows.
        snapshot = (await repeatable.execute(text("SELECT pg_export_snapshot()"))).scalar_one()
        facts = await repeatable.run_sync(_facts, "postgresql", target.name)
        await _run(
            pg_dump,
            "--format=custom",
            f"--snapshot={snapshot}",
            f"--file={target}",
            f"--dbname={dsn}",
            environment=environment,
        )
        await repeatable.rollback()
    return facts


async def data_rows(connection: AsyncConnection) -> dict[str, int]:
    """Rows in the tables that hold a deployment's data (those present)."""

    def count(sync: Connection) -> dict[str, int]:
        present = set(sync.dialect.get_table_names(sync))
        return {
            table: int(sync.execute(text(f'SELECT count(*) FROM "{table}"')).scalar_one())
            for table in DATA_TABLES
            if table in present
        }

    return await connection.run_sync(count)


async def counts_of(engine: AsyncEngine) -> dict[str, int]:
    """Rows per table, as ``back_up`` counted them: checked after a restore."""
    async with engine.connect() as connection:

        def count(sync: Connection) -> dict[str, Any]:
            return _facts(sync, "", "").counts

        return await connection.run_sync(count)


async def restore(owner_url: str, app_url: str, directory: Path, kind: str) -> None:
    """Puts the copy in ``directory`` back; the database must hold no data."""
    if kind != kind_of(owner_url):
        raise DatabaseCopyFailed(
            f"this backup is of a {kind} database and SECURE_EMAIL_DATABASE_URL names a "
            f"{kind_of(owner_url)} one: restore into the same kind"
        )
    if kind == "sqlite":
        await asyncio.to_thread(_sqlite_restore, directory / SQLITE_FILE, sqlite_path(owner_url))
        return
    pg_restore = _tool("pg_restore")
    dsn, environment = _libpq(owner_url)
    await _run(
        pg_restore,
        # Whatever an empty, migrated database holds goes first (no rows: checked).
        "--clean",
        "--if-exists",
        # The restoring role owns the tables; the app's role gets its rights below.
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        f"--dbname={dsn}",
        str(directory / POSTGRES_FILE),
        environment=environment,
    )
    from infra.db.migrate import grant_app_role

    await grant_app_role(owner_url, app_url)


def _sqlite_restore(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as copy, sqlite3.connect(target) as restored:
        copy.backup(restored)
    copy.close()
    restored.close()
