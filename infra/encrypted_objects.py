"""Attachments encrypted at rest: every object is sealed before it leaves the process.

``EncryptedObjectStore`` has the ``ObjectStore`` API and keeps its streaming: uploads
are sealed segment by segment (``infra.crypto.stream``) as minio reads them, downloads
are opened segment by segment as they are sent. The S3 service, its disks and its
backups see only ciphertext, stored as ``application/octet-stream``: the real content
type, like the file name, lives in our database. Sizes and SHA-256 digests returned and
reported are the plaintext's, which is what callers record and what patients download.

The storage key is sealed into every segment, so an object copied under another key
does not open. Objects written before encryption was switched on do not open either
(a clear ``StreamDecryptionError``): they are development data, not worth a fallback
that would also accept a plaintext planted by anyone with access to the bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator
from types import TracebackType

from infra.crypto.keys import KeyRing, key_ring
from infra.crypto.stream import (
    SEGMENT_SIZE,
    StreamDecryptionError,
    StreamDecryptor,
    StreamEncryptor,
    ciphertext_size,
    plaintext_size,
)
from infra.objects import (
    DEFAULT_CONTENT_TYPE,
    ObjectStore,
    ObjectStream,
    ObjectTooLarge,
    Readable,
    StoredObject,
    _remaining_length,
    object_store,
    validate_key,
)
from infra.settings import Settings

STORED_CONTENT_TYPE = "application/octet-stream"
# Enough ciphertext to hold any header (a key id is at most 255 bytes).
_HEADER_PROBE_BYTES = 1024


class DecryptedObjectStream(ObjectStream):
    """The plaintext of one encrypted object, a checked segment (≤ 64 KiB) at a time.

    ``size`` is the plaintext size, worked out from the stored size before the first
    chunk, so a download can announce its Content-Length; a stored object whose size no
    encryptor produces (cut short) is refused before anything is sent. A segment that
    fails to open raises mid-stream and releases the connection.
    """

    def __init__(
        self,
        ciphertext: ObjectStream,
        decryptor: StreamDecryptor,
        size: int | None,
        opened: list[bytes],
    ) -> None:
        # ObjectStream.__init__ is skipped on purpose: the HTTP response belongs to the
        # ciphertext stream, which releases it; this class only needs the type's API.
        self._response = None
        self._ciphertext = ciphertext
        self._decryptor = decryptor
        self._opened = deque(chunk for chunk in opened if chunk)
        self._done = False
        self.size = size

    async def __anext__(self) -> bytes:
        try:
            while not self._opened:
                if self._done:
                    raise StopAsyncIteration
                chunk = await anext(self._ciphertext, None)
                if chunk is None:
                    self._done = True
                    opened = self._decryptor.finish()
                else:
                    opened = self._decryptor.update(chunk)
                self._opened.extend(piece for piece in opened if piece)
        except StopAsyncIteration:
            raise
        except BaseException:
            await self.aclose()
            raise
        return self._opened.popleft()

    async def aclose(self) -> None:
        self._done = True
        self._opened.clear()
        await self._ciphertext.aclose()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class EncryptedObjectStore(ObjectStore):
    """An ``ObjectStore`` whose objects are sealed with the key ring (see module doc).

    It derives from ``ObjectStore`` only to go wherever one is expected (the app state,
    the upload helpers); it has no client of its own and sends every call through
    ``inner``, whose ``put_file`` still streams parts to S3 one at a time.
    """

    def __init__(self, inner: ObjectStore, ring: KeyRing) -> None:
        # ObjectStore.__init__ is skipped on purpose: ``inner`` owns the client.
        self._inner = inner
        self._ring = ring
        self.bucket = inner.bucket

    @property
    def inner(self) -> ObjectStore:
        """The plain store underneath, which sees only ciphertext."""
        return self._inner

    async def check(self, *, timeout: float) -> None:
        await self._inner.check(timeout=timeout)

    async def ensure_bucket(self) -> None:
        await self._inner.ensure_bucket()

    async def put_file(
        self,
        key: str,
        fileobj: Readable,
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Seal and store ``fileobj`` from its current position (see ``ObjectStore``).

        ``content_type`` is accepted for the common API and not stored: the bucket
        would otherwise tell what kind of file a patient sent. ``max_bytes`` limits the
        plaintext; a seekable file over it is refused before anything is uploaded.
        """
        validate_key(key)
        length = await asyncio.to_thread(_remaining_length, fileobj)
        if length is not None and max_bytes is not None and length > max_bytes:
            raise ObjectTooLarge(key, max_bytes)
        meter = _Meter(key, max_bytes)
        reader = _EncryptingReader(
            fileobj, StreamEncryptor(self._ring, key.encode()), meter, length
        )
        await self._inner.put_file(key, reader, STORED_CONTENT_TYPE)
        return meter.stored()

    async def put_chunks(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        content_type: str = DEFAULT_CONTENT_TYPE,
        *,
        max_bytes: int | None = None,
    ) -> StoredObject:
        """Seal and store an async source of chunks (see ``put_file``)."""
        validate_key(key)
        encryptor = StreamEncryptor(self._ring, key.encode())
        meter = _Meter(key, max_bytes)

        async def sealed() -> AsyncIterator[bytes]:
            async for chunk in chunks:
                meter.count(chunk)
                for piece in encryptor.update(chunk):
                    yield piece
            for piece in encryptor.finish():
                yield piece

        await self._inner.put_chunks(key, sealed(), STORED_CONTENT_TYPE)
        return meter.stored()

    async def put_bytes(
        self, key: str, data: bytes, content_type: str = DEFAULT_CONTENT_TYPE
    ) -> StoredObject:
        return await self.put_file(key, io.BytesIO(data), content_type)

    async def get_stream(self, key: str, *, chunk_size: int | None = None) -> DecryptedObjectStream:
        """Open ``key``; ``ObjectNotFound``, an unknown key id or a cut-short object raise
        now, before a web handler has begun its response. ``chunk_size`` is how much
        ciphertext is read at a time; chunks come out as whole segments."""
        ciphertext = await self._inner.get_stream(key, chunk_size=chunk_size)
        try:
            decryptor = StreamDecryptor(self._ring, key.encode())
            opened: list[bytes] = []
            while decryptor.header_size is None:
                chunk = await anext(ciphertext, None)
                if chunk is None:
                    raise StreamDecryptionError(
                        f"encrypted object {key!r} is truncated: its header is incomplete"
                    )
                opened.extend(decryptor.update(chunk))
            size = (
                None
                if ciphertext.size is None
                else plaintext_size(ciphertext.size, decryptor.header_size)
            )
        except BaseException:
            await ciphertext.aclose()
            raise
        return DecryptedObjectStream(ciphertext, decryptor, size, opened)

    async def delete(self, key: str) -> None:
        await self._inner.delete(key)

    async def exists(self, key: str) -> bool:
        return await self._inner.exists(key)

    async def size(self, key: str) -> int:
        """The plaintext size; reads the header, which says how much of the object is
        not content."""
        async with await self.get_stream(key, chunk_size=_HEADER_PROBE_BYTES) as stream:
            if stream.size is None:
                raise RuntimeError(f"the object store reported no size for {key!r}")
            return stream.size


def secure_object_store(settings: Settings) -> EncryptedObjectStore:
    """The object store every process uses for attachments: encrypted with the key ring."""
    return EncryptedObjectStore(object_store(settings), key_ring(settings))


class _Meter:
    """Counts and hashes the plaintext (what callers record), stopping at ``max_bytes``."""

    def __init__(self, key: str, max_bytes: int | None) -> None:
        self._key = key
        self._max_bytes = max_bytes
        self.size = 0
        self.sha256 = hashlib.sha256()

    def count(self, data: bytes) -> None:
        self.size += len(data)
        if self._max_bytes is not None and self.size > self._max_bytes:
            # Raised inside the upload's read loop, which aborts the multipart upload.
            raise ObjectTooLarge(self._key, self._max_bytes)
        self.sha256.update(data)

    def stored(self) -> StoredObject:
        return StoredObject(key=self._key, size=self.size, sha256=self.sha256.hexdigest())


class _EncryptingReader:
    """A blocking ``read()`` of ciphertext over a plaintext file, sealing as minio reads.

    Plaintext is read a segment at a time, so the source is never asked for a whole
    part. When the plaintext length is known, the reader answers ObjectStore's length
    probe (tell, seek to the end, seek back) with the ciphertext length, without moving:
    minio, told the length, reads each part once instead of copying it to find the end.
    """

    def __init__(
        self,
        source: Readable,
        encryptor: StreamEncryptor,
        meter: _Meter,
        plaintext_length: int | None,
    ) -> None:
        self._source = source
        self._encryptor = encryptor
        self._meter = meter
        self._remaining = plaintext_length
        self._length = (
            None
            if plaintext_length is None
            else ciphertext_size(plaintext_length, len(encryptor.header))
        )
        self._position = 0
        self._pending = b""
        self._done = False

    def read(self, size: int = -1, /) -> bytes:
        # BytesIO hands its buffer over in getvalue() without a copy, so a part costs
        # its own size once, not twice as joining a list of segments would.
        out = io.BytesIO()
        while size < 0 or out.tell() < size:
            if not self._pending:
                if self._done:
                    break
                self._pending = self._seal_next()
                continue
            room = len(self._pending) if size < 0 else size - out.tell()
            out.write(memoryview(self._pending)[:room])
            self._pending = self._pending[room:]
        self._position += out.tell()
        return out.getvalue()

    def _seal_next(self) -> bytes:
        wanted = SEGMENT_SIZE if self._remaining is None else min(SEGMENT_SIZE, self._remaining)
        # A known length is all that is read, as a file upload of that length would be.
        plain = self._source.read(wanted) if wanted else b""
        if not plain:
            self._done = True
            return b"".join(self._encryptor.finish())
        self._meter.count(plain)
        if self._remaining is not None:
            self._remaining -= len(plain)
        return b"".join(self._encryptor.update(plain))

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
