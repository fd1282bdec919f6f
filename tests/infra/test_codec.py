"""The payload encryption codec (R12): what Temporal stores holds no PHI in clear."""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from google.protobuf.message import Message
from temporalio import activity, workflow
from temporalio.api.common.v1 import Payload
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.converter import DefaultFailureConverterWithEncodedAttributes
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

# The sandbox re-imports this module for NoteWorkflow; tink must not be re-imported.
with workflow.unsafe.imports_passed_through():
    from infra.crypto.keys import EncryptionKeys
    from infra.temporal.codec import (
        ENCODING,
        KEY_ID,
        EncryptionCodec,
        PayloadDecryptionError,
        data_converter,
    )

SECRET = "Tooth 14 extraction"
BIN_DIR = Path(sys.executable).parent


def plain(text: str = SECRET) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=f'"{text}"'.encode())


def two_keysets() -> tuple[EncryptionKeys, EncryptionKeys]:
    """Keyset A and keyset A after rotation (a new primary key, A's kept)."""
    a = EncryptionKeys.generate()
    return a, a.rotated()


async def test_round_trip_payload() -> None:
    keys = EncryptionKeys.generate()
    codec = EncryptionCodec(keys)
    original = [plain(), plain("second")]
    encoded = await codec.encode(original)
    assert all(payload.metadata["encoding"] == ENCODING for payload in encoded)
    assert all(payload.metadata[KEY_ID] == str(keys.primary_id).encode() for payload in encoded)
    assert await codec.decode(encoded) == original


async def test_encoded_payload_holds_no_plaintext() -> None:
    codec = EncryptionCodec(EncryptionKeys.generate())
    (encoded,) = await codec.encode([plain()])
    assert SECRET.encode() not in encoded.SerializeToString()
    assert b"json/plain" not in encoded.SerializeToString()  # the inner metadata too


async def test_same_payload_encrypts_differently_each_time() -> None:
    codec = EncryptionCodec(EncryptionKeys.generate())
    first, second = await codec.encode([plain(), plain()])
    assert first.data != second.data


async def test_decode_after_rotation_with_kept_key() -> None:
    keys_a, keys_b = two_keysets()
    encoded = await EncryptionCodec(keys_a).encode([plain()])
    assert await EncryptionCodec(keys_b).decode(encoded) == [plain()]
    # New payloads use the new primary key.
    (fresh,) = await EncryptionCodec(keys_b).encode([plain()])
    assert fresh.metadata[KEY_ID] == str(keys_b.primary_id).encode() != encoded[0].metadata[KEY_ID]


async def test_decode_refuses_unknown_key() -> None:
    gone = EncryptionKeys.generate()
    encoded = await EncryptionCodec(gone).encode([plain()])
    with pytest.raises(PayloadDecryptionError, match=f"{gone.primary_id}.*does not hold"):
        await EncryptionCodec(EncryptionKeys.generate()).decode(encoded)


async def test_decode_refuses_altered_payload() -> None:
    codec = EncryptionCodec(EncryptionKeys.generate())
    (encoded,) = await codec.encode([plain()])
    altered = Payload(metadata=encoded.metadata, data=encoded.data[:-1] + b"\x00")
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await codec.decode([altered])
    with pytest.raises(PayloadDecryptionError, match="truncated"):
        await codec.decode([Payload(metadata=encoded.metadata, data=b"short")])


async def test_decode_refuses_payload_relabelled_with_another_key() -> None:
    # The key id is in Tink's ciphertext: a label naming another key of the keyset is refused.
    keys_a, keys_b = two_keysets()
    (encoded,) = await EncryptionCodec(keys_b).encode([plain()])
    relabelled = Payload(
        metadata={"encoding": ENCODING, KEY_ID: str(keys_a.primary_id).encode()},
        data=encoded.data,
    )
    with pytest.raises(PayloadDecryptionError, match="another key"):
        await EncryptionCodec(keys_b).decode([relabelled])


async def test_decode_refuses_payload_sealed_as_a_database_field() -> None:
    # Fields and payloads share the AEAD keyset; the associated data keeps them apart.
    keys = EncryptionKeys.generate()
    sealed = keys.aead.encrypt(plain().SerializeToString(), b"v2:secure_emails.body")
    with pytest.raises(PayloadDecryptionError, match="failed authentication"):
        await EncryptionCodec(keys).decode([Payload(metadata={"encoding": ENCODING}, data=sealed)])


async def test_plain_payloads_are_refused_without_quoting_them() -> None:
    """Fail closed (R12): what the app did not encrypt is not read."""
    codec = EncryptionCodec(EncryptionKeys.generate())
    for unencrypted in (plain(), Payload(metadata={"encoding": b"binary/null"})):
        with pytest.raises(PayloadDecryptionError) as refused:
            await codec.decode([unencrypted])
        assert SECRET not in str(refused.value)


async def test_data_converter_encrypts_values_and_failures() -> None:
    converter = data_converter(EncryptionKeys.generate())
    assert isinstance(converter.failure_converter, DefaultFailureConverterWithEncodedAttributes)
    (payload,) = await converter.encode([SECRET])
    assert payload.metadata["encoding"] == ENCODING
    assert await converter.decode([payload], [str]) == [SECRET]


# A real workflow on the time-skipping server ------------------------------------------


@dataclass
class Note:
    text: str
    refuse: bool = False


@activity.defn
async def file_note(note: Note) -> Note:
    if note.refuse:
        raise ApplicationError(f"could not file {note.text}", non_retryable=True)
    return Note(text=f"filed: {note.text}")


@workflow.defn
class NoteWorkflow:
    @workflow.run
    async def run(self, note: Note) -> Note:
        return await workflow.execute_activity(
            file_note,
            note,
            start_to_close_timeout=timedelta(seconds=10),
            retry_policy=RetryPolicy(maximum_attempts=1),
        )


def payloads_in(message: Message) -> Iterator[Payload]:
    """Every Payload anywhere inside a protobuf message (a history event, say)."""
    if isinstance(message, Payload):
        yield message
        return
    for field, value in message.ListFields():
        if field.message_type is None:  # a scalar field
            continue
        if field.message_type.GetOptions().map_entry:
            values = list(value.values())
        elif field.is_repeated:
            values = list(value)
        else:
            values = [value]
        for item in values:
            if isinstance(item, Message):
                yield from payloads_in(item)


@pytest.fixture
async def encrypted_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        data_converter=data_converter(EncryptionKeys.generate()),
        test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
    )
    yield env
    await env.shutdown()


async def test_workflow_history_holds_only_ciphertext(encrypted_env: WorkflowEnvironment) -> None:
    client = encrypted_env.client
    task_queue = f"tq-{uuid.uuid4()}"
    async with Worker(
        client, task_queue=task_queue, workflows=[NoteWorkflow], activities=[file_note]
    ):
        done = await client.start_workflow(
            NoteWorkflow.run, Note(SECRET), id=f"note-{uuid.uuid4()}", task_queue=task_queue
        )
        assert await done.result() == Note(f"filed: {SECRET}")

        refused = await client.start_workflow(
            NoteWorkflow.run,
            Note(SECRET, refuse=True),
            id=f"note-{uuid.uuid4()}",
            task_queue=task_queue,
        )
        with pytest.raises(WorkflowFailureError) as failure:
            await refused.result()
    activity_error = failure.value.cause
    assert isinstance(activity_error, ActivityError)
    assert isinstance(activity_error.cause, ApplicationError)
    assert activity_error.cause.message == f"could not file {SECRET}"

    for handle in (done, refused):
        history = await handle.fetch_history()
        assert SECRET not in history.to_json()
        found = [payload for event in history.events for payload in payloads_in(event)]
        assert found, "the history should carry input, result and failure payloads"
        assert all(payload.metadata["encoding"] == ENCODING for payload in found)
    # The failure's message and stack trace travel inside an encrypted payload.
    assert "Encoded failure" in (await refused.fetch_history()).to_json()
