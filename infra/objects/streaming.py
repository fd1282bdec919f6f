"""Blocking reads for worker threads, and the meter that counts an upload.

Every blocking store call runs in ``asyncio.to_thread``; these let such a thread read
from an async source one chunk at a time, learn how long a file is without reading it,
and count, hash and limit what it uploads as it goes.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Protocol, runtime_checkable

from infra.objects.interface import ObjectTooLarge, Readable, StoredObject

DEFAULT_CHUNK_SIZE = 64 * 1024

# How long an upload thread waits for the next chunk from an async source before giving
# up, so a stalled or abandoned producer cannot pin a worker thread forever.
_CHUNK_WAIT_SECONDS = 300.0


@runtime_checkable
class _Seekable(Protocol):
    def seekable(self) -> bool: ...
    def tell(self) -> int: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...


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
