"""Key rotation end to end on the real parts: SQLite and PostgreSQL (a database of its
own, so every row in it is this test's), the S3 stand-in, the Temporal dev server.

Rotate, and what the old keys sealed still opens; re-encrypt, and every field and object
is under the new primary key (by the key ids in Tink's prefixes and the object headers);
killed halfway and resumed, the pass finishes without rewriting twice; retiring an old
key is refused while anything uses it, naming what, and succeeds after.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from pydantic import SecretStr
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from activities.reencrypt import PageToReencrypt, ReencryptActivities
from domain.key_rotation import ReencryptPage, ReencryptProgress
from infra import reencryption
from infra.crypto import portal_secrets
from infra.crypto.fields import configure_field_encryption
from infra.crypto.keys import EncryptionKeys, PortalKeys
from infra.crypto.rotation import KeyInUse, all_key_ids, primary_id
from infra.db.engine import make_engine, make_sessionmaker
from infra.db.migrate import upgrade_async
from infra.db.models import Attachment, PendingReply, Reply, SecureEmail
from infra.objects.encrypted import EncryptedObjectStore
from infra.objects.keys import object_key
from infra.objects.s3 import S3ObjectStore
from infra.reencryption import NamedObject, ObjectChanged, reencrypt_object, stored_object_key_id
from infra.secure_emails import by_link
from infra.security import token_hash
from infra.settings import Settings
from infra.temporal.codec import data_converter
from tests.fixtures.objects import read_all
from tests.fixtures.postgres import fresh_postgres
from tests.fixtures.rows import a_secure_email
from tests.fixtures.waiting import eventually
from workers.keys import key_usage, retire, start_reencrypt, workflows_under
from workflows.reencrypt import ReencryptWorkflow

MESSAGES = 5
# A file larger than one 4 KiB segment, so rewriting streams several.
FILE = b"Panoramic X-ray, tooth 14. " * 600


@pytest.fixture(params=["sqlite", "postgresql"])
async def own_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database only this test writes to: re-encryption goes through all of
    it, and the run's shared PostgreSQL holds rows sealed under other tests' keys."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'app.db'}"
        await upgrade_async(url)
        yield url
        return
    async with fresh_postgres("securemail_rotation") as url:
        await upgrade_async(url)
        yield url


@pytest.fixture
async def db_engine(own_database: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(own_database)
    yield engine
    await engine.dispose()


@pytest.fixture
def old_keys(field_encryption: EncryptionKeys) -> Iterator[EncryptionKeys]:
    """The keys the data is sealed under before rotation; the app's columns use them
    until a test configures the rotated ones. After the test, the run's keys again."""
    keys = EncryptionKeys.generate()
    configure_field_encryption(keys)
    yield keys
    configure_field_encryption(field_encryption)


@dataclass
class Seeded:
    secure_email_ids: list[str]
    files: dict[str, bytes]  # object key -> plaintext
    values: int  # encrypted values stored


async def seed(engine: AsyncEngine, store: EncryptedObjectStore) -> Seeded:
    """Secure emails with a file each, a reply with a file, and a pending reply with a
    file, all under the keys configured now."""
    ids: list[str] = []
    files: dict[str, bytes] = {}
    async with make_sessionmaker(engine)() as db:
        for n in range(MESSAGES):
            secure_email = await a_secure_email(db, subject=f"Results {n}", body=f"Body {n}")
            ids.append(secure_email.id)
            attachment_id = str(uuid.uuid4())
            key = object_key("secure-emails", secure_email.id, attachment_id)
            data = FILE + str(n).encode()
            stored = await store.put_bytes(key, data)
            files[key] = data
            db.add(
                Attachment(
                    id=attachment_id,
                    secure_email_id=secure_email.id,
                    object_key=key,
                    filename=f"xray-{n}.png",
                    size=stored.size,
                    content_type="image/png",
                    sha256=stored.sha256,
                )
            )
        first = await db.get(SecureEmail, ids[0])
        assert first is not None
        reply = Reply(
            id=str(uuid.uuid4()),
            secure_email_id=first.id,
            practice_id=first.practice_id,
            patient_id=first.patient_id,
            subject="Re: Results 0",
            body="Thank you",
            sent_at=datetime.now(UTC),
        )
        db.add(reply)
        pending_key = object_key("replies", "pending", str(uuid.uuid4()))
        pending_data = b"photo of the swelling" * 300
        pending_stored = await store.put_bytes(pending_key, pending_data)
        files[pending_key] = pending_data
        db.add(
            PendingReply(
                id=str(uuid.uuid4()),
                secure_email_id=first.id,
                subject="Re: Results 0",
                body="One more thing",
                attachments=json.dumps(
                    [
                        pending_stored.as_attachment(
                            str(uuid.uuid4()), "swelling.jpg", "image/jpeg"
                        ).model_dump()
                    ]
                ),
            )
        )
        await db.commit()
    # Subject and body of each message, each file name, the reply's two, the pending
    # reply's three.
    return Seeded(ids, files, values=MESSAGES * 3 + 2 + 3)


async def assert_everything_opens(
    engine: AsyncEngine, store: EncryptedObjectStore, seeded: Seeded
) -> None:
    async with make_sessionmaker(engine)() as db:
        for n, secure_email_id in enumerate(seeded.secure_email_ids):
            secure_email = await db.get(SecureEmail, secure_email_id)
            assert secure_email is not None
            assert (secure_email.subject, secure_email.body) == (f"Results {n}", f"Body {n}")
        names = (await db.scalars(select(Attachment.filename))).all()
        assert sorted(names) == [f"xray-{n}.png" for n in range(MESSAGES)]
        assert [r.body for r in (await db.scalars(select(Reply))).all()] == ["Thank you"]
        pending = (await db.scalars(select(PendingReply))).one()
        assert json.loads(pending.attachments)[0]["filename"] == "swelling.jpg"
    for key, data in seeded.files.items():
        assert await read_all(store, key) == data


class Rotated(NamedTuple):
    """What a rotation test starts from: ``seeded`` sealed under ``old_keys``, then the
    keys rotated to ``new_keys`` (a new primary in each keyset, the old keys kept),
    configured for the app's columns and sealing ``store``."""

    seeded: Seeded
    old_keys: EncryptionKeys
    new_keys: EncryptionKeys
    store: EncryptedObjectStore


@pytest.fixture
async def rotated(
    db_engine: AsyncEngine, object_store: S3ObjectStore, old_keys: EncryptionKeys
) -> Rotated:
    seeded = await seed(db_engine, EncryptedObjectStore(object_store, old_keys))
    new_keys = old_keys.rotated()
    configure_field_encryption(new_keys)
    return Rotated(seeded, old_keys, new_keys, EncryptedObjectStore(object_store, new_keys))


def settings_for(database_url: str, keys: EncryptionKeys, **more: Any) -> Settings:
    return Settings(database_url=database_url, **keys.settings_fields(), **more)


async def reencrypt_with(
    client: Client, task_queue: str, engine: AsyncEngine, keys: EncryptionKeys, store: Any
) -> ReencryptProgress:
    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ReencryptWorkflow],
        activities=[
            ReencryptActivities(engine, keys, store).count_to_reencrypt,
            ReencryptActivities(engine, keys, store).reencrypt_page,
        ],
    ):
        handle = await start_reencrypt(client, task_queue, batch=2)
        return await handle.result()


async def test_rotate_reencrypt_retire(
    own_database: str,
    db_engine: AsyncEngine,
    object_store: S3ObjectStore,
    rotated: Rotated,
    dev_server_env: WorkflowEnvironment,
) -> None:
    seeded, old_keys, new_keys, store = rotated
    old_field_key, old_object_key = old_keys.primary_id, primary_id(old_keys.object_keyset)
    # Rotated: a new primary in each keyset, the old keys kept, so everything opens.
    assert new_keys.primary_id != old_field_key
    assert old_field_key in all_key_ids(new_keys.aead_keyset)
    await assert_everything_opens(db_engine, store, seeded)

    settings = settings_for(own_database, new_keys)
    client = dev_server_env.client
    fields_in_use = await key_usage(settings, "encryption", old_field_key, client=client)
    assert fields_in_use.fields == {
        "secure_emails": 2 * MESSAGES,
        "attachments": MESSAGES,
        "replies": 2,
        "pending_replies": 3,
    }
    with pytest.raises(KeyInUse, match=r"10 value\(s\) in secure_emails"):
        retire(settings, "encryption", old_field_key, fields_in_use)
    objects_in_use = await key_usage(settings, "objects", old_object_key, store=store)
    assert objects_in_use.objects == MESSAGES + 1
    with pytest.raises(KeyInUse, match=r"6 stored object\(s\)"):
        retire(settings, "objects", old_object_key, objects_in_use)

    task_queue = f"rotation-{uuid.uuid4()}"
    done = await reencrypt_with(client, task_queue, db_engine, new_keys, store)

    assert done.finished
    assert done.rewritten == seeded.values + len(seeded.files)
    # Every value names the new primary key, in clear and in Tink's prefix alike.
    counts = await reencryption.field_key_counts(db_engine)
    assert {table: set(per_key) for table, per_key in counts.items() if per_key} == {
        table: {new_keys.primary_id}
        for table in ("secure_emails", "attachments", "replies", "pending_replies")
    }
    object_counts = await reencryption.object_key_counts(db_engine, store, new_keys)
    assert object_counts == {primary_id(new_keys.object_keyset): len(seeded.files)}
    await assert_everything_opens(db_engine, store, seeded)

    # Nothing uses the old keys now: each keyset without its old key still opens it all.
    fields_free = await key_usage(settings, "encryption", old_field_key, client=client)
    assert not fields_free.in_use
    objects_free = await key_usage(settings, "objects", old_object_key, store=store)
    assert not objects_free.in_use
    aead_text = retire(settings, "encryption", old_field_key, fields_free)
    object_text = retire(settings, "objects", old_object_key, objects_free)
    retired = EncryptionKeys.parse(aead_text, object_text)
    assert all_key_ids(retired.aead_keyset) == [new_keys.primary_id]
    assert all_key_ids(retired.object_keyset) == [primary_id(new_keys.object_keyset)]
    configure_field_encryption(retired)
    await assert_everything_opens(db_engine, EncryptedObjectStore(object_store, retired), seeded)

    # A second pass finds nothing to do.
    again = await reencrypt_with(client, task_queue, db_engine, retired, store)
    assert again.rewritten == 0


@pytest.mark.parametrize("how", ["workflow terminated", "worker stopped"])
async def test_reencrypt_killed_halfway_finishes_without_redoing(
    how: str, db_engine: AsyncEngine, rotated: Rotated, dev_server_env: WorkflowEnvironment
) -> None:
    seeded, _, new_keys, store = rotated
    client = dev_server_env.client
    task_queue = f"rotation-{uuid.uuid4()}"
    real = ReencryptActivities(db_engine, new_keys, store)
    pages_done = 0
    stuck = asyncio.Event()

    @activity.defn(name="reencrypt_page")
    async def stops_on_the_fourth_page(page: PageToReencrypt) -> ReencryptPage:
        nonlocal pages_done
        if pages_done == 3:
            stuck.set()
            await asyncio.Event().wait()  # until the worker is stopped: a crash mid-page
        pages_done += 1
        return await real.reencrypt_page(page)

    first = Worker(
        client,
        task_queue=task_queue,
        workflows=[ReencryptWorkflow],
        activities=[real.count_to_reencrypt, stops_on_the_fourth_page],
        graceful_shutdown_timeout=timedelta(0),
    )
    async with first:
        handle = await start_reencrypt(client, task_queue, batch=2)
        await asyncio.wait_for(stuck.wait(), timeout=60)
        progress = await handle.query(ReencryptWorkflow.progress)
        assert progress is not None and 0 < progress.rewritten < seeded.values
        if how == "workflow terminated":
            await handle.terminate("killed halfway")

    # Halfway: some values under the new key, some under the old; everything opens.
    counts = await reencryption.field_key_counts(db_engine)
    under_new = sum(per_key.get(new_keys.primary_id, 0) for per_key in counts.values())
    assert 0 < under_new < seeded.values
    await assert_everything_opens(db_engine, store, seeded)

    async with Worker(
        client,
        task_queue=task_queue,
        workflows=[ReencryptWorkflow],
        activities=[real.count_to_reencrypt, real.reencrypt_page],
    ):
        if how == "workflow terminated":
            assert (await handle.describe()).status == WorkflowExecutionStatus.TERMINATED
            handle = await start_reencrypt(client, task_queue, batch=2)
        done = await handle.result()

    assert done.finished
    fields_rewritten = sum(step.rewritten for step in done.steps if step.kind == "fields")
    if how == "workflow terminated":
        # The new pass found the first's work done and rewrote only the rest.
        assert fields_rewritten == seeded.values - under_new
        assert sum(step.current for step in done.steps if step.kind == "fields") == under_new
    else:
        # The same workflow went on: the page cut off was retried, nothing twice.
        assert fields_rewritten == seeded.values
    counts = await reencryption.field_key_counts(db_engine)
    assert all(set(per_key) <= {new_keys.primary_id} for per_key in counts.values())
    object_counts = await reencryption.object_key_counts(db_engine, store, new_keys)
    assert object_counts == {primary_id(new_keys.object_keyset): len(seeded.files)}
    await assert_everything_opens(db_engine, store, seeded)


async def test_an_old_portal_link_works_until_its_message_expires(
    own_database: str, db_engine: AsyncEngine, old_keys: EncryptionKeys
) -> None:
    old_portal = PortalKeys.generate()
    old_id = old_portal.current_id
    async with make_sessionmaker(db_engine)() as db:
        secure_email = await a_secure_email(db)
        link = portal_secrets.link_token(old_portal, old_id, secure_email.id)
        secure_email.link_token_hash = token_hash(link)
        await db.commit()
    new_portal = old_portal.rotated()
    assert new_portal.current_id != old_id
    settings = settings_for(
        own_database,
        old_keys,
        portal_keyset=SecretStr(new_portal.settings_fields()["portal_keyset"].get_secret_value()),
    )

    # The link mailed before the rotation still opens the message, and the notice
    # activity, which derives the link again from the key id its workflow keeps, still
    # derives the same one.
    async with make_sessionmaker(db_engine)() as db:
        assert (await by_link(db, token_hash(link))) is not None
    assert portal_secrets.link_token(new_portal, old_id, secure_email.id) == link

    in_use = await key_usage(settings, "portal", int(old_id))
    assert in_use.links == 1
    with pytest.raises(KeyInUse, match=r"1 unexpired secure email\(s\) whose link it issued"):
        retire(settings, "portal", int(old_id), in_use)
    with pytest.raises(KeyInUse, match="primary"):
        retire(settings, "portal", int(new_portal.current_id), in_use)

    async with db_engine.begin() as db:
        await db.execute(
            update(SecureEmail)
            .where(SecureEmail.id == secure_email.id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
    expired = await key_usage(settings, "portal", int(old_id))
    assert not expired.in_use
    retired = PortalKeys.parse(retire(settings, "portal", int(old_id), expired))
    assert retired.ids == [new_portal.current_id]


async def test_histories_sealed_under_a_key_are_found(
    dev_server_env: WorkflowEnvironment,
) -> None:
    old = EncryptionKeys.generate()
    config = dev_server_env.client.config()
    config["data_converter"] = data_converter(old)
    old_client = Client(**config)
    handle = await old_client.start_workflow(
        ReencryptWorkflow.run,
        ReencryptProgress(steps=[]),
        id=f"rotation-history-{uuid.uuid4()}",
        task_queue=f"nobody-polls-{uuid.uuid4()}",
    )

    async def found() -> bool:
        return await workflows_under(dev_server_env.client, old.primary_id) == 1

    await eventually(found, timeout=20, what="the history sealed under the old key found")
    assert await workflows_under(dev_server_env.client, old.rotated().primary_id) == 0
    await handle.terminate("done")


async def test_an_object_unlike_its_record_is_not_rewritten(
    object_store: S3ObjectStore, old_keys: EncryptionKeys
) -> None:
    old_store = EncryptedObjectStore(object_store, old_keys)
    key = object_key("secure-emails", str(uuid.uuid4()), str(uuid.uuid4()))
    await old_store.put_bytes(key, FILE)
    new_keys = old_keys.rotated()
    store = EncryptedObjectStore(object_store, new_keys)
    recorded_otherwise = hashlib.sha256(b"another file").hexdigest()

    with pytest.raises(ObjectChanged, match="SHA-256"):
        await reencrypt_object(store, new_keys, NamedObject(key, recorded_otherwise))

    # Left as it was, under the old key.
    assert await stored_object_key_id(store, new_keys, key) == primary_id(old_keys.object_keyset)
    assert await reencrypt_object(
        store, new_keys, NamedObject(key, hashlib.sha256(FILE).hexdigest())
    )
    assert await read_all(store, key) == FILE
    assert not await reencrypt_object(store, new_keys, NamedObject(key, None))


async def test_a_value_no_key_opens_stops_the_pass_naming_its_row(
    db_engine: AsyncEngine,
    object_store: S3ObjectStore,
    old_keys: EncryptionKeys,
    dev_server_env: WorkflowEnvironment,
) -> None:
    async with make_sessionmaker(db_engine)() as db:
        secure_email = await a_secure_email(db)
        await db.commit()
    # Keys that never held the one that sealed it (removed too early, say).
    strangers = EncryptionKeys.generate()
    configure_field_encryption(strangers)
    task_queue = f"rotation-{uuid.uuid4()}"

    with pytest.raises(WorkflowFailureError) as failed:
        await reencrypt_with(
            dev_server_env.client,
            task_queue,
            db_engine,
            strangers,
            EncryptedObjectStore(object_store, strangers),
        )

    cause = failed.value.cause
    while cause.__cause__ is not None and not str(cause).startswith("row"):
        cause = cause.__cause__
    assert f"row {secure_email.id}: secure_emails.subject was encrypted with key" in str(cause)
    # Left as it was: the right keys still open it.
    configure_field_encryption(old_keys)
    async with make_sessionmaker(db_engine)() as db:
        assert (await db.get(SecureEmail, secure_email.id)) is not None
