"""Every stored object, copied out exactly as stored (still sealed) and put back.

Objects stream in chunks between the bucket and files under ``DIR/objects/<key>``
(keys are ids joined by '/', ``infra.objects.keys``), so memory holds a chunk, never an
object. Each object's size and SHA-256 are counted while it streams, for the manifest,
and counted again when it is put back.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

from minio import Minio
from minio.error import MinioException
from urllib3.exceptions import HTTPError

from infra.objects.encrypted import STORED_CONTENT_TYPE
from infra.objects.interface import StoreUnavailable
from infra.objects.keys import validate_key
from infra.objects.s3 import S3ObjectStore
from infra.settings import Settings

OBJECTS_DIR = "objects"
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    size: int
    sha256: str


class RawBucket:
    """The bucket as stored, without the encryption layer: keys, and objects as bytes."""

    def __init__(self, settings: Settings) -> None:
        self._client = Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region="us-east-1",
        )
        self.bucket = settings.s3_bucket
        self.store = S3ObjectStore(self._client, settings.s3_bucket)

    async def keys(self) -> list[str]:
        """Every key in the bucket, sorted (none if the bucket does not exist yet)."""

        def listing() -> list[str]:
            if not self._client.bucket_exists(self.bucket):
                return []
            return sorted(
                str(item.object_name)
                for item in self._client.list_objects(self.bucket, recursive=True)
                if item.object_name is not None and not item.is_dir
            )

        try:
            return await asyncio.to_thread(listing)
        except (MinioException, HTTPError) as error:
            raise StoreUnavailable(str(error)) from error


def path_of(directory: Path, key: str) -> Path:
    validate_key(key)  # ids joined by '/': no '..', no absolute path
    return directory / OBJECTS_DIR / key


async def copy_out(bucket: RawBucket, key: str, directory: Path) -> ObjectEntry:
    """Streams one object into its file; its size and SHA-256 as they streamed."""
    target = path_of(directory, key)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    with target.open("wb") as file:
        async with await bucket.store.get_stream(key, chunk_size=CHUNK) as chunks:
            async for chunk in chunks:
                digest.update(chunk)
                size += len(chunk)
                await asyncio.to_thread(file.write, chunk)
    return ObjectEntry(key, size, digest.hexdigest())


def _hash_file(path: Path) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with path.open("rb") as file:
        while chunk := file.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


async def problem_with(directory: Path, entry: ObjectEntry) -> str | None:
    """Why the backup's copy of ``entry`` cannot be restored, or None if it matches."""
    path = path_of(directory, entry.key)
    if not path.is_file():
        return f"{entry.key}: missing from the backup"
    size, sha256 = await asyncio.to_thread(_hash_file, path)
    if (size, sha256) != (entry.size, entry.sha256):
        return f"{entry.key}: changed since the backup (size or SHA-256 differs)"
    return None


async def copy_in(bucket: RawBucket, entry: ObjectEntry, directory: Path) -> str | None:
    """Streams one object back into the bucket; a problem if what was stored is not
    what the manifest names."""
    with path_of(directory, entry.key).open("rb") as file:
        stored = await bucket.store.put_file(entry.key, file, STORED_CONTENT_TYPE)
    if (stored.size, stored.sha256) != (entry.size, entry.sha256):
        return f"{entry.key}: stored differently from the backup (size or SHA-256 differs)"
    return None
