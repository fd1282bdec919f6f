"""What an object store offers its callers: protocols without implementations.

``ObjectStore`` is one bucket of objects; ``ObjectStream`` is one object opened for
reading. ``infra.objects.s3`` and ``infra.objects.encrypted`` implement them, on the
shared behaviour of ``infra.objects.base``. Whatever the vendor client raises when the
store is down or failing arrives as ``StoreUnavailable``, so no caller imports minio or
urllib3.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from domain.attachments import StoredAttachment

DEFAULT_CONTENT_TYPE = "application/octet-stream"


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


class ObjectStream(Protocol):
    """One object's content, chunk by chunk, holding a connection until it is closed:
    ``async with await store.get_stream(key) as chunks: async for chunk in chunks``.

    It closes itself at the end of the content and on an error. ``size`` is the
    content's size when known before the first chunk.
    """

    size: int | None

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    async def __anext__(self) -> bytes: ...

    async def aclose(self) -> None:
        """Release the connection; reading on gives no more chunks."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None: ...


class ObjectStore(Protocol):
    """One bucket of objects. Raises ``ObjectNotFound``, ``ObjectTooLarge`` and
    ``StoreUnavailable``; an encrypted store also ``ObjectUnreadable``. Keys are built
    with ``infra.objects.keys.object_key``; any other key is refused with ``ValueError``.
    """

    async def check(self, *, timeout: float) -> None:
        """Readiness within ``timeout``: raises when the store cannot serve."""

    async def ensure_bucket(self) -> None:
        """Create the bucket unless it exists; safe when several processes start at once."""

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

    async def put_chunks(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Stream an async source of chunks into ``key``, as ``put_file`` does; memory
        holds the part being uploaded, never the whole upload."""

    async def put_bytes(
        self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> StoredObject:
        """Store a small object that is already in memory."""

    async def get_stream(self, key: str, *, chunk_size: int | None = None) -> ObjectStream:
        """Open ``key`` for reading; raises ``ObjectNotFound`` now rather than mid-stream,
        so a web handler can answer 404 before it has begun a streaming response."""

    async def delete(self, key: str) -> None:
        """Remove ``key``; removing a key that is not there is not an error (retries)."""

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    async def size(self, key: str) -> int:
        """The size of the object under ``key``, as ``get_stream`` would read it."""
