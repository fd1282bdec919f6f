"""Streaming encryption of stored files: segmented AES-256-GCM (like Tink's streaming AEAD).

A 20 MB attachment cannot be sealed as one AES-GCM message without holding it whole, so
the plaintext is cut into 64 KiB segments, each sealed on its own. Layout of one object::

    header   magic "SEO1" | version (1) | key id length (1) | key id | salt (32)
             | nonce prefix (7)
    segments AES-GCM(segment i) = ciphertext ‖ 16-byte tag, all of 64 KiB plaintext but
             the last, which holds 0 to 64 KiB

Each object is sealed under its own key, HKDF-SHA256 of the ring key named in the header
with the random salt and the whole header as info, so the header cannot be altered and
random nonces never have to be counted across objects. The nonce of segment i is
prefix ‖ i (4 bytes, big-endian) ‖ last flag (1 byte): a segment moved to another place,
a stream cut at a segment boundary (its new last segment was sealed as "not last") or
extended all fail to open. The associated data (the storage key, for objects) binds the
ciphertext to one object, so it cannot be copied under another object's key.

Both directions are incremental and hold at most a segment or two besides the chunk
being fed; a decryptor releases a segment's plaintext only once its tag has checked.
"""

from __future__ import annotations

import os
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from infra.crypto.keys import KEY_BYTES, KeyRing, UnknownKey
from infra.objects import ObjectUnreadable

MAGIC = b"SEO1"
VERSION = 1
# Fixed by the version: a reader never takes a segment size from (untrusted) stored bytes.
SEGMENT_SIZE = 64 * 1024
TAG_BYTES = 16
SEALED_SEGMENT_SIZE = SEGMENT_SIZE + TAG_BYTES
SALT_BYTES = 32
NONCE_PREFIX_BYTES = 7
MAX_SEGMENTS = 2**32

_FIXED_HEADER_BYTES = len(MAGIC) + 2  # magic, version, key id length
_LAST = b"\x01"
_NOT_LAST = b"\x00"


class StreamDecryptionError(ObjectUnreadable):
    """Stored bytes that do not open: altered, truncated, reordered, moved from another
    object, not encrypted at all, or sealed with a key the ring no longer holds."""


def header_size(key_id: str) -> int:
    return _FIXED_HEADER_BYTES + len(key_id.encode()) + SALT_BYTES + NONCE_PREFIX_BYTES


def ciphertext_size(plaintext_size: int, header_bytes: int) -> int:
    """What ``plaintext_size`` bytes take once sealed behind a header of ``header_bytes``."""
    segments = max(1, -(-plaintext_size // SEGMENT_SIZE))
    return header_bytes + plaintext_size + segments * TAG_BYTES


def plaintext_size(ciphertext_bytes: int, header_bytes: int) -> int:
    """The inverse of ``ciphertext_size``; refuses sizes no encryptor produces (truncation)."""
    body = ciphertext_bytes - header_bytes
    segments = max(1, -(-body // SEALED_SEGMENT_SIZE))
    last = body - (segments - 1) * SEALED_SEGMENT_SIZE
    # Only the whole stream may end in an empty segment, and only when it is the only one.
    if body < TAG_BYTES or (segments > 1 and last <= TAG_BYTES):
        raise StreamDecryptionError(
            f"encrypted object of {ciphertext_bytes} bytes is truncated or padded"
        )
    return body - segments * TAG_BYTES


class StreamEncryptor:
    """Seals a stream under the ring's current key: feed ``update``, then ``finish``.

    Each call returns the ciphertext ready so far (the header comes first). One full
    segment is always held back, because only ``finish`` knows which segment is last.
    """

    def __init__(self, ring: KeyRing, associated_data: bytes) -> None:
        self.key_id = ring.current_id
        salt = os.urandom(SALT_BYTES)
        self._prefix = os.urandom(NONCE_PREFIX_BYTES)
        self.header = _header(self.key_id, salt, self._prefix)
        self._aead = AESGCM(_object_key(ring.current, salt, self.header))
        self._associated_data = associated_data
        self._buffer = bytearray()
        self._segment = 0
        self._header_sent = False
        self._finished = False

    def update(self, data: bytes) -> list[bytes]:
        if self._finished:
            raise ValueError("the stream was already finished")
        sealed = self._take_header()
        self._buffer += data
        while len(self._buffer) > SEGMENT_SIZE:
            sealed.append(self._seal(self._buffer[:SEGMENT_SIZE], last=False))
            del self._buffer[:SEGMENT_SIZE]
        return sealed

    def finish(self) -> list[bytes]:
        if self._finished:
            raise ValueError("the stream was already finished")
        sealed = self._take_header()
        sealed.append(self._seal(self._buffer, last=True))
        self._buffer = bytearray()
        self._finished = True
        return sealed

    def _take_header(self) -> list[bytes]:
        if self._header_sent:
            return []
        self._header_sent = True
        return [self.header]

    def _seal(self, segment: bytearray, *, last: bool) -> bytes:
        nonce = _nonce(self._prefix, self._segment, last)
        self._segment += 1
        return self._aead.encrypt(nonce, segment, self._associated_data)


class StreamDecryptor:
    """Opens what ``StreamEncryptor`` sealed, with any key of the ring.

    ``update`` returns the plaintext of every segment that has checked; ``finish`` opens
    the last one and fails if the stream was cut short. ``header_size`` is known once the
    header has arrived (it names the key, so an unknown key fails before any segment).
    """

    def __init__(self, ring: KeyRing, associated_data: bytes) -> None:
        self._ring = ring
        self._associated_data = associated_data
        self._buffer = bytearray()
        self._aead: AESGCM | None = None
        self._prefix = b""
        self._segment = 0
        self._finished = False
        self.key_id: str | None = None
        self.header_size: int | None = None

    def update(self, data: bytes) -> list[bytes]:
        if self._finished:
            raise ValueError("the stream was already finished")
        self._buffer += data
        if self._aead is None and not self._read_header():
            return []
        opened = []
        # Held back until more follows: a full segment may still turn out to be the last.
        while len(self._buffer) > SEALED_SEGMENT_SIZE:
            opened.append(self._open(self._buffer[:SEALED_SEGMENT_SIZE], last=False))
            del self._buffer[:SEALED_SEGMENT_SIZE]
        return opened

    def finish(self) -> list[bytes]:
        if self._finished:
            raise ValueError("the stream was already finished")
        if self._aead is None and not self._read_header():
            raise StreamDecryptionError("encrypted object is truncated: its header is incomplete")
        if len(self._buffer) < TAG_BYTES:
            raise StreamDecryptionError("encrypted object is truncated: its last segment is cut")
        opened = self._open(self._buffer, last=True)
        self._buffer = bytearray()
        self._finished = True
        return [opened]

    def _read_header(self) -> bool:
        buffer = self._buffer
        if len(buffer) >= len(MAGIC) and buffer[: len(MAGIC)] != MAGIC:
            raise StreamDecryptionError(
                "stored bytes are not an encrypted object (no header): written before "
                "encryption was switched on, or by something else"
            )
        if len(buffer) < _FIXED_HEADER_BYTES:
            return False
        version, key_id_length = buffer[len(MAGIC)], buffer[len(MAGIC) + 1]
        if version != VERSION:
            raise StreamDecryptionError(f"encrypted object has unknown version {version}")
        size = _FIXED_HEADER_BYTES + key_id_length + SALT_BYTES + NONCE_PREFIX_BYTES
        if len(buffer) < size:
            return False
        header = bytes(buffer[:size])
        key_id = header[_FIXED_HEADER_BYTES : _FIXED_HEADER_BYTES + key_id_length].decode(
            errors="replace"
        )
        salt_at = _FIXED_HEADER_BYTES + key_id_length
        salt = header[salt_at : salt_at + SALT_BYTES]
        try:
            key = self._ring.key(key_id)
        except UnknownKey:
            raise StreamDecryptionError(
                f"encrypted object was sealed with key {key_id!r}, which the key ring does "
                "not hold; add that key back to SECURE_EMAIL_ENCRYPTION_KEYS"
            ) from None
        self._aead = AESGCM(_object_key(key, salt, header))
        self._prefix = header[salt_at + SALT_BYTES :]
        self.key_id = key_id
        self.header_size = size
        del buffer[:size]
        return True

    def _open(self, sealed: bytearray, *, last: bool) -> bytes:
        if self._aead is None:
            raise RuntimeError("a segment was opened before the header was read")
        nonce = _nonce(self._prefix, self._segment, last)
        try:
            opened = self._aead.decrypt(nonce, sealed, self._associated_data)
        except InvalidTag:
            raise StreamDecryptionError(
                f"encrypted object failed authentication at segment {self._segment}: "
                "altered, truncated, reordered, or stored under another key"
            ) from None
        self._segment += 1
        return opened


def encrypt(ring: KeyRing, associated_data: bytes, data: bytes) -> bytes:
    """Seal a whole (small) plaintext at once."""
    encryptor = StreamEncryptor(ring, associated_data)
    return b"".join([*encryptor.update(data), *encryptor.finish()])


def decrypt(ring: KeyRing, associated_data: bytes, data: bytes) -> bytes:
    """Open a whole (small) ciphertext at once."""
    decryptor = StreamDecryptor(ring, associated_data)
    return b"".join([*decryptor.update(data), *decryptor.finish()])


def _header(key_id: str, salt: bytes, prefix: bytes) -> bytes:
    encoded = key_id.encode()
    if not 0 < len(encoded) < 256:
        raise ValueError("a key id must be 1 to 255 bytes to fit an object header")
    return MAGIC + struct.pack("BB", VERSION, len(encoded)) + encoded + salt + prefix


def _object_key(ring_key: bytes, salt: bytes, header: bytes) -> bytes:
    return HKDF(algorithm=SHA256(), length=KEY_BYTES, salt=salt, info=header).derive(ring_key)


def _nonce(prefix: bytes, segment: int, last: bool) -> bytes:
    if segment >= MAX_SEGMENTS:
        raise ValueError("object too large for the encrypted object format")
    return prefix + segment.to_bytes(4, "big") + (_LAST if last else _NOT_LAST)
