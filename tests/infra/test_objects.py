"""ObjectStore against a real S3 server (rclone serve s3, see tests/fixtures/s3.py)."""

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
from infra.objects import s3
from infra.objects.interface import ObjectNotFound, ObjectTooLarge
from infra.objects.keys import object_key
from infra.objects.s3 import S3ObjectStore
from tests.fixtures.objects import PseudoRandomFile, measure_peak_memory, new_key, read_all
from tests.fixtures.s3 import S3Server

LARGE_SIZE = MAX_ATTACHMENT_BYTES + 1024


async def test_put_bytes_round_trips_content(object_store: S3ObjectStore) -> None:
    key = new_key()
    data = bytes(range(256)) * 1000 + b"\x00tail"

    stored = await object_store.put_bytes(key, data, "application/pdf")

    assert stored.size == len(data)
    assert stored.sha256 == hashlib.sha256(data).hexdigest()
    assert await read_all(object_store, key) == data


async def test_put_file_round_trips_spooled_upload(object_store: S3ObjectStore) -> None:
    key = new_key()
    data = random.Random(1).randbytes(3 * 1024 * 1024 + 17)
    # What Starlette's UploadFile.file is once a form upload has been received.
    with SpooledTemporaryFile(max_size=1024 * 1024) as upload:
        upload.write(data)
        upload.seek(0)
        stored = await object_store.put_file(key, upload, "image/png")

    assert stored.size == len(data)
    assert await object_store.size(key) == len(data)
    assert await read_all(object_store, key) == data


async def test_put_file_streams_large_upload(object_store: S3ObjectStore) -> None:
    key = new_key()
    source = PseudoRandomFile(LARGE_SIZE)

    stored = await object_store.put_file(key, source, "application/pdf")

    assert stored.size == LARGE_SIZE
    assert stored.sha256 == source.sha256.hexdigest()
    assert source.largest_read <= 5 * 1024 * 1024 + 1
    assert await object_store.size(key) == LARGE_SIZE
    downloaded = hashlib.sha256()
    total = 0
    async with await object_store.get_stream(key) as chunks:
        assert chunks.size == LARGE_SIZE
        async for chunk in chunks:
            assert len(chunk) <= 64 * 1024
            downloaded.update(chunk)
            total += len(chunk)
    assert total == LARGE_SIZE
    assert downloaded.hexdigest() == source.sha256.hexdigest()


async def test_put_file_streams_seekable_file_in_parts(
    object_store: S3ObjectStore, tmp_path: Path
) -> None:
    # A large upload is a SpooledTemporaryFile rolled over to disk: a seekable file.
    path = tmp_path / "upload.bin"
    source = PseudoRandomFile(LARGE_SIZE)
    with path.open("wb") as out:
        while chunk := source.read(1024 * 1024):
            out.write(chunk)

    with path.open("rb") as upload:
        stored, peak = await measure_peak_memory(object_store.put_file(new_key(), upload))

    assert stored.size == LARGE_SIZE
    assert stored.sha256 == source.sha256.hexdigest()

    # A part being read while the previous one is released: 2 x 5 MiB, not 20 MB.
    assert peak < 12 * 1024 * 1024


async def test_put_file_streams_unsized_source_in_parts(object_store: S3ObjectStore) -> None:
    source = PseudoRandomFile(LARGE_SIZE)

    stored, peak = await measure_peak_memory(object_store.put_file(new_key(), source))

    assert stored.sha256 == source.sha256.hexdigest()

    # Without a length minio copies each part to find the end: 3 x 5 MiB, not 20 MB.
    assert peak < 17 * 1024 * 1024


async def test_put_chunks_streams_async_source(object_store: S3ObjectStore) -> None:
    key = new_key()
    source = PseudoRandomFile(12 * 1024 * 1024 + 5)

    async def chunks() -> AsyncIterator[bytes]:
        while chunk := source.read(100_003):
            yield chunk
        yield b""

    stored = await object_store.put_chunks(key, chunks(), "text/plain")

    assert stored.size == 12 * 1024 * 1024 + 5
    assert stored.sha256 == source.sha256.hexdigest()
    assert await object_store.size(key) == stored.size


async def test_put_file_refuses_upload_over_limit(object_store: S3ObjectStore) -> None:
    key = new_key()

    with pytest.raises(ObjectTooLarge):
        await object_store.put_file(
            key, PseudoRandomFile(LARGE_SIZE), max_bytes=MAX_ATTACHMENT_BYTES
        )

    assert not await object_store.exists(key)


async def test_put_file_refuses_seekable_file_over_limit(object_store: S3ObjectStore) -> None:
    key = new_key()

    with pytest.raises(ObjectTooLarge):
        await object_store.put_file(key, io.BytesIO(b"x" * 100), max_bytes=99)

    assert not await object_store.exists(key)


async def test_put_file_accepts_upload_at_limit(object_store: S3ObjectStore) -> None:
    key = new_key()

    stored = await object_store.put_file(
        key, PseudoRandomFile(6 * 1024 * 1024), max_bytes=6 * 1024 * 1024
    )

    assert stored.size == 6 * 1024 * 1024


async def test_put_bytes_stores_empty_object(object_store: S3ObjectStore) -> None:
    key = new_key()

    stored = await object_store.put_bytes(key, b"")

    assert stored.size == 0
    assert await read_all(object_store, key) == b""


async def test_put_bytes_replaces_existing_object(object_store: S3ObjectStore) -> None:
    key = new_key()
    await object_store.put_bytes(key, b"first version")

    await object_store.put_bytes(key, b"second")

    assert await read_all(object_store, key) == b"second"


async def test_exists_object_after_put_and_delete(object_store: S3ObjectStore) -> None:
    key = new_key()
    assert not await object_store.exists(key)

    await object_store.put_bytes(key, b"x-ray")
    assert await object_store.exists(key)

    await object_store.delete(key)
    assert not await object_store.exists(key)


async def test_delete_object_missing_is_not_an_error(object_store: S3ObjectStore) -> None:
    await object_store.delete(new_key())


async def test_get_stream_object_missing_raises_not_found(object_store: S3ObjectStore) -> None:
    key = new_key()

    with pytest.raises(ObjectNotFound) as raised:
        await object_store.get_stream(key)

    assert raised.value.key == key


async def test_size_object_missing_raises_not_found(object_store: S3ObjectStore) -> None:
    with pytest.raises(ObjectNotFound):
        await object_store.size(new_key())


async def test_get_stream_object_closed_early_stops(object_store: S3ObjectStore) -> None:
    key = new_key()
    await object_store.put_bytes(key, b"a" * 1024 * 1024)

    # A download the patient abandons must leave the store usable, again and again.
    for _ in range(30):
        chunks = await object_store.get_stream(key, chunk_size=1024)
        assert await anext(chunks) == b"a" * 1024
        await chunks.aclose()
        with pytest.raises(StopAsyncIteration):
            await anext(chunks)

    assert await read_all(object_store, key) == b"a" * 1024 * 1024


async def test_ensure_bucket_twice_is_harmless(object_store: S3ObjectStore) -> None:
    await object_store.ensure_bucket()
    await object_store.ensure_bucket()


async def test_ensure_bucket_creates_missing_bucket(s3_server: S3Server) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:12]}"
    store = s3.object_store(s3_server.settings(bucket))

    await store.ensure_bucket()
    await store.put_bytes(new_key(), b"x")

    assert (s3_server.data_dir / bucket).is_dir()


async def test_put_bytes_stores_object_under_key(
    object_store: S3ObjectStore, s3_server: S3Server
) -> None:
    key = object_key("replies", uuid.uuid4().hex, "1")

    await object_store.put_bytes(key, b"%PDF-1.7", "application/pdf")

    stored = s3_server.data_dir / object_store.bucket / key
    assert stored.read_bytes() == b"%PDF-1.7"


@pytest.mark.parametrize(
    "key",
    ["", "../x", "a/../b", "a//b", "/a", "a/", ".hidden", "a/.rclone_temp_x", "My X-ray.pdf"],
)
async def test_put_bytes_refuses_invalid_key(object_store: S3ObjectStore, key: str) -> None:
    with pytest.raises(ValueError):
        await object_store.put_bytes(key, b"x")


@pytest.mark.parametrize("parts", [("..",), ("a", ""), ("a/b",), ("x ray",)])
def test_object_key_refuses_non_id_parts(parts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        object_key(*parts)


def test_object_key_joins_ids() -> None:
    assert object_key("replies", "0b9f", "a-1.2") == "replies/0b9f/a-1.2"


async def test_put_file_reads_from_current_position(object_store: S3ObjectStore) -> None:
    # The web layer sniffs the head of an upload and seeks back; whatever it leaves is sent.
    key = new_key()
    upload = io.BytesIO(b"HEADbody")
    upload.seek(4)

    stored = await object_store.put_file(key, upload)

    assert stored.size == 4
    assert await read_all(object_store, key) == b"body"
