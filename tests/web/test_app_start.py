"""Only ``securemail migrate`` migrates: the web app refuses a database that is behind."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from infra.crypto.keys import keyset_environment
from infra.db.migrate import DatabaseNotMigrated, head_revisions, upgrade
from infra.settings import Settings, get_settings
from tests.conftest import TEST_KEYS
from web.app import create_app
from workers.cli import app as cli


def sqlite_settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        **TEST_KEYS.settings_fields(),
    )


async def test_app_refuses_to_start_on_an_empty_database(tmp_path: Path) -> None:
    app = create_app(sqlite_settings(tmp_path))
    with pytest.raises(DatabaseNotMigrated, match="securemail migrate") as refused:
        async with app.router.lifespan_context(app):
            pass
    assert "empty (no migrations applied)" in str(refused.value)
    # It looked, and created nothing.
    with closing(sqlite3.connect(tmp_path / "app.db")) as database:
        assert database.execute("SELECT name FROM sqlite_master").fetchall() == []


async def test_app_refuses_to_start_on_a_database_behind(tmp_path: Path) -> None:
    settings = sqlite_settings(tmp_path)
    await asyncio.to_thread(upgrade, settings.database_url, "0009")
    app = create_app(settings)
    with pytest.raises(DatabaseNotMigrated, match="at revision 0009") as refused:
        async with app.router.lifespan_context(app):
            pass
    message = str(refused.value)
    assert "securemail migrate" in message
    assert all(head in message for head in head_revisions())


async def test_app_starts_after_securemail_migrate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = sqlite_settings(tmp_path)
    monkeypatch.setenv("SECURE_EMAIL_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("SECURE_EMAIL_DATABASE_URL", settings.database_url)
    for variable, keyset in keyset_environment(TEST_KEYS.settings_fields()).items():
        monkeypatch.setenv(variable, keyset)
    get_settings.cache_clear()
    try:
        # A thread: alembic runs an event loop of its own, as in the real command.
        result = await asyncio.to_thread(CliRunner().invoke, cli, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        assert app.state.app_state.settings is settings
