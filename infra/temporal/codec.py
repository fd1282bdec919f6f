"""Encryption of every Temporal payload (R12): the Temporal service stores only ciphertext.

Patients' names, subjects and bodies travel through workflow inputs, results, signals
and updates, so the history the server keeps (and the Web UI shows) must not hold them
in clear. Each payload is sealed with Tink AEAD under the AEAD keyset's primary key
(``infra.crypto.keys``); Tink's ciphertext names its key id, so after rotation the other
keys of the keyset still open what they sealed. The key id also goes beside it in the
metadata, for people reading a history. Failures are encoded too: their messages can
quote PHI.

The worker, the web app, the tests and the Web UI's codec endpoint all use this module,
so what one of them encodes every other can decode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import tink
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import (
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    PayloadCodec,
)

from infra.crypto.keys import EncryptionKeys

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# Associated data: a payload does not open as a database field, nor a field as a payload.
ASSOCIATED_DATA = b"temporal-payload"
# Tink's ciphertext prefix: a version byte, then the key id (4 bytes, big-endian).
_TINK_PREFIX = b"\x01"
_PREFIX_BYTES = 5


class PayloadDecryptionError(ValueError):
    """An encrypted payload these keys cannot open: unknown key id, or altered bytes."""


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: EncryptionKeys) -> None:
        super().__init__()
        self.keys = keys

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        key_id = str(self.keys.primary_id).encode()
        return [
            Payload(
                metadata={"encoding": ENCODING, KEY_ID: key_id},
                data=self.keys.aead.encrypt(payload.SerializeToString(), ASSOCIATED_DATA),
            )
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        # Fail closed (R12): a payload without our encoding was not written by the app,
        # the worker or an operator's codec, so it is refused, not read. A workflow started
        # with plain input (from the CLI or the UI) fails its task and sends nothing.
        return [self._open(payload) for payload in payloads]

    async def decode_for_operator(self, payloads: Sequence[Payload]) -> list[Payload]:
        """What an operator's Web UI or CLI is shown: ours opened, any other as it is.

        A history also holds payloads the SDK's core writes itself, never through this
        codec: the markers of local activities and patches (ids, attempt counters and
        times, in clear by design). Shown as stored, they tell the operator nothing the
        history did not; refusing them would stop the whole history from showing. The
        worker still refuses every plain payload (``decode``)."""
        return [
            self._open(payload) if payload.metadata.get("encoding") == ENCODING else payload
            for payload in payloads
        ]

    def _open(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            # Says nothing of the payload itself: it may be PHI in clear.
            raise PayloadDecryptionError(
                "refused an unencrypted payload: every payload must be encrypted with "
                "the encryption keyset (see infra.temporal.codec)"
            )
        data = payload.data
        if len(data) <= _PREFIX_BYTES or not data.startswith(_TINK_PREFIX):
            raise PayloadDecryptionError("encrypted payload is truncated or not Tink's")
        key_id = int.from_bytes(data[1:_PREFIX_BYTES], "big")
        labelled = payload.metadata.get(KEY_ID)
        if labelled is not None and labelled != str(key_id).encode():
            raise PayloadDecryptionError(
                f"encrypted payload (key {key_id}) is labelled with another key id: altered"
            )
        if not self.keys.has_key(key_id):
            raise PayloadDecryptionError(
                f"payload was encrypted with key {key_id}, which the keyset does not "
                "hold; add that key back to SECURE_EMAIL_ENCRYPTION_KEYSET"
            )
        try:
            plain = self.keys.aead.decrypt(data, ASSOCIATED_DATA)
        except tink.TinkError:
            raise PayloadDecryptionError(
                f"encrypted payload (key {key_id}) failed authentication: altered or truncated"
            ) from None
        return Payload.FromString(plain)


def data_converter(keys: EncryptionKeys) -> DataConverter:
    """The pydantic converter, with every payload and failure encrypted under ``keys``."""
    return dataclasses.replace(
        pydantic_data_converter,
        payload_codec=EncryptionCodec(keys),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
