"""Migration 0010 seals the file names already stored, and opens them again on downgrade.

A file name can be PHI ("biopsy-jane.pdf"): after the upgrade it is not in the table in
clear, and the app still reads it; with no attachment at all, no key is needed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

import infra.crypto.keys
from infra.crypto.fields import configure_field_encryption, decrypt_field
from infra.crypto.keys import EncryptionKeys
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import downgrade, upgrade
from infra.db.models import Attachment
from infra.settings import Settings
from tests.fixtures.postgres import new_database
from tests.fixtures.rows import a_secure_email

NAME = "biopsy-jane.pdf"
COLUMN = "attachments.filename"


@pytest.fixture(params=["sqlite", "postgresql"])
async def fresh_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    async with new_database(request.param, tmp_path / "names.db", "securemail_names") as url:
        yield url


@pytest.fixture
def no_configured_ring(field_encryption: EncryptionKeys) -> Iterator[None]:
    """As `securemail migrate` runs: no ring set up in the process."""
    configure_field_encryption(None)
    yield
    configure_field_encryption(field_encryption)


async def add_attachment(url: str) -> str:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        secure_email = await a_secure_email(db)
        attachment = Attachment(
            secure_email_id=secure_email.id,
            object_key=f"objects/{uuid.uuid4()}",
            filename=NAME,
            size=10,
            content_type="application/pdf",
            sha256="0" * 64,
        )
        db.add(attachment)
        await db.commit()
        attachment_id = attachment.id
    await engine.dispose()
    return attachment_id


async def stored_name(url: str, attachment_id: str) -> str:
    """The column as the database holds it, read past the model."""
    engine = make_engine(url)
    async with engine.connect() as connection:
        value = await connection.scalar(
            text("SELECT filename FROM attachments WHERE id = :id"), {"id": attachment_id}
        )
    await engine.dispose()
    return str(value)


async def read_name(url: str, attachment_id: str) -> str:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        attachment = await db.get(Attachment, attachment_id)
        assert attachment is not None
        name = attachment.filename
    await engine.dispose()
    return name


async def test_names_sealed_on_upgrade_opened_on_downgrade(
    fresh_database: str, field_keys: EncryptionKeys
) -> None:
    url = fresh_database
    await asyncio.to_thread(upgrade, url)
    attachment_id = await add_attachment(url)
    assert NAME not in await stored_name(url, attachment_id)

    # Back to before this revision: names in clear, as that code expects them.
    await asyncio.to_thread(downgrade, url, "0009")
    assert await stored_name(url, attachment_id) == NAME

    await asyncio.to_thread(upgrade, url)
    sealed = await stored_name(url, attachment_id)
    assert NAME not in sealed and sealed.startswith(f"v2:{field_keys.primary_id}:")
    assert decrypt_field(field_keys, COLUMN, sealed) == NAME
    assert await read_name(url, attachment_id) == NAME


async def test_migrate_command_uses_the_ring_of_the_settings(
    fresh_database: str,
    field_keys: EncryptionKeys,
    no_configured_ring: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = fresh_database
    await asyncio.to_thread(upgrade, url, "0009")
    configure_field_encryption(field_keys)
    await asyncio.to_thread(upgrade, url)
    attachment_id = await add_attachment(url)
    await asyncio.to_thread(downgrade, url, "0009")
    configure_field_encryption(None)

    # `securemail migrate`: nothing configured, so the ring comes from the settings.
    asked: list[Settings] = []

    def keys_of(settings: Settings) -> EncryptionKeys:
        asked.append(settings)
        return field_keys

    monkeypatch.setattr(infra.crypto.keys, "encryption_keys", keys_of)
    await asyncio.to_thread(upgrade, url)
    assert len(asked) == 1
    assert decrypt_field(field_keys, COLUMN, await stored_name(url, attachment_id)) == NAME


async def test_empty_database_migrates_without_keys(
    fresh_database: str, no_configured_ring: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_keys(settings: Settings) -> EncryptionKeys:
        raise ValueError("SECURE_EMAIL_ENCRYPTION_KEYSET must be set in production")

    monkeypatch.setattr(infra.crypto.keys, "encryption_keys", no_keys)
    await asyncio.to_thread(upgrade, fresh_database)
    await asyncio.to_thread(downgrade, fresh_database)
    await asyncio.to_thread(upgrade, fresh_database)
