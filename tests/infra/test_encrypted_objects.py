"""EncryptedObjectStore against a real S3 server (rclone serve s3, see tests/fixtures/s3.py).

What rclone writes to its disk is what a stolen disk or backup would give away, so the
tests read it there.
"""

from __future__ import annotations

import hashlib
import io
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from tempfile import SpooledTemporaryFile

import pytest

from domain.attachments import MAX_ATTACHMENT_BYTES
from infra.crypto.keys import OBJECT_SEGMENT_BYTES, EncryptionKeys
from infra.objects.encrypted import (
    EncryptedObjectStore,
    ciphertext_size,
    plaintext_size,
    secure_object_store,
)
from infra.objects.interface import ObjectNotFound, ObjectTooLarge, ObjectUnreadable
from infra.objects.s3 import S3ObjectStore
from infra.objects.streaming import DEFAULT_CHUNK_SIZE
from tests.fixtures.objects import PseudoRandomFile, measure_peak_memory, new_key, read_all
from tests.fixtures.s3 import S3Server

LARGE_SIZE = MAX_ATTACHMENT_BYTES + 1024
MiB = 1024 * 1024
SEGMENT_SIZE = OBJECT_SEGMENT_BYTES
KEYS = EncryptionKeys.generate()
# Two full segments (the first holds less: the header shares it) and 5 bytes in a third.
THREE_SEGMENTS = (SEGMENT_SIZE - 56) + (SEGMENT_SIZE - 16) + 5
# Recognisable on disk: if any of it were stored in clear, a search would find it.
PHRASE = b"Ada Lovelace, biopsy of tooth 14: benign. "


@pytest.fixture
def store(object_store: S3ObjectStore) -> EncryptedObjectStore:
    return EncryptedObjectStore(object_store, KEYS)


def on_disk(s3_server: S3Server, store: EncryptedObjectStore, key: str) -> Path:
    assert isinstance(store.inner, S3ObjectStore)
    return s3_server.data_dir / store.inner.bucket / key


async def test_put_bytes_stores_only_ciphertext(
    store: EncryptedObjectStore, s3_server: S3Server
) -> None:
    key = new_key()
    data = PHRASE * 30_000  # about 1.2 MB: many segments

    stored = await store.put_bytes(key, data, "application/pdf")

    raw = on_disk(s3_server, store, key).read_bytes()
    assert b"Lovelace" not in raw and b"biopsy" not in raw
    assert len(raw) == ciphertext_size(len(data))
    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await read_all(store, key) == data


@pytest.mark.parametrize(
    "size", [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE + 7]
)
async def test_put_bytes_round_trips_content(store: EncryptedObjectStore, size: int) -> None:
    key = new_key()
    data = random.Random(size).randbytes(size)

    stored = await store.put_bytes(key, data)

    assert stored.size == size
    assert await read_all(store, key) == data
    async with await store.get_stream(key) as chunks:
        assert chunks.size == size
    assert await store.size(key) == size


async def test_put_file_round_trips_spooled_upload(store: EncryptedObjectStore) -> None:
    key = new_key()
    # Past one 5 MiB part, so the upload is multipart.
    data = random.Random(1).randbytes(6 * MiB + 17)
    with SpooledTemporaryFile(max_size=MiB) as upload:
        upload.write(data)
        upload.seek(0)
        stored = await store.put_file(key, upload, "image/png")

    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await store.size(key) == len(data)
    assert await read_all(store, key) == data


async def test_put_file_reads_from_current_position(store: EncryptedObjectStore) -> None:
    key = new_key()
    upload = io.BytesIO(b"HEADbody")
    upload.seek(4)

    stored = await store.put_file(key, upload)

    assert stored.size == 4
    assert await read_all(store, key) == b"body"


async def write_large_file(path: Path) -> str:
    source = PseudoRandomFile(LARGE_SIZE)
    with path.open("wb") as out:
        while chunk := source.read(MiB):
            out.write(chunk)
    return source.sha256.hexdigest()


async def test_put_file_streams_seekable_file_in_parts(
    store: EncryptedObjectStore, tmp_path: Path
) -> None:
    path = tmp_path / "upload.bin"
    sha256 = await write_large_file(path)

    with path.open("rb") as upload:
        stored, peak = await measure_peak_memory(
            store.put_file(new_key(), upload, max_bytes=MAX_ATTACHMENT_BYTES + 1024)
        )

    assert stored.size == LARGE_SIZE
    assert stored.sha256 == sha256
    # The plain store's bound (a part being read while the previous one is released:
    # 2 x 5 MiB), plus a little for sealing: not 20 MB.
    assert peak < 12 * MiB


async def test_put_file_streams_unsized_source_in_parts(store: EncryptedObjectStore) -> None:
    source = PseudoRandomFile(LARGE_SIZE)

    stored, peak = await measure_peak_memory(store.put_file(new_key(), source))

    assert stored.size == LARGE_SIZE
    assert stored.sha256 == source.sha256.hexdigest()
    # Plaintext is read 64 KiB at a time (Tink gathers it into segments), never a part.
    assert source.largest_read <= 64 * 1024
    # The plain store's bound without a length (minio copies each part to find the end).
    assert peak < 17 * MiB


async def test_get_stream_streams_large_object(store: EncryptedObjectStore) -> None:
    key = new_key()
    source = PseudoRandomFile(LARGE_SIZE)
    await store.put_file(key, source)

    async def download() -> tuple[int, str]:
        digest = hashlib.sha256()
        total = 0
        async with await store.get_stream(key) as chunks:
            assert chunks.size == LARGE_SIZE
            async for chunk in chunks:
                assert len(chunk) <= DEFAULT_CHUNK_SIZE
                digest.update(chunk)
                total += len(chunk)
        return total, digest.hexdigest()

    (total, sha256), peak = await measure_peak_memory(download())

    # Exactly the size announced: a download's Content-Length is the recorded size.
    assert total == LARGE_SIZE
    assert sha256 == source.sha256.hexdigest()
    # A checked segment (4 KiB) at a time, and the ciphertext being read: not 20 MB.
    assert peak < 3 * MiB


async def test_put_chunks_streams_async_source(store: EncryptedObjectStore) -> None:
    key = new_key()
    source = PseudoRandomFile(12 * MiB + 5)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := source.read(100_003):
            yield chunk
        yield b""

    stored = await store.put_chunks(key, chunks(), "text/plain")

    assert stored.size == 12 * MiB + 5
    assert stored.sha256 == source.sha256.hexdigest()
    assert await store.size(key) == stored.size
    digest = hashlib.sha256()
    async with await store.get_stream(key) as opened:
        async for chunk in opened:
            digest.update(chunk)
    assert digest.hexdigest() == source.sha256.hexdigest()


async def test_put_file_refuses_seekable_file_over_limit(store: EncryptedObjectStore) -> None:
    key = new_key()

    with pytest.raises(ObjectTooLarge):
        await store.put_file(key, io.BytesIO(b"x" * 100), max_bytes=99)

    assert not await store.exists(key)


async def test_put_file_refuses_unsized_upload_over_limit(store: EncryptedObjectStore) -> None:
    key = new_key()

    with pytest.raises(ObjectTooLarge):
        await store.put_file(key, PseudoRandomFile(LARGE_SIZE), max_bytes=MAX_ATTACHMENT_BYTES)

    assert not await store.exists(key)


async def test_put_chunks_refuses_source_over_limit(store: EncryptedObjectStore) -> None:
    key = new_key()

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(7):
            yield b"x" * MiB

    with pytest.raises(ObjectTooLarge):
        await store.put_chunks(key, chunks(), max_bytes=6 * MiB)

    assert not await store.exists(key)


async def test_put_file_accepts_upload_at_limit(store: EncryptedObjectStore) -> None:
    stored = await store.put_file(new_key(), PseudoRandomFile(6 * MiB), max_bytes=6 * MiB)

    assert stored.size == 6 * MiB


async def test_exists_object_after_put_and_delete(store: EncryptedObjectStore) -> None:
    key = new_key()
    assert not await store.exists(key)

    await store.put_bytes(key, b"x-ray")
    assert await store.exists(key)

    await store.delete(key)
    assert not await store.exists(key)


async def test_get_stream_object_missing_raises_not_found(store: EncryptedObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.get_stream(new_key())
    with pytest.raises(ObjectNotFound):
        await store.size(new_key())


async def test_get_stream_object_moved_to_another_key_fails(
    store: EncryptedObjectStore, s3_server: S3Server
) -> None:
    # Someone with access to the bucket swaps one patient's file for another's.
    key, other = new_key(), new_key()
    await store.put_bytes(key, PHRASE)
    await store.put_bytes(other, b"harmless")
    await store.inner.put_bytes(other, on_disk(s3_server, store, key).read_bytes())

    with pytest.raises(ObjectUnreadable):
        await read_all(store, other)


@pytest.mark.parametrize(
    ("content", "cut"),
    [
        pytest.param(PHRASE * 5000, 1, id="truncated"),
        # The whole third segment (5 bytes and its 16-byte tag): two whole segments remain.
        pytest.param(b"x" * THREE_SEGMENTS, 5 + 16, id="cut-at-segment"),
    ],
)
async def test_get_stream_object_cut_short_fails(
    store: EncryptedObjectStore, s3_server: S3Server, content: bytes, cut: int
) -> None:
    key = new_key()
    await store.put_bytes(key, content)
    raw = on_disk(s3_server, store, key).read_bytes()
    await store.inner.put_bytes(key, raw[: len(raw) - cut])

    with pytest.raises(ObjectUnreadable):
        await read_all(store, key)


async def test_get_stream_object_of_impossible_size_fails_before_streaming(
    store: EncryptedObjectStore, s3_server: S3Server
) -> None:
    key = new_key()
    await store.put_bytes(key, b"x" * THREE_SEGMENTS)
    raw = on_disk(s3_server, store, key).read_bytes()
    # What is left of the last segment is shorter than its tag: no encryptor wrote that.
    await store.inner.put_bytes(key, raw[: len(raw) - 12])

    with pytest.raises(ObjectUnreadable, match="truncated"):
        await store.get_stream(key)


async def test_get_stream_plaintext_object_is_refused(store: EncryptedObjectStore) -> None:
    key = new_key()
    await store.inner.put_bytes(key, b"%PDF-1.7 stored before encryption, long enough " * 4)

    with pytest.raises(ObjectUnreadable, match="does not open"):
        await store.get_stream(key)


async def test_get_stream_after_rotation_opens_old_key(object_store: S3ObjectStore) -> None:
    key, fresh = new_key(), new_key()
    await EncryptedObjectStore(object_store, KEYS).put_bytes(key, PHRASE)
    rotated = EncryptedObjectStore(object_store, KEYS.rotated())
    await rotated.put_bytes(fresh, PHRASE)

    assert await read_all(rotated, key) == PHRASE
    assert await read_all(rotated, fresh) == PHRASE
    # What the new primary key sealed, the keyset from before rotation does not open.
    with pytest.raises(ObjectUnreadable):
        await EncryptedObjectStore(object_store, KEYS).get_stream(fresh)


async def test_get_stream_unknown_key_raises_clear_error(object_store: S3ObjectStore) -> None:
    key = new_key()
    await EncryptedObjectStore(object_store, KEYS).put_bytes(key, PHRASE)
    other = EncryptedObjectStore(object_store, EncryptionKeys.generate())

    with pytest.raises(ObjectUnreadable, match="SECURE_EMAIL_OBJECT_KEYSET does not hold"):
        await other.get_stream(key)


def test_plaintext_size_inverts_ciphertext_size() -> None:
    for size in (0, 1, SEGMENT_SIZE - 57, SEGMENT_SIZE - 56, SEGMENT_SIZE, 3 * SEGMENT_SIZE + 7):
        assert plaintext_size(ciphertext_size(size)) == size
    for impossible in (10, ciphertext_size(THREE_SEGMENTS) - 12):
        with pytest.raises(ObjectUnreadable, match="truncated"):
            plaintext_size(impossible)


async def test_get_stream_closed_early_stops(store: EncryptedObjectStore) -> None:
    key = new_key()
    await store.put_bytes(key, b"a" * MiB)

    # A download the patient abandons must leave the store usable, again and again.
    for _ in range(30):
        chunks = await store.get_stream(key)
        assert await anext(chunks) == b"a" * DEFAULT_CHUNK_SIZE
        await chunks.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(chunks)

    assert await read_all(store, key) == b"a" * MiB


async def test_secure_object_store_encrypts_with_settings_keyset(
    s3_server: S3Server, tmp_path: Path
) -> None:
    settings = s3_server.settings(f"test-{uuid.uuid4().hex}").model_copy(
        update={**KEYS.settings_fields(), "data_dir": tmp_path}
    )
    store = secure_object_store(settings)
    await store.ensure_bucket()
    key = new_key()

    await store.put_bytes(key, PHRASE)

    assert await read_all(store, key) == PHRASE
    assert PHRASE not in on_disk(s3_server, store, key).read_bytes()
    assert await read_all(EncryptedObjectStore(store.inner, KEYS), key) == PHRASE
