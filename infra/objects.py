"""The object store adapter: attachments and chart documents in MinIO or any S3.

Object keys are built by callers from ids only (``object_key("replies", reply_id,
attachment_id)``), never from file names or subjects: keys show up in server logs,
listings and the bucket's directory tree, and a patient's file name may be PHI. The file
name and the content type travel beside the key in ``domain.attachments.AttachmentRef``.

``ObjectStore`` is the small protocol every caller uses; ``S3ObjectStore`` is the minio
implementation, and ``infra.encrypted_objects.EncryptedObjectStore`` wraps any store to
seal what goes into it. Whatever the vendor client raises when the store is down or
failing arrives as ``StoreUnavailable``, so no caller imports minio or urllib3.

Uploads are streamed: the minio client reads one part (``part_size``, 5 MiB) at a time
from a file-like object and uploads parts one after another, so a 20 MB file is never
held whole in memory (the peak is two parts, three when the length is unknown). Every
blocking minio call runs in ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import re
from abc import abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Protocol, Self, TypeVar, cast, runtime_checkable

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error
from urllib3 import BaseHTTPResponse
from urllib3.exceptions import HTTPError

from domain.attachments import StoredAttachment
from infra.settings import Settings

# minio's (and S3's) minimum part size; memory per upload is a small multiple of it.
DEFAULT_PART_SIZE = 5 * 1024 * 1024
DEFAULT_CHUNK_SIZE = 64 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"

# How long an upload thread waits for the next chunk from an async source before giving
# up, so a stalled or abandoned producer cannot pin a worker thread forever.
_CHUNK_WAIT_SECONDS = 300.0

# Segments are ids: letters, digits, '-', '_' and inner dots. No leading dot, which also
# keeps clear of rclone's reserved ".rclone_temp_" names and hidden files on disk.
_KEY_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}")
_MAX_KEY_BYTES = 1024

# What minio raises when the store is down or failing: its own errors, and urllib3's
# once its retries are spent (connection refused, timeouts).
_VENDOR_ERRORS = (MinioException, HTTPError)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound"})
_BUCKET_EXISTS_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_ERROR_CODE_IN_BODY = re.compile(r"<Code>([^<]+)</Code>")

_T = TypeVar("_T")


class ObjectNotFound(LookupError):
    """No object is stored under the key: it was never stored, or it was deleted."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under {key!r}")
        self.key = key


class ObjectTooLarge(ValueError):
    """An upload grew past the limit it was given; nothing was stored under the key."""

    def __init__(self, key: str, max_bytes: int) -> None:
        super().__init__(f"object {key!r} is larger than {max_bytes} bytes")
        self.key = key
        self.max_bytes = max_bytes


class ObjectUnreadable(ValueError):
    """An object is stored under the key but does not open: altered, cut short, sealed
    under a key this server does not hold, or copied from under another key."""


class StoreUnavailable(Exception):
    """The object store is down or failing; what was being stored was not kept."""


@dataclass(frozen=True)
class StoredObject:
    """What an upload stored: its size and SHA-256, counted while it streamed past."""

    key: str
    size: int
    sha256: str

    def as_attachment(
        self, attachment_id: str, filename: str, content_type: str
    ) -> StoredAttachment:
        """The stored file as a secure email or a reply names it."""
        return StoredAttachment(
            attachment_id=attachment_id,
            object_key=self.key,
            filename=filename,
            size=self.size,
            content_type=content_type,
            sha256=self.sha256,
        )


class Readable(Protocol):
    """Anything with a blocking ``read(size)``: files, SpooledTemporaryFile, BytesIO."""

    def read(self, size: int = -1, /) -> bytes: ...


@runtime_checkable
class _Seekable(Protocol):
    def seekable(self) -> bool: ...
    def tell(self) -> int: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...


def object_key(*parts: str) -> str:
    """Join id segments into an object key, refusing anything that is not an id."""
    if any("/" in part for part in parts):
        raise ValueError("object key parts are ids and must not contain '/'")
    key = "/".join(parts)
    validate_key(key)
    return key


def validate_key(key: str) -> None:
    """Refuse keys that are not made of ids.

    S3 servers that map keys to files (rclone, MinIO) refuse ``.``/``..`` segments, ``//``
    and leading or trailing slashes; refusing them here gives one clear error everywhere.
    """
    if not key or len(key.encode()) > _MAX_KEY_BYTES:
        raise ValueError("an object key must be 1 to 1024 bytes long")
    for segment in key.split("/"):
        if not _KEY_SEGMENT.fullmatch(segment):
            raise ValueError(
                f"invalid object key {key!r}: build keys from ids "
                "(letters, digits, '-', '_', '.') joined by '/'"
            )


class ClosingStream(AsyncIterator[bytes]):
    """Chunks that hold a connection until ``aclose()``: ``async with`` closes them."""

    @abstractmethod
    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class ObjectStream(ClosingStream):
    """The content of one object, read chunk by chunk; close it (or read to the end).

    Usable as ``async with await store.get_stream(key) as chunks: async for chunk in
    chunks``. It releases the HTTP connection at the end of the content, on ``aclose()``,
    on an error, and as a last resort when garbage-collected.
    """

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


class ObjectChunks(Protocol):
    """An open object's content, chunk by chunk: ``async with ... as chunks: async for``.

    ``size`` is the content's size when known before the first chunk (Content-Length).
    """

    size: int | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...
    async def __anext__(self) -> bytes: ...
    async def aclose(self) -> None: ...
    async def __aenter__(self) -> Self: ...
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class ObjectStore(Protocol):
    """One bucket of objects. Raises ``ObjectNotFound``, ``ObjectTooLarge`` and
    ``StoreUnavailable``; an encrypted store also ``ObjectUnreadable``.

    ``put_chunks`` and ``put_bytes`` are ``put_file`` over another source: a store that
    subclasses this protocol inherits them."""

    async def check(self, *, timeout: float) -> None:
        """Readiness within ``timeout``: raises when the store cannot serve."""
        ...

    async def ensure_bucket(self) -> None: ...

    async def put_file(
        self,
        key: str,
        fileobj: Readable,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_bytes: int | None = None,
    ) -> StoredObject: ...

    async def put_chunks(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Stream an async source of chunks into ``key`` (see ``put_file``).

        The upload thread pulls each chunk from the event loop when it needs it, so memory
        holds the part being uploaded (and minio's copies of it), never the whole upload.
        """
        return await self.put_file(key, blocking_reader(chunks), content_type, max_bytes=max_bytes)

    async def put_bytes(
        self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> StoredObject:
        """Store a small object that is already in memory."""
        return await self.put_file(key, io.BytesIO(data), content_type)

    async def get_stream(self, key: str, *, chunk_size: int | None = None) -> ObjectChunks: ...

    async def delete(self, key: str) -> None: ...

    async def exists(self, key: str) -> bool: ...

    async def size(self, key: str) -> int: ...


class Meter:
    """Counts and hashes the bytes of one upload, stopping it past ``max_bytes``.

    As a reader (``Meter(key, max_bytes, source)``) it counts what is read through it;
    ``count`` counts bytes handed to it otherwise. ``ObjectTooLarge`` raised inside
    minio's read loop aborts the multipart upload, so nothing is stored.
    """

    def __init__(self, key: str, max_bytes: int | None, source: Readable | None = None) -> None:
        self._key = key
        self._max_bytes = max_bytes
        self._source = source
        self.size = 0
        self.sha256 = hashlib.sha256()

    @classmethod
    def upload(cls, key: str, max_bytes: int | None, source: Readable, length: int | None) -> Meter:
        """A meter over an upload of ``length`` bytes (None if unknown): one known to be
        over ``max_bytes`` is refused now, before anything is uploaded."""
        if length is not None and max_bytes is not None and length > max_bytes:
            raise ObjectTooLarge(key, max_bytes)
        return cls(key, max_bytes, source)

    def read(self, size: int = -1, /) -> bytes:
        if self._source is None:
            raise io.UnsupportedOperation("this meter has no source to read")
        data = self._source.read(size)
        self.count(data)
        return data

    def count(self, data: bytes) -> None:
        self.size += len(data)
        if self._max_bytes is not None and self.size > self._max_bytes:
            raise ObjectTooLarge(self._key, self._max_bytes)
        self.sha256.update(data)

    def stored(self) -> StoredObject:
        return StoredObject(key=self._key, size=self.size, sha256=self.sha256.hexdigest())


class S3ObjectStore(ObjectStore):
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
        """Create the bucket unless it exists; safe when several processes start at once."""
        try:
            if await asyncio.to_thread(self._client.bucket_exists, self.bucket):
                return
            await asyncio.to_thread(self._client.make_bucket, self.bucket)
        except MinioException as error:
            if _error_code(error) not in _BUCKET_EXISTS_CODES:
                raise StoreUnavailable(str(error)) from error
        except HTTPError as error:
            raise StoreUnavailable(str(error)) from error

    async def put_file(
        self,
        key: str,
        fileobj: Readable,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Stream ``fileobj`` from its current position to its end into ``key``.

        Meant for Starlette's ``UploadFile.file`` (a SpooledTemporaryFile). Raises
        ``ObjectTooLarge`` when more than ``max_bytes`` would be stored (before uploading
        anything if the file is seekable, else as soon as the limit is passed); the
        partial upload is then aborted and nothing is stored.
        """
        validate_key(key)
        try:
            return await asyncio.to_thread(self._put, key, fileobj, content_type, max_bytes)
        except _VENDOR_ERRORS as error:
            raise StoreUnavailable(str(error)) from error

    async def get_stream(self, key: str, *, chunk_size: int | None = None) -> ObjectStream:
        """Open ``key`` for reading; raises ``ObjectNotFound`` now rather than mid-stream.

        Opening before the first chunk lets a web handler answer 404 before it has begun a
        streaming response.
        """
        response = await self._on_key(self._client.get_object, key)
        return ObjectStream(response, chunk_size or self._chunk_size)

    async def delete(self, key: str) -> None:
        """Remove ``key``; removing a key that is not there is not an error (retries)."""
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

    def _put(
        self, key: str, fileobj: Readable, content_type: str, max_bytes: int | None
    ) -> StoredObject:
        length = remaining_length(fileobj)
        meter = Meter.upload(key, max_bytes, fileobj, length)
        self._client.put_object(
            self.bucket,
            key,
            cast(BinaryIO, meter),
            # A known length spares minio reading one byte past each part to find the end,
            # which costs a copy of every part.
            length=-1 if length is None else length,
            content_type=content_type,
            part_size=self._part_size,
            num_parallel_uploads=self._parallel_parts,
        )
        return meter.stored()


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


class _ChunkReader:
    """A blocking ``read()`` over chunks fetched one at a time by ``next_chunk``."""

    def __init__(self, next_chunk: Callable[[], bytes | None]) -> None:
        self._next_chunk = next_chunk
        self._buffer = bytearray()
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        while not self._done and (size < 0 or len(self._buffer) < size):
            chunk = self._next_chunk()
            if chunk is None:
                self._done = True
            else:
                self._buffer += chunk
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


def blocking_reader(chunks: AsyncIterable[bytes]) -> Readable:
    """A blocking ``read()`` over an async source, for a worker thread: each chunk is
    pulled from the running event loop when the thread needs it, never all at once."""
    loop = asyncio.get_running_loop()
    iterator = aiter(chunks)

    def next_chunk() -> bytes | None:
        future = asyncio.run_coroutine_threadsafe(_anext_or_none(iterator), loop)
        return future.result(timeout=_CHUNK_WAIT_SECONDS)

    return _ChunkReader(next_chunk)


def remaining_length(fileobj: Readable) -> int | None:
    """Bytes from the current position to the end, or None if that cannot be known."""
    if not isinstance(fileobj, _Seekable) or not fileobj.seekable():
        return None
    start = fileobj.tell()
    end = fileobj.seek(0, io.SEEK_END)
    fileobj.seek(start)
    return max(end - start, 0)


async def _anext_or_none(iterator: AsyncIterator[bytes]) -> bytes | None:
    try:
        return await anext(iterator)
    except StopAsyncIteration:
        return None


def _error_code(error: MinioException) -> str | None:
    if isinstance(error, S3Error):
        return error.code
    if isinstance(error, InvalidResponseError):
        # minio only parses errors sent as application/xml; rclone sends text/xml, which
        # arrives here with the XML body in the message.
        match = _ERROR_CODE_IN_BODY.search(str(error))
        return match.group(1) if match else None
    return None
