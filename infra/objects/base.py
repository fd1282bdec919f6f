"""What every object store shares; ``s3`` and ``encrypted`` build on it.

A store gives how it keeps an upload (``_upload``), how it opens, sizes and removes an
object; the checks before an upload and the other ways to upload are here once.
"""

from __future__ import annotations

import asyncio
import io
from abc import abstractmethod
from collections.abc import AsyncIterable
from types import TracebackType
from typing import Self

from infra.objects.interface import (
    DEFAULT_CONTENT_TYPE,
    ObjectStore,
    ObjectStream,
    Readable,
    StoredObject,
)
from infra.objects.keys import validate_key
from infra.objects.streaming import Meter, blocking_reader, remaining_length


class BaseObjectStore(ObjectStore):
    """``put_file`` refuses a bad key, and a seekable file over ``max_bytes`` before
    anything is uploaded, then hands the store a meter to upload through;
    ``put_chunks`` and ``put_bytes`` are ``put_file`` over another source."""

    async def put_file(
        self,
        key: str,
        fileobj: Readable,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        validate_key(key)
        length = await asyncio.to_thread(remaining_length, fileobj)
        meter = Meter.upload(key, max_bytes, fileobj, length)
        await self._upload(key, meter, length, content_type)
        return meter.stored()

    @abstractmethod
    async def _upload(self, key: str, meter: Meter, length: int | None, content_type: str) -> None:
        """Store everything read from ``meter`` under ``key``: ``length`` bytes, or to the
        end when None. ``ObjectTooLarge`` from the meter must leave nothing stored."""

    async def put_chunks(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        # The upload thread pulls each chunk from the event loop when it needs it, so
        # memory holds the part being uploaded (and minio's copies of it).
        return await self.put_file(key, blocking_reader(chunks), content_type, max_bytes=max_bytes)

    async def put_bytes(
        self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> StoredObject:
        return await self.put_file(key, io.BytesIO(data), content_type)


class BaseObjectStream(ObjectStream):
    """An open object is its own iterator and closes on leaving ``async with``; a stream
    gives ``__anext__``, ``aclose`` and ``size``."""

    def __aiter__(self) -> Self:
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
