"""Apply the Alembic migrations shipped in ``infra/migrations`` to a database URL."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = database_url
    return config


def _ensure_sqlite_dir(database_url: str) -> None:
    if database_url.startswith("sqlite") and ":///" in database_url:
        path = database_url.split(":///", 1)[1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)


def upgrade(
    database_url: str, revision: str = "head", *, app_database_url: str | None = None
) -> None:
    """Migrates as ``database_url``'s role; on PostgreSQL, when the app connects as
    another role (``app_database_url``), grants that role what it needs and no more."""
    _ensure_sqlite_dir(database_url)
    command.upgrade(alembic_config(database_url), revision)
    if app_database_url:
        asyncio.run(grant_app_role(database_url, app_database_url))


async def grant_app_role(owner_url: str, app_url: str) -> None:
    """The app's role reads and writes the practice's tables, but only inserts into and
    reads the audit log (R13): no UPDATE, DELETE or TRUNCATE, and it owns nothing, so
    it cannot ALTER TABLE ... DISABLE TRIGGER or DROP. Run after every migration, so
    tables a later migration adds are covered too."""
    owner, app = make_url(owner_url), make_url(app_url)
    if owner.get_backend_name() != "postgresql" or not app.username:
        return
    if (owner.username, owner.host, owner.port, owner.database) == (
        app.username,
        app.host,
        app.port,
        app.database,
    ):
        return
    from infra.db.engine import make_engine

    engine = make_engine(owner_url)
    try:
        async with engine.begin() as connection:
            role = connection.dialect.identifier_preparer.quote(app.username)
            for statement in _grants(role):
                await connection.exec_driver_sql(statement)
    finally:
        await engine.dispose()


def _grants(role: str) -> list[str]:
    return [
        f"GRANT USAGE ON SCHEMA public TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
        # Which revision the database is at: read by the app's start-up migration.
        f"REVOKE ALL ON alembic_version FROM {role}",
        f"GRANT SELECT ON alembic_version TO {role}",
        f"REVOKE ALL ON audit_events FROM {role}, PUBLIC",
        f"GRANT SELECT, INSERT ON audit_events TO {role}",
        # Each insert moves the head; removing it would stop every audited action.
        f"REVOKE ALL ON audit_chain_head FROM {role}, PUBLIC",
        f"GRANT SELECT, UPDATE ON audit_chain_head TO {role}",
    ]


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, *, app_database_url: str | None = None) -> None:
    # Alembic's env.py runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(upgrade, database_url, app_database_url=app_database_url)
