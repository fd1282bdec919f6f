"""Encryption of every Temporal payload (R12): the Temporal service stores only ciphertext.

Patients' names, subjects and bodies travel through workflow inputs, results, signals
and updates, so the history the server keeps (and the Web UI shows) must not hold them
in clear. Each payload is sealed with AES-256-GCM under the key ring's current key; the
key id goes beside it so that after rotation the old keys, kept in the ring, still open
what they sealed. Failures are encoded too: their messages can quote PHI.

The worker, the web app, the tests and the Web UI's codec endpoint all use this module,
so what one of them encodes every other can decode.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from infra.crypto.keys import KeyRing, UnknownKey

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
TAG_BYTES = 16


class PayloadDecryptionError(ValueError):
    """An encrypted payload this ring cannot open: unknown key id, or altered bytes."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, ring: KeyRing) -> None:
        super().__init__()
        self.ring = ring

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = self.ring.current_id
        # Sealing the key id in as associated data: a payload relabelled with another
        # key's id fails to open instead of being tried under the wrong key.
        aead = AESGCM(self.ring.current)
        encoded = []
        for payload in payloads:
            nonce = os.urandom(NONCE_BYTES)
            sealed = aead.encrypt(nonce, payload.SerializeToString(), key_id.encode())
            encoded.append(
                Payload(
                    metadata={"encoding": ENCODING, KEY_ID: key_id.encode()},
                    data=nonce + sealed,
                )
            )
        return encoded

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        # Fail closed (R12): a payload without our encoding was not written by the app,
        # the worker or an operator's codec, so it is refused, not read. A workflow started
        # with plain input (from the CLI or the UI) fails its task and sends nothing.
        return [self._open(payload) for payload in payloads]

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            # Says nothing of the payload itself: it may be PHI in clear.
            raise PayloadDecryptionError(
                "refused an unencrypted payload: every payload must be encrypted with "
                "the key ring (see infra.temporal.codec)"
            )
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        try:
            key = self.ring.key(key_id)
        except UnknownKey:
            raise PayloadDecryptionError(
                f"payload was encrypted with key {key_id!r}, which the key ring does not "
                "hold; add that key back to SECURE_EMAIL_ENCRYPTION_KEYS"
            ) from None
        if len(payload.data) < NONCE_BYTES + TAG_BYTES:
            raise PayloadDecryptionError(f"encrypted payload (key {key_id!r}) is truncated")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            plain = AESGCM(key).decrypt(nonce, sealed, key_id.encode())
        except InvalidTag:
            raise PayloadDecryptionError(
                f"encrypted payload (key {key_id!r}) failed authentication: altered or "
                "sealed under a different key with the same id"
            ) from None
        return Payload.FromString(plain)


def data_converter(ring: KeyRing) -> DataConverter:
    """The pydantic converter, with every payload and failure encrypted under ``ring``."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(ring),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
