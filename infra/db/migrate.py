"""Apply the Alembic migrations shipped in ``infra/migrations`` to a database URL.

``migrate`` is what ``securemail migrate`` runs, and the only thing that migrates: the
web app and the admin commands never do (replicas starting together would race), they
call ``require_migrated`` and refuse to start on a database that is behind.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    from infra.settings import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

log = logging.getLogger(__name__)


class DatabaseNotMigrated(RuntimeError):
    """The database is empty or behind this release's migrations."""


def migrate(settings: Settings) -> None:
    """``securemail migrate``: upgrade to head as the tables' owner
    (``migration_database_url``), then grant the app's role (``database_url``) its rights.

    Field encryption is configured for the migration from the same settings as the app
    (a migration that re-encrypts rows, 0010, seals them under the app's key ring), and
    what the process had configured before is put back afterwards."""
    from infra.crypto.fields import (
        FieldEncryptionNotConfigured,
        configure_field_encryption,
        configured_keys,
    )
    from infra.crypto.keys import encryption_keys

    try:
        previous = configured_keys()
    except FieldEncryptionNotConfigured:
        previous = None
    configure_field_encryption(encryption_keys(settings))
    try:
        upgrade(settings.migration_database_url, app_database_url=settings.database_url)
    finally:
        configure_field_encryption(previous)


async def migrate_async(settings: Settings) -> None:
    # Alembic's env.py runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(migrate, settings)


def head_revisions() -> frozenset[str]:
    script = ScriptDirectory.from_config(alembic_config(""))
    return frozenset(script.get_heads())


async def require_migrated(engine: AsyncEngine) -> None:
    """Raise ``DatabaseNotMigrated``, naming ``securemail migrate``, unless the database
    is at this release's head. A revision this release does not know (a newer release
    migrated) is logged and allowed: migrations add before they remove."""

    def current(connection: Connection) -> frozenset[str]:
        return frozenset(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as connection:
        at = await connection.run_sync(current)
    heads = head_revisions()
    if at == heads:
        return
    script = ScriptDirectory.from_config(alembic_config(""))
    known = {revision.revision for revision in script.walk_revisions()}
    if at and not at <= known:
        log.warning(
            "the database is at revision %s, newer than this release's %s",
            ", ".join(sorted(at)),
            ", ".join(sorted(heads)),
        )
        return
    where = f"at revision {', '.join(sorted(at))}" if at else "empty (no migrations applied)"
    raise DatabaseNotMigrated(
        f"The database is not migrated: it is {where}, this release needs "
        f"{', '.join(sorted(heads))}. Run `securemail migrate` first (it connects as "
        "SECURE_EMAIL_MIGRATION_DATABASE_URL, the tables' owner); nothing else migrates."
    )


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
        # Which revision the database is at: read by the app's start-up check.
        f"REVOKE ALL ON alembic_version FROM {role}",
        f"GRANT SELECT ON alembic_version TO {role}",
        f"REVOKE ALL ON audit_events FROM {role}, PUBLIC",
        f"GRANT SELECT, INSERT ON audit_events TO {role}",
        # Each event's link: written empty with it, filled once by the linker (the
        # triggers refuse any other UPDATE, and every DELETE).
        f"REVOKE ALL ON audit_links FROM {role}, PUBLIC",
        f"GRANT SELECT, INSERT, UPDATE ON audit_links TO {role}",
        # The linker takes its turn by writing the head unchanged, and each link it fills
        # moves the head (a trigger, run as this role); triggers refuse any other change.
        # Removing the row would stop the chain.
        f"REVOKE ALL ON audit_chain_head FROM {role}, PUBLIC",
        f"GRANT SELECT, UPDATE ON audit_chain_head TO {role}",
    ]


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


async def upgrade_async(database_url: str, *, app_database_url: str | None = None) -> None:
    # Alembic's env.py runs its own event loop, so it gets a thread of its own.
    await asyncio.to_thread(upgrade, database_url, app_database_url=app_database_url)
