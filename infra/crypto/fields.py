"""Encrypted database columns: PHI such as a secure email's subject and body.

``EncryptedText`` stores ``v2:<key id>:<base64(Tink AEAD ciphertext)>`` in a plain text
column, sealed with the AEAD keyset's primary key (``infra.crypto.keys``); after
rotation the other keys of the keyset still open what they sealed. The key id, Tink's,
is also in the ciphertext's own prefix; the one in clear tells an operator which rows a
key still opens. The associated data is the version and the column's identity
(``table.column``), so a value copied into another encrypted column (a body pasted into
a subject) does not open. It does not bind the row: moving a value between rows of the
same column is for database permissions and the audit log to prevent.

The keys are process-wide, set once at start-up by ``configure_field_encryption`` (the
web app's lifespan, the worker, the tests): a column type has no other way to reach
settings. Reading or writing an encrypted column before that raises rather than store
plaintext. A stored value without the ``v2:`` prefix is refused, not passed through:
passing it through would let anyone who can write to the database plant text that the
app shows as if the office wrote it. Values of the earlier ``v1:`` format (before Tink)
were development data and do not open either: reset such a database.

Encrypted columns cannot be searched or compared in SQL: every write uses a new nonce.
"""

from __future__ import annotations

import base64
import binascii

import tink
from sqlalchemy import Text
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from infra.crypto.keys import EncryptionKeys

VERSION = "v2"

_keys: EncryptionKeys | None = None


class FieldEncryptionNotConfigured(RuntimeError):
    """An encrypted column was used before ``configure_field_encryption``."""


class FieldDecryptionError(ValueError):
    """A stored value that does not open: plaintext, altered, moved or of an unknown key."""


def configure_field_encryption(keys: EncryptionKeys | None) -> None:
    """Give every ``EncryptedText`` column the keys; ``None`` takes them away (tests)."""
    global _keys
    _keys = keys


def configured_keys() -> EncryptionKeys:
    if _keys is None:
        raise FieldEncryptionNotConfigured(
            "an encrypted database column was used before field encryption was configured: "
            "call infra.crypto.fields.configure_field_encryption(encryption_keys(settings)) "
            "at start-up; nothing was stored or read"
        )
    return _keys


def encrypt_field(keys: EncryptionKeys, column: str, text: str) -> str:
    sealed = keys.aead.encrypt(text.encode(), _associated_data(column))
    return f"{VERSION}:{keys.primary_id}:{base64.b64encode(sealed).decode()}"


def decrypt_field(keys: EncryptionKeys, column: str, stored: str) -> str:
    version, _, rest = stored.partition(":")
    key_id, separator, encoded = rest.partition(":")
    if version != VERSION or not separator:
        raise FieldDecryptionError(
            f"{column} holds a value that is not encrypted with the current format "
            "(written before field encryption, or before Tink?); it is not shown as-is"
        )
    if not key_id.isdigit() or not keys.has_key(int(key_id)):
        raise FieldDecryptionError(
            f"{column} was encrypted with key {key_id!r}, which the keyset does not hold; "
            "add that key back to SECURE_EMAIL_ENCRYPTION_KEYSET"
        )
    try:
        data = base64.b64decode(encoded, validate=True)
    except binascii.Error:
        raise FieldDecryptionError(f"{column} holds a malformed encrypted value") from None
    if data[1:5] != int(key_id).to_bytes(4, "big"):
        raise FieldDecryptionError(
            f"{column} holds an encrypted value labelled with another key than sealed it: altered"
        )
    try:
        plain: bytes = keys.aead.decrypt(data, _associated_data(column))
    except tink.TinkError:
        raise FieldDecryptionError(
            f"{column} holds an encrypted value that fails authentication: altered, "
            "truncated, or copied from another column"
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
        return encrypt_field(configured_keys(), self.column, value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return decrypt_field(configured_keys(), self.column, value)


def _associated_data(column: str) -> bytes:
    return f"{VERSION}:{column}".encode()
