"""Key rotation: which key sealed a stored value, sealing it again under the primary key,
and keysets with a new primary key or without a key nothing uses any more.

Every piece of data names the key that sealed it, and that is how "which keys are in
use" is found without a table of its own:

- an encrypted field (``infra.crypto.fields``) is ``v2:<key id>:…``, and Tink's
  ciphertext prefix (a version byte, then the key id) says the same;
- a Temporal payload carries Tink's prefix too, and the key id in its metadata;
- a stored object (streaming AEAD) has no key id in its header: the key that opens its
  first segment is the one that sealed it, so its first 4 KiB are enough to tell.

Portal keys seal nothing: a notice link is derived from the key and the secure email's
id, and the database keeps its hash, so the key that issued a link is the one whose
derivation matches that hash.
"""

from __future__ import annotations

import io
from typing import cast

import tink
from tink import secret_key_access, streaming_aead
from tink.proto import tink_pb2

from infra.crypto.fields import decrypt_field, encrypt_field
from infra.crypto.keys import OBJECT_SEGMENT_BYTES, EncryptionKeys, Kind, UnknownKey, add_key

# What of an object tells which key sealed it: its first segment, and one byte more,
# which says that segment is not the last (Tink seals the last one differently).
OBJECT_PROBE_BYTES = OBJECT_SEGMENT_BYTES + 1


class KeyInUse(ValueError):
    """A key cannot be removed: it is the primary key, or data still needs it."""


def rotated_keyset(handle: tink.KeysetHandle, kind: Kind) -> tuple[tink.KeysetHandle, int]:
    """The keyset with a new key made primary, the old keys kept (they still open what
    they sealed), and the new key's id."""
    added, key_id = add_key(handle, kind)
    keyset = _keyset(added)
    keyset.primary_key_id = key_id
    return _handle(keyset), key_id


def without_key(handle: tink.KeysetHandle, key_id: int) -> tink.KeysetHandle:
    """The keyset without ``key_id``; refuses the primary key and a key it lacks. Whether
    data still needs the key is for the caller to have checked (``workers.keys``)."""
    keyset = _keyset(handle)
    if keyset.primary_key_id == key_id:
        raise KeyInUse(f"key {key_id} is the primary key: rotate first, then re-encrypt")
    kept = [key for key in keyset.key if key.key_id != key_id]
    if len(kept) == len(keyset.key):
        raise UnknownKey(key_id)
    del keyset.key[:]
    keyset.key.extend(kept)
    return _handle(keyset)


def primary_id(handle: tink.KeysetHandle) -> int:
    return int(handle.keyset_info().primary_key_id)


def all_key_ids(handle: tink.KeysetHandle) -> list[int]:
    """Every key of the keyset, enabled or not, the primary first."""
    info = handle.keyset_info()
    return sorted(
        (key.key_id for key in info.key_info), key=lambda key_id: key_id != info.primary_key_id
    )


def field_key_id(stored: str) -> int | None:
    """The key id an encrypted field names (``v2:<key id>:…``); None if it names none."""
    _, _, rest = stored.partition(":")
    key_id, separator, _ = rest.partition(":")
    return int(key_id) if separator and key_id.isdigit() else None


def field_under_primary(keys: EncryptionKeys, column: str, stored: str) -> str | None:
    """``stored`` sealed again under the primary key (after it opens, so an altered value
    raises ``FieldDecryptionError`` rather than being sealed anew); None when it is under
    the primary key already."""
    if field_key_id(stored) == keys.primary_id:
        return None
    return encrypt_field(keys, column, decrypt_field(keys, column, stored))


def object_key_id(object_keyset: tink.KeysetHandle, storage_key: str, start: bytes) -> int | None:
    """The key that sealed an object, from its first ``OBJECT_PROBE_BYTES`` (or all of a
    shorter object); None when no key of the keyset opens it."""
    for key_id in all_key_ids(object_keyset):
        primitive = _single_key(object_keyset, key_id).primitive(streaming_aead.StreamingAead)
        source = cast(io.RawIOBase, io.BytesIO(start))
        try:
            with primitive.new_decrypting_stream(source, storage_key.encode()) as plaintext:
                plaintext.read(1)
        except tink.TinkError:
            continue
        return key_id
    return None


def _single_key(handle: tink.KeysetHandle, key_id: int) -> tink.KeysetHandle:
    keyset = _keyset(handle)
    kept = [key for key in keyset.key if key.key_id == key_id]
    del keyset.key[:]
    keyset.key.extend(kept)
    keyset.primary_key_id = key_id
    for key in keyset.key:
        key.status = tink_pb2.ENABLED
    return _handle(keyset)


def _keyset(handle: tink.KeysetHandle) -> tink_pb2.Keyset:
    return tink_pb2.Keyset.FromString(
        tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    )


def _handle(keyset: tink_pb2.Keyset) -> tink.KeysetHandle:
    return tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)
