"""Encryption keys: Tink keysets, each key with Tink's own key id, one of them primary.

Three keysets, each a Tink JSON keyset (``tink.json_proto_keyset_format``):

- ``SECURE_EMAIL_ENCRYPTION_KEYSET`` — AEAD (AES256_GCM): database fields
  (``infra.crypto.fields``) and Temporal payloads (``infra.temporal.codec``);
- ``SECURE_EMAIL_OBJECT_KEYSET`` — streaming AEAD (AES256_GCM_HKDF_4KB): stored files
  (``infra.objects.encrypted``);
- ``SECURE_EMAIL_PORTAL_KEYSET`` — PRF (HMAC_SHA256_PRF): notice links and passcodes
  (``infra.crypto.portal_secrets``), never seen by Temporal.

New data is sealed with the primary key; the other keys of a keyset still open what
they sealed. Rotation (README, "Encryption keys"): ``python -m infra.crypto.keys add``
adds a key to a keyset, deployed everywhere first; ``python -m infra.crypto.keys
promote KEY_ID`` then makes it primary. In development, when a variable is unset, its
keyset is generated once into the data directory (mode 600) and reused on every start;
in production an unset keyset is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TypedDict, cast

import tink
from pydantic import SecretStr
from tink import aead, prf, secret_key_access, streaming_aead
from tink.proto import aes_gcm_hkdf_streaming_pb2, tink_pb2

from infra.settings import Settings

aead.register()
streaming_aead.register()
prf.register()

Kind = Literal["aead", "objects", "portal"]

TEMPLATES: dict[Kind, tink_pb2.KeyTemplate] = {
    "aead": aead.aead_key_templates.AES256_GCM,
    "objects": streaming_aead.streaming_aead_key_templates.AES256_GCM_HKDF_4KB,
    "portal": prf.prf_key_templates.HMAC_SHA256,
}
_TYPE_URLS: dict[Kind, str] = {kind: template.type_url for kind, template in TEMPLATES.items()}
_VARIABLES: dict[Kind, str] = {
    "aead": "SECURE_EMAIL_ENCRYPTION_KEYSET",
    "objects": "SECURE_EMAIL_OBJECT_KEYSET",
    "portal": "SECURE_EMAIL_PORTAL_KEYSET",
}
_DEV_FILES: dict[Kind, str] = {
    "aead": "encryption-keyset.json",
    "objects": "object-keyset.json",
    "portal": "portal-keyset.json",
}

# The object format's parameters (AES256_GCM_HKDF_4KB), which sizes are worked out from.
# 4 KiB segments rather than 1 MiB: each upload and download buffers one segment of
# plaintext and one of ciphertext, so four 20 MB uploads at once stay within the memory
# goal (docs/BENCHMARKS.md §3); Tink seals 20 MB faster this way too (0.4 % overhead).
OBJECT_SEGMENT_BYTES = 4 * 1024
OBJECT_KEY_BYTES = 32


class EncryptionKeysetFields(TypedDict):
    encryption_keyset: SecretStr
    object_keyset: SecretStr


class PortalKeysetFields(TypedDict):
    portal_keyset: SecretStr


class UnknownKey(KeyError):
    """Data names a key id the keyset does not hold (a key was removed too early)."""


def parse_keyset(text: str, kind: Kind) -> tink.KeysetHandle:
    """A JSON keyset of ``kind``; refuses keys of another type (or object keys of other
    parameters than AES256_GCM_HKDF_4KB, which object sizes are worked out from)."""
    try:
        handle = tink.json_proto_keyset_format.parse(text, secret_key_access.TOKEN)
    except tink.TinkError as error:
        raise ValueError(f"{_VARIABLES[kind]} is not a Tink JSON keyset: {error}") from None
    for key in _keyset(handle).key:
        if key.key_data.type_url != _TYPE_URLS[kind]:
            raise ValueError(
                f"{_VARIABLES[kind]} holds a {key.key_data.type_url} key; "
                f"expected {_TYPE_URLS[kind]}"
            )
        if kind == "objects":
            params = aes_gcm_hkdf_streaming_pb2.AesGcmHkdfStreamingKey.FromString(
                key.key_data.value
            ).params
            if (
                params.ciphertext_segment_size != OBJECT_SEGMENT_BYTES
                or params.derived_key_size != OBJECT_KEY_BYTES
            ):
                raise ValueError(f"{_VARIABLES[kind]}: keys must be AES256_GCM_HKDF_4KB")
    return handle


def format_keyset(handle: tink.KeysetHandle) -> str:
    """The JSON keyset on one line, as an environment variable holds it."""
    text = tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    return json.dumps(json.loads(text), separators=(",", ":"))


def new_keyset(kind: Kind) -> tink.KeysetHandle:
    return tink.new_keyset_handle(TEMPLATES[kind])


def add_key(handle: tink.KeysetHandle, kind: Kind) -> tuple[tink.KeysetHandle, int]:
    """The keyset with one more key (not primary yet) and that key's id."""
    keyset = _keyset(handle)
    new = _keyset(new_keyset(kind)).key[0]
    taken = {key.key_id for key in keyset.key}
    while new.key_id in taken:
        new.key_id = secrets.randbits(32)
    keyset.key.append(new)
    return _handle(keyset), new.key_id


def promote_key(handle: tink.KeysetHandle, key_id: int) -> tink.KeysetHandle:
    """The keyset with ``key_id`` primary: new data is sealed with it from now on."""
    keyset = _keyset(handle)
    if not any(key.key_id == key_id and key.status == tink_pb2.ENABLED for key in keyset.key):
        raise UnknownKey(key_id)
    keyset.primary_key_id = key_id
    return _handle(keyset)


def key_ids(handle: tink.KeysetHandle) -> list[int]:
    """The ids of the keys that open data, the primary first."""
    info = handle.keyset_info()
    enabled = [key.key_id for key in info.key_info if key.status == tink_pb2.ENABLED]
    return sorted(enabled, key=lambda key_id: key_id != info.primary_key_id)


@dataclass(frozen=True)
class EncryptionKeys:
    """The keysets of data at rest: AEAD for fields and payloads, streaming AEAD for files."""

    aead_keyset: tink.KeysetHandle
    object_keyset: tink.KeysetHandle
    aead: aead.Aead = field(init=False, repr=False)
    objects: streaming_aead.StreamingAead = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "aead", self.aead_keyset.primitive(aead.Aead))
        object.__setattr__(
            self, "objects", self.object_keyset.primitive(streaming_aead.StreamingAead)
        )

    @property
    def primary_id(self) -> int:
        primary: int = self.aead_keyset.keyset_info().primary_key_id
        return primary

    def has_key(self, key_id: int) -> bool:
        return key_id in key_ids(self.aead_keyset)

    def rotated(self) -> EncryptionKeys:
        """These keysets with a new primary key in each (rotation in one step, for one
        process; across processes, ``add`` first and ``promote`` once all have it)."""
        aead_keyset, aead_id = add_key(self.aead_keyset, "aead")
        object_keyset, object_id = add_key(self.object_keyset, "objects")
        return EncryptionKeys(
            promote_key(aead_keyset, aead_id), promote_key(object_keyset, object_id)
        )

    def settings_fields(self) -> EncryptionKeysetFields:
        """These keysets as ``Settings`` fields (tests and benchmarks pass them on)."""
        return {
            "encryption_keyset": SecretStr(format_keyset(self.aead_keyset)),
            "object_keyset": SecretStr(format_keyset(self.object_keyset)),
        }

    @classmethod
    def parse(cls, aead_json: str, object_json: str) -> EncryptionKeys:
        return cls(parse_keyset(aead_json, "aead"), parse_keyset(object_json, "objects"))

    @classmethod
    def generate(cls) -> EncryptionKeys:
        return cls(new_keyset("aead"), new_keyset("objects"))


@dataclass(frozen=True)
class PortalKeys:
    """The PRF keyset notice links and passcodes are derived from. Key ids are Tink's, as
    text: a workflow keeps the id its secure email's secrets were derived with."""

    keyset: tink.KeysetHandle
    _prfs: prf.PrfSet = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_prfs", self.keyset.primitive(prf.PrfSet))

    @property
    def current_id(self) -> str:
        return str(self._prfs.primary_id())

    @property
    def ids(self) -> list[str]:
        return [str(key_id) for key_id in key_ids(self.keyset)]

    def compute(self, key_id: str, message: bytes, size: int = 32) -> bytes:
        prfs = self._prfs.all()
        if not key_id.isdigit() or int(key_id) not in prfs:
            raise UnknownKey(key_id)
        output: bytes = prfs[int(key_id)].compute(message, size)
        return output

    def rotated(self) -> PortalKeys:
        """This keyset with a new primary key (see ``EncryptionKeys.rotated``)."""
        keyset, key_id = add_key(self.keyset, "portal")
        return PortalKeys(promote_key(keyset, key_id))

    def settings_fields(self) -> PortalKeysetFields:
        """This keyset as a ``Settings`` field (tests and benchmarks pass it on)."""
        return {"portal_keyset": SecretStr(format_keyset(self.keyset))}

    @classmethod
    def parse(cls, text: str) -> PortalKeys:
        return cls(parse_keyset(text, "portal"))

    @classmethod
    def generate(cls) -> PortalKeys:
        return cls(new_keyset("portal"))


def encryption_keys(settings: Settings) -> EncryptionKeys:
    """The keysets that encrypt payloads, database fields and stored files."""
    return EncryptionKeys(
        _load(settings, "aead", settings.encryption_keyset.get_secret_value()),
        _load(settings, "objects", settings.object_keyset.get_secret_value()),
    )


def portal_keys(settings: Settings) -> PortalKeys:
    """The keyset notice links and passcodes are derived from."""
    return PortalKeys(_load(settings, "portal", settings.portal_keyset.get_secret_value()))


def keyset_environment(fields: EncryptionKeysetFields | PortalKeysetFields) -> dict[str, str]:
    """``settings_fields()`` as the environment variables that set them."""
    # Every value of both TypedDicts is a SecretStr.
    keysets = cast("dict[str, SecretStr]", fields)
    return {f"SECURE_EMAIL_{name.upper()}": key.get_secret_value() for name, key in keysets.items()}


def dev_keyset_file(settings: Settings, kind: Kind) -> Path:
    return settings.data_dir / _DEV_FILES[kind]


def _load(settings: Settings, kind: Kind, configured: str) -> tink.KeysetHandle:
    if configured:
        return parse_keyset(configured, kind)
    if settings.environment == "production":
        raise ValueError(f"{_VARIABLES[kind]} must be set in production")
    path = dev_keyset_file(settings, kind)
    if path.exists():
        return parse_keyset(path.read_text(), kind)
    handle = new_keyset(kind)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of the stack made it first
        return parse_keyset(path.read_text(), kind)
    with os.fdopen(descriptor, "w") as file:
        file.write(format_keyset(handle))
    return handle


def _keyset(handle: tink.KeysetHandle) -> tink_pb2.Keyset:
    return tink_pb2.Keyset.FromString(
        tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN)
    )


def _handle(keyset: tink_pb2.Keyset) -> tink.KeysetHandle:
    return tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)


def main(argv: list[str] | None = None) -> None:
    """``python -m infra.crypto.keys new|add|promote``: keysets on stdin and stdout."""
    parser = argparse.ArgumentParser(prog="python -m infra.crypto.keys", description=main.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("new", "print a new keyset of one key"),
        ("add", "read a keyset, print it with one more key (not primary yet)"),
    ):
        command = commands.add_parser(name, help=text)
        command.add_argument("kind", choices=list(TEMPLATES))
    promote = commands.add_parser("promote", help="read a keyset, print it with KEY_ID primary")
    promote.add_argument("kind", choices=list(TEMPLATES))
    promote.add_argument("key_id", type=int)
    args = parser.parse_args(argv)
    kind: Kind = args.kind
    if args.command == "new":
        handle = new_keyset(kind)
    else:
        handle = parse_keyset(sys.stdin.read(), kind)
        if args.command == "add":
            handle, key_id = add_key(handle, kind)
            sys.stderr.write(f"added key {key_id}; promote it once every process has it\n")
        else:
            handle = promote_key(handle, args.key_id)
    sys.stdout.write(format_keyset(handle) + "\n")


if __name__ == "__main__":
    main()
