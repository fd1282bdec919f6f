"""The store of one S3 bucket (MinIO, rclone or any S3), over the minio client.

Uploads are streamed: the minio client reads one part (``part_size``, 5 MiB) at a time
from a file-like object and uploads parts one after another, so a 20 MB file is never
held whole in memory (the peak is two parts, three when the length is unknown). Every
blocking minio call runs in ``asyncio.to_thread``, and what minio or urllib3 raise when
the store is down or failing arrives as ``StoreUnavailable``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Callable
from typing import BinaryIO, TypeVar, cast

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError

from infra.objects.base import BaseObjectStore, BaseObjectStream
from infra.objects.interface import ObjectNotFound, StoreUnavailable
from infra.objects.keys import validate_key
from infra.objects.streaming import DEFAULT_CHUNK_SIZE, Meter
from infra.settings import Settings

# minio's (and S3's) minimum part size; memory per upload is a small multiple of it.
DEFAULT_PART_SIZE = 5 * 1024 * 1024

# What minio raises when the store is down or failing: its own errors, and urllib3's
# once its retries are spent (connection refused, timeouts).
_VENDOR_ERRORS = (MinioException, HTTPError)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
_BUCKET_EXISTS_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_ERROR_CODE_IN_BODY = re.compile(r"<Code>([^<]+)</Code>")

_T = TypeVar("_T")


class S3ObjectStore(BaseObjectStore):
    """One bucket of an S3 service, with async methods over the blocking minio client."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        parallel_parts: int = 1,
        probe: Callable[[float], Minio] | None = None,
    ) -> None:
        if part_size < DEFAULT_PART_SIZE:
            raise ValueError("S3 multipart parts must be at least 5 MiB")
        if parallel_parts < 1:
            raise ValueError("parallel_parts must be at least 1")
        self._client = client
        self.bucket = bucket
        self._part_size = part_size
        self._chunk_size = chunk_size
        # minio uploads 3 parts at once by default, holding each in memory: 20 MiB in all
        # for a 20 MB attachment. One at a time bounds an upload to one part, and it sends
        # parts in order, which rclone's S3 server streams without buffering.
        self._parallel_parts = parallel_parts
        self._probe = probe

    async def check(self, *, timeout: float) -> None:
        """Readiness: the bucket answers within ``timeout``; ``LookupError`` if it is
        missing. A probe client of its own (short timeouts, no retries) when the store was
        made by ``object_store``: the main client waits minutes and retries, which would
        keep a thread busy long after the caller gave up on a store that is down."""
        client = self._client if self._probe is None else self._probe(timeout)
        try:
            found = await asyncio.to_thread(client.bucket_exists, self.bucket)
        except _VENDOR_ERRORS as error:
            raise StoreUnavailable(str(error)) from error
        if not found:
            raise LookupError("bucket missing")

    async def ensure_bucket(self) -> None:
        try:
            if await asyncio.to_thread(self._client.bucket_exists, self.bucket):
                return
            await asyncio.to_thread(self._client.make_bucket, self.bucket)
        except MinioException as error:
            if _error_code(error) not in _BUCKET_EXISTS_CODES:
                raise StoreUnavailable(str(error)) from error
        except HTTPError as error:
            raise StoreUnavailable(str(error)) from error

    async def _upload(self, key: str, meter: Meter, length: int | None, content_type: str) -> None:
        try:
            await asyncio.to_thread(
                self._client.put_object,
                self.bucket,
                key,
                cast(BinaryIO, meter),
                # A known length spares minio reading one byte past each part to find the
                # end, which costs a copy of every part.
                length=-1 if length is None else length,
                content_type=content_type,
                part_size=self._part_size,
                num_parallel_uploads=self._parallel_parts,
            )
        except _VENDOR_ERRORS as error:
            raise StoreUnavailable(str(error)) from error

    async def get_stream(self, key: str, *, chunk_size: int | None = None) -> S3ObjectStream:
        response = await self._on_key(self._client.get_object, key)
        return S3ObjectStream(response, chunk_size or self._chunk_size)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(ObjectNotFound):
            await self._on_key(self._client.remove_object, key)

    async def exists(self, key: str) -> bool:
        try:
            await self.size(key)
        except ObjectNotFound:
            return False
        return True

    async def size(self, key: str) -> int:
        stat = await self._on_key(self._client.stat_object, key)
        if stat.size is None:
            raise RuntimeError(f"the object store reported no size for {key!r}")
        return stat.size

    async def _on_key(self, call: Callable[[str, str], _T], key: str) -> _T:
        """``call(bucket, key)`` in a worker thread: ``ObjectNotFound`` when nothing is
        stored under ``key``, ``StoreUnavailable`` when the store is down or failing."""
        validate_key(key)
        try:
            return await asyncio.to_thread(call, self.bucket, key)
        except MinioException as error:
            if _error_code(error) in _NOT_FOUND_CODES:
                raise ObjectNotFound(key) from error
            raise StoreUnavailable(str(error)) from error
        except HTTPError as error:
            raise StoreUnavailable(str(error)) from error


def object_store(settings: Settings) -> S3ObjectStore:
    """The plain S3 store of the settings (``secure_object_store`` is what processes use)."""

    def client(http: urllib3.PoolManager | None = None) -> Minio:
        # Without a region the client first asks the server for the bucket's location,
        # which rclone's S3 server does not answer; naming the region skips that request.
        return Minio(
            settings.s3_endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key.get_secret_value(),
            secure=settings.s3_secure,
            region="us-east-1",
            http_client=http,
        )

    def probe(timeout: float) -> Minio:
        return client(
            urllib3.PoolManager(
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
                retries=urllib3.Retry(total=0),
            )
        )

    return S3ObjectStore(client(), settings.s3_bucket, probe=probe)


class S3ObjectStream(BaseObjectStream):
    """One object's content over minio's HTTP response. It releases the connection at the
    end of the content, on ``aclose()``, on an error, and as a last resort when
    garbage-collected; ``size`` is the response's Content-Length."""

    def __init__(self, response: BaseHTTPResponse, chunk_size: int) -> None:
        self._response: BaseHTTPResponse | None = response
        self._chunk_size = chunk_size
        length = response.headers.get("Content-Length")
        self.size: int | None = int(length) if length and length.isdigit() else None

    async def __anext__(self) -> bytes:
        response = self._response
        if response is None:
            raise StopAsyncIteration
        try:
            chunk = await asyncio.to_thread(response.read, self._chunk_size)
        except HTTPError as error:
            self._release()
            raise StoreUnavailable(str(error)) from error
        except BaseException:
            self._release()
            raise
        if not chunk:
            self._release()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        self._release()

    def __del__(self) -> None:
        self._release()

    def _release(self) -> None:
        response, self._response = self._response, None
        if response is not None:
            # Closing before release drops a half-read connection instead of handing the
            # pool a socket with unread content on it.
            response.close()
            response.release_conn()


def _error_code(error: MinioException) -> str | None:
    if isinstance(error, S3Error):
        return error.code
    if isinstance(error, InvalidResponseError):
        # minio only parses errors sent as application/xml; rclone sends text/xml, which
        # arrives here with the XML body in the message.
        match = _ERROR_CODE_IN_BODY.search(str(error))
        return match.group(1) if match else None
    return None
