"""Attachments encrypted at rest: every object is sealed before it leaves the process.

``EncryptedObjectStore`` wraps any ``ObjectStore`` (composition) and keeps its
streaming: uploads are sealed with Tink streaming AEAD (AES256_GCM_HKDF_4KB, the object
keyset of ``infra.crypto.keys``) as the inner store reads them, downloads are opened a
segment (4 KiB) at a time as they are sent, and a segment leaves only once checked. The
S3 service, its disks and its backups see only ciphertext, stored as
``application/octet-stream``: the real content type, like the file name, lives in our
database. Sizes and SHA-256 digests returned and reported are the plaintext's, which is
what callers record and what patients download.

The storage key is the associated data, so an object copied under another key does not
open; Tink's last-segment flag catches an object cut short. Objects written before Tink
(or before encryption) do not open either (a clear ``ObjectUnreadable``): they are
development data, not worth a fallback that would also accept a plaintext planted by
anyone with access to the bucket.
"""

from __future__ import annotations

import asyncio
import io
from collections import deque
from typing import cast

import tink

from infra.crypto.keys import (
    OBJECT_KEY_BYTES,
    OBJECT_SEGMENT_BYTES,
    EncryptionKeys,
    encryption_keys,
)
from infra.objects.base import BaseObjectStore, BaseObjectStream
from infra.objects.interface import ObjectStore, ObjectStream, ObjectUnreadable, Readable
from infra.objects.s3 import object_store
from infra.objects.streaming import DEFAULT_CHUNK_SIZE, Meter, blocking_reader
from infra.settings import Settings

STORED_CONTENT_TYPE = "application/octet-stream"

# AES256_GCM_HKDF_4KB's layout: a header (its length byte, a salt as long as the key, a
# 7-byte nonce prefix), then segments of 4 KiB of ciphertext, each with a 16-byte tag; the
# first segment is shorter by the header.
_HEADER_BYTES = 1 + OBJECT_KEY_BYTES + 7
_TAG_BYTES = 16
_FIRST_PLAIN = OBJECT_SEGMENT_BYTES - _HEADER_BYTES - _TAG_BYTES
_PLAIN = OBJECT_SEGMENT_BYTES - _TAG_BYTES
# How much plaintext an upload reads at a time: Tink gathers it into segments.
_READ_BYTES = 64 * 1024


def ciphertext_size(plaintext: int) -> int:
    """What a plaintext of this size is stored as."""
    segments = 1 if plaintext <= _FIRST_PLAIN else 2 + (plaintext - _FIRST_PLAIN - 1) // _PLAIN
    return _HEADER_BYTES + plaintext + segments * _TAG_BYTES


def plaintext_size(ciphertext: int, key: str = "") -> int:
    """The plaintext size of a stored object; refuses a size no encryption produces."""
    body = ciphertext - _HEADER_BYTES
    first = _FIRST_PLAIN + _TAG_BYTES
    segments = 1 if body <= first else 2 + (body - first - 1) // OBJECT_SEGMENT_BYTES
    plaintext = body - segments * _TAG_BYTES
    if plaintext < 0 or ciphertext_size(plaintext) != ciphertext:
        raise ObjectUnreadable(f"encrypted object {key!r} is truncated: no object has its size")
    return plaintext


class DecryptedObjectStream(BaseObjectStream):
    """The plaintext of one encrypted object, read through Tink's decrypting stream.

    ``size`` is the plaintext size, worked out from the stored size before the first
    chunk. Reads run in a worker thread, which pulls ciphertext from the inner stream
    on the event loop as it needs it; a segment that fails to open raises
    ``ObjectUnreadable`` mid-stream and releases the connection.
    """

    def __init__(
        self, key: str, ciphertext: ObjectStream, plaintext: io.BufferedIOBase, size: int | None
    ) -> None:
        self._key = key
        self._ciphertext = ciphertext
        self._plaintext: io.BufferedIOBase | None = plaintext
        self._first: bytes | None = None
        self.size = size

    async def open(self) -> None:
        """Read the first chunk now, so a wrong key or an altered header raises before a
        web handler has begun its response."""
        self._first = await self._read()

    async def __anext__(self) -> bytes:
        chunk, self._first = self._first, None
        if chunk is None:
            chunk = await self._read()
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def _read(self) -> bytes:
        plaintext = self._plaintext
        if plaintext is None:
            return b""
        try:
            return await asyncio.to_thread(plaintext.read, DEFAULT_CHUNK_SIZE)
        except tink.TinkError as error:
            await self.aclose()
            raise ObjectUnreadable(
                f"encrypted object {self._key!r} does not open: altered, truncated, sealed "
                "with a key SECURE_EMAIL_OBJECT_KEYSET does not hold, or copied from "
                f"another key ({error})"
            ) from None
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        self._plaintext = None
        self._first = None
        await self._ciphertext.aclose()


class EncryptedObjectStore(BaseObjectStore):
    """An ``ObjectStore`` whose objects are sealed with the object keyset (module doc);
    every call goes through ``inner``, which sees only ciphertext."""

    def __init__(self, inner: ObjectStore, keys: EncryptionKeys) -> None:
        self._inner = inner
        self._keys = keys

    @property
    def inner(self) -> ObjectStore:
        """The plain store underneath, which sees only ciphertext."""
        return self._inner

    async def check(self, *, timeout: float) -> None:
        await self._inner.check(timeout=timeout)

    async def ensure_bucket(self) -> None:
        await self._inner.ensure_bucket()

    async def _upload(self, key: str, meter: Meter, length: int | None, content_type: str) -> None:
        """Seal the plaintext ``meter`` reads (and limits) as the inner store reads it.
        ``content_type`` is not stored: the bucket would otherwise tell what kind of file
        a patient sent."""
        reader = _EncryptingReader(meter, self._keys, key, length)
        await self._inner.put_file(key, reader, STORED_CONTENT_TYPE)

    async def get_stream(self, key: str, *, chunk_size: int | None = None) -> DecryptedObjectStream:
        """Open ``key``; ``ObjectNotFound``, a key the keyset lacks, an altered header or
        a cut-short object raise now. ``chunk_size`` is how much ciphertext is read at a
        time."""
        ciphertext = await self._inner.get_stream(key, chunk_size=chunk_size)
        try:
            size = None if ciphertext.size is None else plaintext_size(ciphertext.size, key)
            source = cast(io.RawIOBase, _RawReader(blocking_reader(ciphertext)))
            plaintext = self._keys.objects.new_decrypting_stream(source, key.encode())
        except BaseException:
            await ciphertext.aclose()
            raise
        stream = DecryptedObjectStream(key, ciphertext, plaintext, size)
        await stream.open()
        return stream

    async def delete(self, key: str) -> None:
        await self._inner.delete(key)

    async def exists(self, key: str) -> bool:
        return await self._inner.exists(key)

    async def size(self, key: str) -> int:
        """The plaintext size, from the stored size (nothing is read)."""
        return plaintext_size(await self._inner.size(key), key)


def secure_object_store(settings: Settings) -> EncryptedObjectStore:
    """The object store every process uses for attachments: encrypted with the keysets."""
    return EncryptedObjectStore(object_store(settings), encryption_keys(settings))


class _RawReader(io.RawIOBase):
    """A ``Readable`` as the raw binary file Tink's decrypting stream reads from."""

    def __init__(self, source: Readable) -> None:
        super().__init__()
        self._source = source

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._source.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class _Sink(io.RawIOBase):
    """Where Tink's encrypting stream writes; closing it (Tink does) keeps the bytes."""

    def __init__(self) -> None:
        super().__init__()
        self.pieces: deque[bytes] = deque()
        self.pending = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.pieces.append(bytes(data))
        self.pending += len(data)
        return len(data)

    def take(self, size: int) -> bytes:
        """Up to ``size`` bytes (all if negative), each piece dropped once copied."""
        out = io.BytesIO()
        while self.pieces and (size < 0 or out.tell() < size):
            piece = self.pieces.popleft()
            room = len(piece) if size < 0 else size - out.tell()
            if room < len(piece):
                self.pieces.appendleft(piece[room:])
                piece = piece[:room]
            out.write(piece)
        self.pending -= out.tell()
        # BytesIO hands its buffer over without a copy: a part costs its size once.
        return out.getvalue()

    def close(self) -> None:
        """Left open: the reader takes what is pending after Tink has closed."""


class _EncryptingReader:
    """A blocking ``read()`` of ciphertext over a plaintext file, sealing as it is read.

    Plaintext is read 64 KiB at a time, so the source is never asked for a whole part.
    When the plaintext length is known, the reader answers S3ObjectStore's
    length probe (tell, seek to the end, seek back) with the ciphertext length, without
    moving: minio, told the length, reads each part once instead of copying it to find
    the end.
    """

    def __init__(
        self, source: Meter, keys: EncryptionKeys, key: str, plaintext_length: int | None
    ) -> None:
        self._source = source
        self._sink = _Sink()
        self._encrypting = keys.objects.new_encrypting_stream(
            cast(io.RawIOBase, self._sink), key.encode()
        )
        self._remaining = plaintext_length
        self._length = None if plaintext_length is None else ciphertext_size(plaintext_length)
        self._position = 0
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        sink = self._sink
        while not self._done and (size < 0 or sink.pending < size):
            # Tink holds plaintext until a segment is whole; what overflows a part waits.
            wanted = _READ_BYTES
            if self._remaining is not None:
                # A known length is all that is read, as a file upload of that length is.
                wanted = min(wanted, self._remaining)
            plain = self._source.read(wanted) if wanted else b""
            if plain:
                if self._remaining is not None:
                    self._remaining -= len(plain)
                self._encrypting.write(plain)
            else:
                self._done = True
                self._encrypting.close()
        data = sink.take(size)
        self._position += len(data)
        return data

    def seekable(self) -> bool:
        return self._length is not None

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET, /) -> int:
        if self._length is not None and whence == io.SEEK_END and offset == 0:
            return self._length
        if whence == io.SEEK_SET and offset == self._position:
            return self._position
        raise io.UnsupportedOperation("an encrypting reader only reports its length")
