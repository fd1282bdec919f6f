"""Re-encryption of what the database and the object store hold, a page at a time.

Fields: every ``EncryptedText`` column of the models, table by table, paged by primary
key. A value already under the primary key is left alone; another is opened and sealed
again, and written only if the row still holds what was read (the app may have written
a new value meanwhile, under the primary key already).

Objects are rewritten in place, under the same storage key: every reference to an
object (attachment rows, pending replies, workflow histories) names that key, and the
key is the ciphertext's associated data, so a copy under another key would mean
rewriting histories, which cannot be done. In place is safe because an object's
plaintext is first read whole into a temporary file (on disk past 1 MiB) and checked
against the SHA-256 recorded for it, and S3 replaces an object only when its upload
completes: a crash before leaves the old object, one after leaves the new one, and
either opens with the keyset, which still holds the old key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from tempfile import SpooledTemporaryFile

from sqlalchemy import Column, Table, Text, func, literal, select, type_coerce, update
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.key_rotation import ReencryptPage, ReencryptStep
from infra.crypto import portal_secrets
from infra.crypto.fields import EncryptedText, FieldDecryptionError, decrypt_field
from infra.crypto.keys import EncryptionKeys, PortalKeys
from infra.crypto.rotation import OBJECT_PROBE_BYTES, field_key_id, field_under_primary
from infra.crypto.rotation import object_key_id as probe_object_key_id
from infra.db.models import Attachment, Base, PendingReply, SecureEmail
from infra.objects.encrypted import EncryptedObjectStore
from infra.objects.interface import ObjectNotFound, ObjectUnreadable
from infra.security import token_hash

_SPOOL_BYTES = 1024 * 1024
# The tables whose rows name stored objects.
OBJECT_TABLES = ("attachments", "pending_replies")


class ObjectChanged(ValueError):
    """An object's plaintext is not what its row recorded: it is not rewritten."""


class NotReencrypted(ValueError):
    """A value or an object that does not open, or not as recorded: named by table and
    row id, and left as it is."""


@dataclass(frozen=True)
class EncryptedTable:
    table: Table
    id_column: Column[str]
    columns: list[Column[str]]

    @property
    def name(self) -> str:
        return self.table.name


def encrypted_tables() -> list[EncryptedTable]:
    """Every table with an encrypted column, in the models' order."""
    found = []
    for table in Base.metadata.sorted_tables:
        columns = [c for c in table.columns if isinstance(c.type, EncryptedText)]
        if columns:
            (id_column,) = table.primary_key.columns
            found.append(EncryptedTable(table, id_column, columns))
    return found


def steps() -> list[ReencryptStep]:
    """The whole pass: each table's fields, then the objects each table names."""
    return [ReencryptStep(kind="fields", table=t.name) for t in encrypted_tables()] + [
        ReencryptStep(kind="objects", table=name) for name in OBJECT_TABLES
    ]


def _table(name: str) -> EncryptedTable:
    for table in encrypted_tables():
        if table.name == name:
            return table
    raise ValueError(f"{name} has no encrypted column")


async def count_rows(engine: AsyncEngine, table_name: str) -> int:
    table = Base.metadata.tables[table_name]
    async with engine.connect() as db:
        return int((await db.execute(select(func.count()).select_from(table))).scalar_one())


async def reencrypt_fields_page(
    engine: AsyncEngine, keys: EncryptionKeys, table_name: str, after_id: str, limit: int
) -> ReencryptPage:
    """The next ``limit`` rows after ``after_id``: each value not under the primary key
    sealed again under it, in one transaction."""
    table = _table(table_name)
    raw = [type_coerce(column, Text).label(column.name) for column in table.columns]
    rewritten = current = 0
    async with engine.begin() as db:
        rows = (
            await db.execute(
                select(table.id_column, *raw)
                .where(table.id_column > after_id)
                .order_by(table.id_column)
                .limit(limit)
            )
        ).all()
        for row in rows:
            for column in table.columns:
                stored = row._mapping[column.name]
                if stored is None:
                    continue
                column_id = f"{table.name}.{column.name}"
                try:
                    sealed = field_under_primary(keys, column_id, stored)
                except FieldDecryptionError as error:
                    raise NotReencrypted(f"row {row[0]}: {error}") from None
                if sealed is None:
                    current += 1
                    continue
                await db.execute(
                    update(table.table)
                    .where(table.id_column == row[0])
                    .where(type_coerce(column, Text) == stored)
                    .values({column.name: literal(sealed, Text)})
                )
                rewritten += 1
    last_id = str(rows[-1][0]) if rows else after_id
    return ReencryptPage(
        last_id=last_id,
        seen=len(rows),
        rewritten=rewritten,
        current=current,
        missing=0,
        done=len(rows) < limit,
    )


async def field_key_counts(engine: AsyncEngine) -> dict[str, dict[int | None, int]]:
    """For each table with encrypted columns, how many values each key id sealed."""
    counts: dict[str, dict[int | None, int]] = {}
    async with engine.connect() as db:
        for table in encrypted_tables():
            per_key: dict[int | None, int] = {}
            for column in table.columns:
                stored_values = await db.stream_scalars(
                    select(type_coerce(column, Text)).where(column.is_not(None))
                )
                async for stored in stored_values:
                    key_id = field_key_id(stored)
                    per_key[key_id] = per_key.get(key_id, 0) + 1
            counts[table.name] = per_key
    return counts


@dataclass(frozen=True)
class NamedObject:
    """A stored object a row names, with the SHA-256 of its plaintext as recorded."""

    key: str
    sha256: str | None


async def objects_page(
    engine: AsyncEngine, keys: EncryptionKeys, table_name: str, after_id: str, limit: int
) -> tuple[list[tuple[str, list[NamedObject]]], bool]:
    """The next ``limit`` rows of ``table_name`` after ``after_id``, each with the
    objects it names; and whether that was the last page."""
    async with engine.connect() as db:
        if table_name == "attachments":
            query = (
                select(Attachment.id, Attachment.object_key, Attachment.sha256)
                .where(Attachment.id > after_id)
                .order_by(Attachment.id)
                .limit(limit)
            )
            rows = (await db.execute(query)).all()
            named = [(row[0], [NamedObject(row[1], row[2])]) for row in rows]
        elif table_name == "pending_replies":
            column = PendingReply.__table__.c.attachments
            pending = (
                select(PendingReply.id, type_coerce(column, Text))
                .where(PendingReply.id > after_id)
                .order_by(PendingReply.id)
                .limit(limit)
            )
            pending_rows = (await db.execute(pending)).all()
            named = [(row[0], list(_pending_objects(keys, row[1]))) for row in pending_rows]
        else:
            raise ValueError(f"{table_name} names no stored objects")
    return named, len(named) < limit


def _pending_objects(keys: EncryptionKeys, stored: str) -> Iterator[NamedObject]:
    for item in json.loads(decrypt_field(keys, "pending_replies.attachments", stored)):
        yield NamedObject(item["object_key"], item.get("sha256"))


async def stored_object_key_id(store: EncryptedObjectStore, keys: EncryptionKeys, key: str) -> int:
    """The key of the object keyset that sealed the object under ``key``: its first
    segment is all that is read. Raises ``ObjectNotFound``, or ``ObjectUnreadable`` when
    no key of the keyset opens it."""
    start = bytearray()
    async with await store.inner.get_stream(key) as chunks:
        async for chunk in chunks:
            start += chunk
            if len(start) >= OBJECT_PROBE_BYTES:
                break
    key_id = probe_object_key_id(keys.object_keyset, key, bytes(start[:OBJECT_PROBE_BYTES]))
    if key_id is None:
        raise ObjectUnreadable(f"no key of the object keyset opens object {key!r}")
    return key_id


async def reencrypt_object(
    store: EncryptedObjectStore, keys: EncryptionKeys, named: NamedObject
) -> bool:
    """Rewrite the object under the primary key, in place (module doc); False when it is
    under the primary key already. Raises ``ObjectNotFound``, ``ObjectUnreadable``, and
    ``ObjectChanged`` when its plaintext is not what its row recorded."""
    primary = int(keys.object_keyset.keyset_info().primary_key_id)
    if await stored_object_key_id(store, keys, named.key) == primary:
        return False
    with SpooledTemporaryFile(max_size=_SPOOL_BYTES) as plaintext:
        digest = hashlib.sha256()
        async with await store.get_stream(named.key) as chunks:
            async for chunk in chunks:
                digest.update(chunk)
                plaintext.write(chunk)
        if named.sha256 is not None and digest.hexdigest() != named.sha256:
            raise ObjectChanged(f"object {named.key!r} does not match its recorded SHA-256")
        plaintext.seek(0)
        await store.put_file(named.key, plaintext)
    return True


async def reencrypt_objects_page(
    engine: AsyncEngine,
    store: EncryptedObjectStore,
    keys: EncryptionKeys,
    table_name: str,
    after_id: str,
    limit: int,
) -> ReencryptPage:
    rows, done = await objects_page(engine, keys, table_name, after_id, limit)
    rewritten = current = missing = 0
    for row_id, named_objects in rows:
        for named in named_objects:
            try:
                if await reencrypt_object(store, keys, named):
                    rewritten += 1
                else:
                    current += 1
            except ObjectNotFound:
                # Deleted with its withdrawn message, or a refused reply's file.
                missing += 1
            except (ObjectUnreadable, ObjectChanged) as error:
                raise NotReencrypted(f"{table_name} row {row_id}: {error}") from None
    return ReencryptPage(
        last_id=rows[-1][0] if rows else after_id,
        seen=len(rows),
        rewritten=rewritten,
        current=current,
        missing=missing,
        done=done,
    )


async def object_key_counts(
    engine: AsyncEngine, store: EncryptedObjectStore, keys: EncryptionKeys
) -> dict[int | None, int]:
    """How many stored objects each key of the object keyset sealed (None: none opens
    them); an object named by no stored row is not counted."""
    counts: dict[int | None, int] = {}
    for table_name in OBJECT_TABLES:
        after_id, done = "", False
        while not done:
            rows, done = await objects_page(engine, keys, table_name, after_id, 500)
            for row_id, named_objects in rows:
                after_id = row_id
                for named in named_objects:
                    try:
                        key_id: int | None = await stored_object_key_id(store, keys, named.key)
                    except ObjectNotFound:
                        continue
                    except ObjectUnreadable:
                        key_id = None
                    counts[key_id] = counts.get(key_id, 0) + 1
    return counts


async def unexpired_links_under(engine: AsyncEngine, portal: PortalKeys, key_id: str) -> int:
    """How many secure emails not yet expired have a notice link derived with the portal
    key ``key_id`` (their hash matches that key's derivation)."""
    now = datetime.now(UTC)
    found = 0
    async with engine.connect() as db:
        rows = await db.stream(
            select(SecureEmail.id, SecureEmail.link_token_hash).where(SecureEmail.expires_at > now)
        )
        async for secure_email_id, stored_hash in rows:
            link = portal_secrets.link_token(portal, key_id, secure_email_id)
            if token_hash(link) == stored_hash:
                found += 1
    return found
