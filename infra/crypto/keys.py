"""Encryption keys: a key ring of AES-256 keys, each with an id stored beside the data.

New data is encrypted with the current key; older keys stay in the ring so what they
encrypted still decrypts (rotation: add a key, make it current, re-encrypt at leisure).

Configured by ``SECURE_EMAIL_ENCRYPTION_KEYS`` (``id:base64key,id:base64key``; the first
is current). In development, when unset, a ring is generated once into the data
directory (``encryption-keys.json``, mode 600) and reused on every start.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from infra.settings import Settings

KEY_BYTES = 32


class UnknownKey(KeyError):
    """Data names a key id the ring does not hold (a key was removed too early)."""


@dataclass(frozen=True)
class KeyRing:
    current_id: str
    keys: dict[str, bytes]

    def __post_init__(self) -> None:
        if self.current_id not in self.keys:
            raise ValueError("the current key id must be in the ring")
        for key_id, key in self.keys.items():
            if len(key) != KEY_BYTES:
                raise ValueError(f"key {key_id!r} must be {KEY_BYTES} bytes")
            if not key_id or ":" in key_id or "," in key_id:
                raise ValueError(f"key id {key_id!r} must be non-empty without ':' or ','")

    @property
    def current(self) -> bytes:
        return self.keys[self.current_id]

    def key(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise UnknownKey(key_id) from None

    @classmethod
    def parse(cls, text: str) -> KeyRing:
        """``id:base64key,id:base64key``; the first is current."""
        pairs = [item.strip() for item in text.split(",") if item.strip()]
        if not pairs:
            raise ValueError("no encryption keys given")
        keys: dict[str, bytes] = {}
        for pair in pairs:
            key_id, _, encoded = pair.partition(":")
            keys[key_id] = base64.b64decode(encoded, validate=True)
        return cls(current_id=pairs[0].partition(":")[0], keys=keys)

    def format(self) -> str:
        ordered = [self.current_id, *(k for k in self.keys if k != self.current_id)]
        return ",".join(f"{k}:{base64.b64encode(self.keys[k]).decode()}" for k in ordered)

    @classmethod
    def generate(cls, key_id: str | None = None) -> KeyRing:
        key_id = key_id or f"k{secrets.token_hex(4)}"
        return cls(current_id=key_id, keys={key_id: secrets.token_bytes(KEY_BYTES)})


def dev_key_file(settings: Settings) -> Path:
    return settings.data_dir / "encryption-keys.json"


def key_ring(settings: Settings) -> KeyRing:
    """The ring that encrypts payloads, database fields and stored files."""
    return _ring(
        settings.encryption_keys, "SECURE_EMAIL_ENCRYPTION_KEYS", dev_key_file(settings), settings
    )


def portal_key_ring(settings: Settings) -> KeyRing:
    """The ring notice links and passcodes are derived from (``infra.crypto.portal_secrets``)."""
    return _ring(
        settings.portal_keys,
        "SECURE_EMAIL_PORTAL_KEYS",
        settings.data_dir / "portal-keys.json",
        settings,
    )


# Transitional names (the web app already uses them); replaced by Tink keysets next.
EncryptionKeys = KeyRing
PortalKeys = KeyRing


def encryption_keys(settings: Settings) -> KeyRing:
    return key_ring(settings)


def portal_keys(settings: Settings) -> KeyRing:
    return portal_key_ring(settings)


def _ring(configured: str, variable: str, path: Path, settings: Settings) -> KeyRing:
    if configured:
        return KeyRing.parse(configured)
    if settings.environment == "production":
        raise ValueError(f"{variable} must be set in production")
    if path.exists():
        return KeyRing.parse(json.loads(path.read_text())["keys"])
    ring = KeyRing.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of the stack made it first
        return KeyRing.parse(json.loads(path.read_text())["keys"])
    with os.fdopen(descriptor, "w") as file:
        json.dump({"keys": ring.format()}, file)
    return ring
