"""Encrypted database columns: PHI such as a secure email's subject and body.

``EncryptedText`` stores ``v1:<key id>:<base64(nonce ‖ AES-256-GCM ciphertext)>`` in a
plain text column, sealed under the key ring's current key; after rotation the old keys,
kept in the ring, still open what they sealed. The associated data is the version, the
key id and the column's identity (``table.column``), so a value copied into another
encrypted column (a body pasted into a subject) or relabelled with another key id does
not open. It does not bind the row: moving a value between rows of the same column is
for database permissions and the audit log to prevent.

The ring is process-wide, set once at start-up by ``configure_field_encryption`` (the
web app's lifespan, the worker, the tests): a column type has no other way to reach
settings. Reading or writing an encrypted column before that raises rather than store
plaintext. A stored value without the ``v1:`` prefix is refused, not passed through:
passing it through would let anyone who can write to the database plant text that the
app shows as if the office wrote it, and the only rows written before encryption were
development data.

Encrypted columns cannot be searched or compared in SQL: every write uses a new nonce.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from infra.crypto.keys import KeyRing, UnknownKey

VERSION = "v1"
NONCE_BYTES = 12
TAG_BYTES = 16

_ring: KeyRing | None = None


class FieldEncryptionNotConfigured(RuntimeError):
    """An encrypted column was used before ``configure_field_encryption``."""


class FieldDecryptionError(ValueError):
    """A stored value that does not open: plaintext, altered, moved or of an unknown key."""


def configure_field_encryption(ring: KeyRing | None) -> None:
    """Give every ``EncryptedText`` column the key ring; ``None`` takes it away (tests)."""
    global _ring
    _ring = ring


def configured_ring() -> KeyRing:
    if _ring is None:
        raise FieldEncryptionNotConfigured(
            "an encrypted database column was used before field encryption was configured: "
            "call infra.crypto.fields.configure_field_encryption(key_ring(settings)) at "
            "start-up; nothing was stored or read"
        )
    return _ring


def encrypt_field(ring: KeyRing, column: str, text: str) -> str:
    key_id = ring.current_id
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(ring.current).encrypt(nonce, text.encode(), _associated_data(key_id, column))
    return f"{VERSION}:{key_id}:{base64.b64encode(nonce + sealed).decode()}"


def decrypt_field(ring: KeyRing, column: str, stored: str) -> str:
    version, _, rest = stored.partition(":")
    key_id, separator, encoded = rest.partition(":")
    if version != VERSION or not separator:
        raise FieldDecryptionError(
            f"{column} holds a value that is not encrypted (written before field "
            "encryption?); it is not shown as-is"
        )
    try:
        key = ring.key(key_id)
    except UnknownKey:
        raise FieldDecryptionError(
            f"{column} was encrypted with key {key_id!r}, which the key ring does not hold; "
            "add that key back to SECURE_EMAIL_ENCRYPTION_KEYS"
        ) from None
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise FieldDecryptionError(f"{column} holds a malformed encrypted value") from None
    if len(data) < NONCE_BYTES + TAG_BYTES:
        raise FieldDecryptionError(f"{column} holds a truncated encrypted value")
    try:
        plain = AESGCM(key).decrypt(
            data[:NONCE_BYTES], data[NONCE_BYTES:], _associated_data(key_id, column)
        )
    except InvalidTag:
        raise FieldDecryptionError(
            f"{column} holds an encrypted value that fails authentication: altered, or "
            "copied from another column"
        ) from None
    return plain.decode()


class EncryptedText(TypeDecorator[str]):
    """A text column stored encrypted; ``column`` is its identity, ``"table.column"``."""

    impl = Text
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        table, dot, name = column.partition(".")
        if not (table and dot and name):
            raise ValueError("an encrypted column's identity is 'table.column'")
        self.column = column

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise TypeError(f"{self.column} takes text, not {type(value).__name__}")
        return encrypt_field(configured_ring(), self.column, value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return decrypt_field(configured_ring(), self.column, value)


def _associated_data(key_id: str, column: str) -> bytes:
    return f"{VERSION}:{key_id}:{column}".encode()
