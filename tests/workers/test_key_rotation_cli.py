"""``securemail keys``: rotate writes the new keysets for the operator (mode 600, or
printed), reencrypt shows its progress until it is done, retire refuses and names what
still uses a key, and writes the keyset without it once nothing does."""

from __future__ import annotations

import asyncio
import stat
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import update
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker
from typer.testing import CliRunner, Result

from activities.reencrypt import ReencryptActivities
from infra.crypto import portal_secrets
from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import EncryptionKeys, PortalKeys, keyset_environment
from infra.crypto.rotation import all_key_ids, primary_id
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade_async
from infra.db.models import SecureEmail
from infra.objects.encrypted import EncryptedObjectStore
from infra.objects.s3 import S3ObjectStore
from infra.reencryption import field_key_counts
from infra.security import token_hash
from infra.settings import get_settings
from infra.temporal.codec import data_converter
from tests.fixtures.rows import a_secure_email
from workers.cli import app as securemail
from workflows.reencrypt import ReencryptWorkflow


async def run(env: dict[str, str], *arguments: str) -> Result:
    def invoke() -> Result:
        get_settings.cache_clear()
        try:
            return CliRunner().invoke(
                securemail, ["keys", *arguments], env=env, catch_exceptions=False
            )
        finally:
            get_settings.cache_clear()

    return await asyncio.to_thread(invoke)


def keyset_env(keys: EncryptionKeys, portal: PortalKeys, tmp_path: Path) -> dict[str, str]:
    return {
        "SECURE_EMAIL_DATA_DIR": str(tmp_path / "data"),
        **keyset_environment(keys.settings_fields()),
        **keyset_environment(portal.settings_fields()),
    }


async def test_rotate_writes_each_keyset_for_its_owner_only(tmp_path: Path) -> None:
    keys, portal = EncryptionKeys.generate(), PortalKeys.generate()
    out = tmp_path / "new-keys"

    done = await run(keyset_env(keys, portal, tmp_path), "rotate", "--out", str(out))

    assert done.exit_code == 0, done.output
    aead = (out / "SECURE_EMAIL_ENCRYPTION_KEYSET.json").read_text()
    objects = (out / "SECURE_EMAIL_OBJECT_KEYSET.json").read_text()
    portal_text = (out / "SECURE_EMAIL_PORTAL_KEYSET.json").read_text()
    for path in out.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    rotated = EncryptionKeys.parse(aead, objects)
    assert rotated.primary_id != keys.primary_id
    assert all_key_ids(rotated.aead_keyset) == [rotated.primary_id, keys.primary_id]
    assert primary_id(keys.object_keyset) in all_key_ids(rotated.object_keyset)
    rotated_portal = PortalKeys.parse(portal_text)
    assert rotated_portal.ids == [rotated_portal.current_id, portal.current_id]
    # What the old keys sealed still opens under the new keysets.
    sealed = keys.aead.encrypt(b"Results", b"ad")
    assert rotated.aead.decrypt(sealed, b"ad") == b"Results"
    # Where each went is said; no key material in the output.
    assert f"new primary key {rotated.primary_id}" in done.output
    assert aead.strip() not in done.output and "reencrypt" in done.output


async def test_rotate_one_keyset_prints_it(tmp_path: Path) -> None:
    keys, portal = EncryptionKeys.generate(), PortalKeys.generate()

    done = await run(keyset_env(keys, portal, tmp_path), "rotate", "--keyset", "portal")

    assert done.exit_code == 0, done.output
    assert "SECURE_EMAIL_PORTAL_KEYSET" in done.output
    assert "SECURE_EMAIL_ENCRYPTION_KEYSET" not in done.output
    printed = next(line for line in done.output.splitlines() if line.startswith("{"))
    assert PortalKeys.parse(printed).ids[1] == portal.current_id


async def test_rotate_add_only_leaves_the_primary(tmp_path: Path) -> None:
    keys, portal = EncryptionKeys.generate(), PortalKeys.generate()
    out = tmp_path / "new-keys"

    done = await run(
        keyset_env(keys, portal, tmp_path),
        "rotate",
        "--keyset",
        "encryption",
        "--add-only",
        "--out",
        str(out),
    )

    assert done.exit_code == 0, done.output
    added = EncryptionKeys.parse(
        (out / "SECURE_EMAIL_ENCRYPTION_KEYSET.json").read_text(),
        keys.settings_fields()["object_keyset"].get_secret_value(),
    )
    assert added.primary_id == keys.primary_id and len(all_key_ids(added.aead_keyset)) == 2
    assert "not primary yet" in done.output
    assert sorted(path.name for path in out.iterdir()) == ["SECURE_EMAIL_ENCRYPTION_KEYSET.json"]


async def test_rotate_refuses_an_unknown_keyset(tmp_path: Path) -> None:
    keys, portal = EncryptionKeys.generate(), PortalKeys.generate()
    done = await run(keyset_env(keys, portal, tmp_path), "rotate", "--keyset", "payload")
    assert done.exit_code == 2 and "--keyset" in done.output


async def test_retire_refuses_naming_what_uses_the_key_then_writes_the_keyset(
    tmp_path: Path, database_url: str, field_keys: EncryptionKeys
) -> None:
    old_portal = PortalKeys.generate()
    old_id = old_portal.current_id
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as db:
        secure_email = await a_secure_email(db)
        link = portal_secrets.link_token(old_portal, old_id, secure_email.id)
        secure_email.link_token_hash = token_hash(link)
        await db.commit()
    env = {
        **keyset_env(field_keys, old_portal.rotated(), tmp_path),
        "SECURE_EMAIL_DATABASE_URL": database_url,
    }
    out = tmp_path / "portal.json"

    refused = await run(env, "retire", "--keyset", "portal", "--key-id", old_id, "--out", str(out))

    assert refused.exit_code == 1
    assert "1 unexpired secure email(s) whose link it issued" in refused.output
    assert not out.exists()

    async with engine.begin() as db:
        await db.execute(
            update(SecureEmail)
            .where(SecureEmail.id == secure_email.id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    await engine.dispose()
    retired = await run(env, "retire", "--keyset", "portal", "--key-id", old_id, "--out", str(out))

    assert retired.exit_code == 0, retired.output
    assert old_id not in PortalKeys.parse(out.read_text()).ids
    assert stat.S_IMODE(out.stat().st_mode) == 0o600


async def test_retire_refuses_a_key_the_keyset_lacks_and_the_primary(
    tmp_path: Path, database_url: str
) -> None:
    keys, portal = EncryptionKeys.generate(), PortalKeys.generate()
    env = {**keyset_env(keys, portal, tmp_path), "SECURE_EMAIL_DATABASE_URL": database_url}

    unknown = await run(env, "retire", "--keyset", "portal", "--key-id", "12345")
    primary = await run(env, "retire", "--keyset", "portal", "--key-id", portal.current_id)
    wrong = await run(env, "retire", "--keyset", "payloads", "--key-id", "1")

    assert unknown.exit_code == 1 and "has no key 12345" in unknown.output
    assert primary.exit_code == 1 and "primary key" in primary.output
    assert wrong.exit_code == 2 and "--keyset" in wrong.output


async def test_reencrypt_shows_progress_until_done(
    tmp_path: Path,
    field_keys: EncryptionKeys,
    object_store: S3ObjectStore,
    dev_server_env: WorkflowEnvironment,
) -> None:
    # A database of this test's own: the pass goes through every row.
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'own.db'}"
    await upgrade_async(database_url)
    engine = make_engine(database_url)
    async with make_sessionmaker(engine)() as db:
        await a_secure_email(db, subject="Results", body="Attached.")
        await db.commit()
    rotated = field_keys.rotated()
    configure_field_encryption(rotated)
    task_queue = f"rotation-{uuid.uuid4()}"
    # The worker's payloads under the rotated keyset too, as after a deployment.
    config = dev_server_env.client.config()
    config["data_converter"] = data_converter(rotated)
    client = Client(**config)
    env = {
        **keyset_env(rotated, PortalKeys.generate(), tmp_path),
        "SECURE_EMAIL_DATABASE_URL": database_url,
        "SECURE_EMAIL_TASK_QUEUE": task_queue,
        "SECURE_EMAIL_TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "SECURE_EMAIL_TEMPORAL_NAMESPACE": client.namespace,
    }
    activities = ReencryptActivities(engine, rotated, EncryptedObjectStore(object_store, rotated))
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ReencryptWorkflow],
        activities=[activities.count_to_reencrypt, activities.reencrypt_page],
    ):
        done = await run(env, "reencrypt", "--batch", "1")

    assert done.exit_code == 0, done.output
    assert "workflow keys-reencrypt" in done.output
    assert "fields secure_emails: done, 2 rewritten, 0 already current" in done.output
    assert "Done" in done.output
    counts = await field_key_counts(engine)
    assert counts["secure_emails"] == {rotated.primary_id: 2}
    await engine.dispose()
