"""What backup and restore refuse, and say why: a restore into a deployment with data, a
backup whose objects are missing or changed, keys that are not configured; keys in a
backup only in development, and then they make a new deployment's keys."""

from __future__ import annotations

import json
import stat
import uuid
from pathlib import Path

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner, Result

from infra.backup import BackupRefused, Manifest, RestoreFailed, back_up, data_held, restore
from infra.crypto.keys import portal_keys
from infra.db.migrate import upgrade_async
from infra.settings import Settings
from tests.fixtures.postgres import new_database
from tests.fixtures.s3 import S3Server
from tests.fixtures.stack import Stack, own_settings
from tests.web.test_portal import send
from workers import cli


def kind_of(stack: Stack) -> str:
    return "postgresql" if stack.settings.database_url.startswith("postgresql") else "sqlite"


def empty_deployment(
    stack: Stack, s3_server: S3Server, tmp_path: Path, name: str, url: str | None = None
) -> Settings:
    """A new database (a SQLite file unless ``url``) and a new bucket, the stack's keys."""
    url = url or f"sqlite+aiosqlite:///{tmp_path / f'{name}.db'}"
    return stack.settings.model_copy(
        update={
            "database_url": url,
            "migration_database_url": url,
            **s3_server.connection(f"{name}-{uuid.uuid4().hex[:12]}"),
            "data_dir": tmp_path / f"{name}-data",
            **portal_keys(stack.settings).settings_fields(),
        }
    )


async def test_restore_refuses_data_missing_or_changed_objects_and_missing_keys(
    stack: Stack, s3_server: S3Server, tmp_path: Path
) -> None:
    await send(stack)
    directory = tmp_path / "backup"
    manifest = await back_up(stack.settings, directory)

    with pytest.raises(BackupRefused, match="is not empty: back up into a new directory"):
        await back_up(stack.settings, directory)

    # Into the deployment it came from: it has data; the refusal says how to start empty.
    with pytest.raises(BackupRefused, match=r"not empty \(\d+ row\(s\) in practices") as refused:
        await restore(stack.settings, directory)
    assert "a new database" in str(refused.value) and "a new bucket" in str(refused.value)

    # Into a database of another kind: refused before anything is read or written.
    other = (
        f"sqlite+aiosqlite:///{tmp_path / 'other.db'}"
        if kind_of(stack) == "postgresql"
        else "postgresql+asyncpg://nobody@127.0.0.1:1/nothing"
    )
    with pytest.raises(BackupRefused, match="restore into a database of the same kind"):
        await restore(empty_deployment(stack, s3_server, tmp_path, "other", other), directory)
    assert not (tmp_path / "other.db").exists()

    async with new_database(kind_of(stack), tmp_path / "target.db", "securemail_target") as url:
        await refused_then_restored(stack, s3_server, tmp_path, directory, manifest, url)


async def refused_then_restored(
    stack: Stack,
    s3_server: S3Server,
    tmp_path: Path,
    directory: Path,
    manifest: Manifest,
    url: str,
) -> None:
    (entry,) = [e for e in manifest.objects if e.key.startswith("secure-emails/")][:1]
    # A changed object, then a missing one: named, and nothing restored.
    stored = directory / "objects" / entry.key
    original = stored.read_bytes()
    stored.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
    target = empty_deployment(stack, s3_server, tmp_path, "changed", url)
    with pytest.raises(RestoreFailed) as failed:
        await restore(target, directory)
    assert failed.value.problems == [
        f"{entry.key}: changed since the backup (size or SHA-256 differs)"
    ]
    stored.unlink()
    with pytest.raises(RestoreFailed) as failed:
        await restore(target, directory)
    assert failed.value.problems == [f"{entry.key}: missing from the backup"]
    assert await data_held(target) == []

    # The keys the backup needs, not configured on the new machine: named, nothing done.
    stored.write_bytes(original)
    keyless = target.model_copy(
        update={"portal_keyset": SecretStr(""), "data_dir": tmp_path / "keyless-data"}
    )
    with pytest.raises(BackupRefused, match="SECURE_EMAIL_PORTAL_KEYSET lacks key id"):
        await restore(keyless, directory)
    assert await data_held(keyless) == []

    # As it was: it restores, into a database migrated meanwhile (empty all the same).
    await upgrade_async(url)
    assert await data_held(target) == []
    restored = await restore(target, directory)
    assert restored.counts == manifest.counts
    assert await data_held(target)


async def test_keys_in_a_backup_for_development_only(
    stack: Stack, s3_server: S3Server, tmp_path: Path
) -> None:
    production = stack.settings.model_copy(update={"environment": "production"})
    with pytest.raises(BackupRefused, match="--include-keys is for development only"):
        await back_up(production, tmp_path / "refused", include_keys=True)
    assert not (tmp_path / "refused").exists()

    directory = tmp_path / "with-keys"
    manifest = await back_up(stack.settings, directory, include_keys=True)
    assert manifest.keys_included
    keys = directory / "keys.json"
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert set(json.loads(keys.read_text())) == {
        "encryption_keyset",
        "object_keyset",
        "portal_keyset",
    }
    # A new development machine with no keys of its own takes the backup's.
    async with new_database(kind_of(stack), tmp_path / "dev.db", "securemail_dev") as url:
        target = empty_deployment(stack, s3_server, tmp_path, "dev", url).model_copy(
            update={"portal_keyset": SecretStr("")}
        )
        await restore(target, directory)
        assert portal_keys(target).ids == portal_keys(stack.settings).ids


def run_cli(monkeypatch: pytest.MonkeyPatch, settings: Settings, *args: str) -> Result:
    """``securemail ARGS`` with ``settings`` in place of the environment's."""
    monkeypatch.setattr(cli, "get_settings", lambda: settings)
    return CliRunner().invoke(cli.app, list(args))


def test_cli_backup_refuses_include_keys_in_production(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = own_settings(tmp_path).model_copy(update={"environment": "production"})
    result = run_cli(monkeypatch, settings, "backup", str(tmp_path / "b"), "--include-keys")
    assert result.exit_code == 1
    assert "--include-keys is for development only" in result.output
    assert "WARNING" not in result.output
    assert not (tmp_path / "b").exists()


def directory_in_use(tmp_path: Path) -> Path:
    """A directory that already holds someone's file: neither empty nor a backup."""
    used = tmp_path / "used"
    used.mkdir()
    (used / "notes.txt").write_text("mine")
    return used


def test_cli_refuses_a_directory_that_is_not_a_backup_or_not_empty(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = own_settings(tmp_path)
    used = directory_in_use(tmp_path)
    backed = run_cli(monkeypatch, settings, "backup", str(used))
    assert backed.exit_code == 1
    assert "is not empty: back up into a new directory" in backed.output
    restored = run_cli(monkeypatch, settings, "restore", str(used))
    assert restored.exit_code == 1
    assert "no manifest.json" in restored.output
    assert not (tmp_path / "app.db").exists()


def test_cli_include_keys_warns_in_development(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    used = directory_in_use(tmp_path)
    result = run_cli(monkeypatch, own_settings(tmp_path), "backup", str(used), "--include-keys")
    assert "WARNING: --include-keys writes the keysets into the backup" in result.output
    assert "Development only." in result.output
