"""The segmented AES-GCM format of stored files (infra/crypto/stream.py)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import pytest

from infra.crypto.keys import KeyRing
from infra.crypto.stream import (
    SEALED_SEGMENT_SIZE,
    SEGMENT_SIZE,
    TAG_BYTES,
    StreamDecryptionError,
    StreamDecryptor,
    StreamEncryptor,
    ciphertext_size,
    decrypt,
    encrypt,
    header_size,
    plaintext_size,
)

KEY_A = os.urandom(32)
KEY_B = os.urandom(32)
RING_A = KeyRing(current_id="a", keys={"a": KEY_A})
# After rotation: b is current, a stays so that what it sealed still opens.
RING_B_KEEPS_A = KeyRing(current_id="b", keys={"b": KEY_B, "a": KEY_A})
STORAGE_KEY = b"secure-emails/0b9f/1"
SIZES = [0, 1, SEGMENT_SIZE - 1, SEGMENT_SIZE, SEGMENT_SIZE + 1, 3 * SEGMENT_SIZE + 7]


def plaintext(size: int) -> bytes:
    return random.Random(size).randbytes(size)


def encrypt_in_chunks(ring: KeyRing, data: bytes, chunk: int) -> bytes:
    encryptor = StreamEncryptor(ring, STORAGE_KEY)
    pieces: list[bytes] = []
    for start in range(0, len(data), chunk):
        pieces.extend(encryptor.update(data[start : start + chunk]))
    pieces.extend(encryptor.finish())
    return b"".join(pieces)


def decrypt_in_chunks(ring: KeyRing, data: bytes, chunk: int) -> bytes:
    decryptor = StreamDecryptor(ring, STORAGE_KEY)
    pieces: list[bytes] = []
    for start in range(0, len(data), chunk):
        pieces.extend(decryptor.update(data[start : start + chunk]))
    pieces.extend(decryptor.finish())
    return b"".join(pieces)


def segments_of(sealed: bytes) -> tuple[bytes, list[bytes]]:
    head = header_size("a")
    body = sealed[head:]
    return sealed[:head], [
        body[at : at + SEALED_SEGMENT_SIZE] for at in range(0, len(body), SEALED_SEGMENT_SIZE)
    ]


@pytest.mark.parametrize("size", SIZES)
def test_encrypt_round_trips_content(size: int) -> None:
    data = plaintext(size)

    sealed = encrypt(RING_A, STORAGE_KEY, data)

    assert decrypt(RING_A, STORAGE_KEY, sealed) == data
    assert len(sealed) == ciphertext_size(size, header_size("a"))
    assert plaintext_size(len(sealed), header_size("a")) == size


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("chunk", [1000, 7 * 1024 * 1024])
def test_encrypt_round_trips_content_fed_in_chunks(size: int, chunk: int) -> None:
    data = plaintext(size)

    sealed = encrypt_in_chunks(RING_A, data, chunk)

    assert decrypt_in_chunks(RING_A, sealed, 999) == data
    assert decrypt_in_chunks(RING_A, sealed, 5 * 1024 * 1024) == data


def test_encrypt_same_content_twice_differs() -> None:
    data = plaintext(100)

    assert encrypt(RING_A, STORAGE_KEY, data) != encrypt(RING_A, STORAGE_KEY, data)


def test_encrypt_hides_content() -> None:
    data = b"Dear Ada, your biopsy results " * 5000

    sealed = encrypt(RING_A, STORAGE_KEY, data)

    assert b"biopsy" not in sealed


def test_encryptor_streams_segment_by_segment() -> None:
    encryptor = StreamEncryptor(RING_A, STORAGE_KEY)
    decryptor = StreamDecryptor(RING_A, STORAGE_KEY)

    # A full segment is held back until more arrives: it might be the last.
    held = encryptor.update(plaintext(SEGMENT_SIZE))
    assert held == [encryptor.header]
    released = encryptor.update(b"x")
    assert [len(piece) for piece in released] == [SEALED_SEGMENT_SIZE]

    assert decryptor.update(held[0] + released[0]) == []
    opened = decryptor.update(b"".join(encryptor.finish()))
    assert opened == [plaintext(SEGMENT_SIZE)]
    assert decryptor.finish() == [b"x"]


def test_decrypt_truncated_at_segment_boundary_fails() -> None:
    sealed = encrypt(RING_A, STORAGE_KEY, plaintext(3 * SEGMENT_SIZE + 7))
    header, segments = segments_of(sealed)

    # Every remaining segment opens, but the new last one was sealed as "not last".
    with pytest.raises(StreamDecryptionError, match="authentication"):
        decrypt(RING_A, STORAGE_KEY, header + b"".join(segments[:-1]))


@pytest.mark.parametrize(
    "cut",
    [
        pytest.param(lambda n: n - 1, id="last-byte"),
        pytest.param(lambda n: header_size("a") + TAG_BYTES - 1, id="into-first-segment"),
        pytest.param(lambda n: header_size("a"), id="header-only"),
        pytest.param(lambda n: 10, id="into-header"),
        pytest.param(lambda n: 0, id="empty"),
    ],
)
def test_decrypt_truncated_fails(cut: Callable[[int], int]) -> None:
    sealed = encrypt(RING_A, STORAGE_KEY, plaintext(2 * SEGMENT_SIZE + 5))

    with pytest.raises(StreamDecryptionError):
        decrypt(RING_A, STORAGE_KEY, sealed[: cut(len(sealed))])


def test_decrypt_reordered_segments_fails() -> None:
    sealed = encrypt(RING_A, STORAGE_KEY, plaintext(3 * SEGMENT_SIZE + 7))
    header, segments = segments_of(sealed)

    with pytest.raises(StreamDecryptionError, match="segment 0"):
        decrypt(RING_A, STORAGE_KEY, header + segments[1] + segments[0] + b"".join(segments[2:]))


def test_decrypt_segment_from_another_object_fails() -> None:
    first = encrypt(RING_A, STORAGE_KEY, plaintext(2 * SEGMENT_SIZE))
    second = encrypt(RING_A, STORAGE_KEY, plaintext(2 * SEGMENT_SIZE))
    header, segments = segments_of(first)
    _, others = segments_of(second)

    with pytest.raises(StreamDecryptionError):
        decrypt(RING_A, STORAGE_KEY, header + others[0] + segments[1])


def test_decrypt_extended_stream_fails() -> None:
    sealed = encrypt(RING_A, STORAGE_KEY, plaintext(SEGMENT_SIZE + 3))
    header, segments = segments_of(sealed)

    with pytest.raises(StreamDecryptionError):
        decrypt(RING_A, STORAGE_KEY, sealed + segments[-1])


@pytest.mark.parametrize(
    "position",
    [
        pytest.param(lambda n: n - 1, id="last-tag"),
        pytest.param(lambda n: header_size("a") + 100, id="first-segment"),
        pytest.param(lambda n: header_size("a") + SEALED_SEGMENT_SIZE + 5, id="second-segment"),
        pytest.param(lambda n: header_size("a") - 1, id="nonce-prefix"),
        pytest.param(lambda n: header_size("a") - 20, id="salt"),
        pytest.param(lambda n: 4, id="version"),
        pytest.param(lambda n: 0, id="magic"),
    ],
)
def test_decrypt_flipped_bit_fails(position: Callable[[int], int]) -> None:
    sealed = bytearray(encrypt(RING_A, STORAGE_KEY, plaintext(2 * SEGMENT_SIZE + 5)))
    sealed[position(len(sealed))] ^= 0x01

    with pytest.raises(StreamDecryptionError):
        decrypt(RING_A, STORAGE_KEY, bytes(sealed))


def test_decrypt_under_another_storage_key_fails() -> None:
    sealed = encrypt(RING_A, STORAGE_KEY, plaintext(1000))

    with pytest.raises(StreamDecryptionError, match="another key"):
        decrypt(RING_A, b"secure-emails/0b9f/2", sealed)


def test_decrypt_after_rotation_opens_old_key() -> None:
    data = plaintext(SEGMENT_SIZE + 1)
    sealed_with_a = encrypt(RING_A, STORAGE_KEY, data)

    assert decrypt(RING_B_KEEPS_A, STORAGE_KEY, sealed_with_a) == data
    rotated = StreamEncryptor(RING_B_KEEPS_A, STORAGE_KEY)
    assert rotated.key_id == "b"
    sealed_with_b = b"".join([*rotated.update(data), *rotated.finish()])
    decryptor = StreamDecryptor(RING_B_KEEPS_A, STORAGE_KEY)
    assert b"".join([*decryptor.update(sealed_with_b), *decryptor.finish()]) == data
    assert decryptor.key_id == "b"


def test_decrypt_unknown_key_id_names_it() -> None:
    sealed = encrypt(RING_B_KEEPS_A, STORAGE_KEY, plaintext(10))

    with pytest.raises(StreamDecryptionError, match="'b'.*does not hold"):
        decrypt(RING_A, STORAGE_KEY, sealed)


def test_decrypt_relabelled_key_id_fails() -> None:
    # Same length id, other key: the header is bound into the object's key.
    ring = KeyRing(current_id="a", keys={"a": KEY_A, "c": KEY_B})
    sealed = bytearray(encrypt(ring, STORAGE_KEY, plaintext(10)))
    sealed[6:7] = b"c"

    with pytest.raises(StreamDecryptionError, match="authentication"):
        decrypt(ring, STORAGE_KEY, bytes(sealed))


def test_decrypt_plaintext_object_is_refused() -> None:
    with pytest.raises(StreamDecryptionError, match="not an encrypted object"):
        decrypt(RING_A, STORAGE_KEY, b"%PDF-1.7 stored before encryption")


@pytest.mark.parametrize("size", SIZES)
def test_plaintext_size_inverts_ciphertext_size(size: int) -> None:
    assert plaintext_size(ciphertext_size(size, 50), 50) == size


@pytest.mark.parametrize(
    "body", [0, TAG_BYTES - 1, SEALED_SEGMENT_SIZE + 1, SEALED_SEGMENT_SIZE + TAG_BYTES]
)
def test_plaintext_size_refuses_impossible_size(body: int) -> None:
    with pytest.raises(StreamDecryptionError):
        plaintext_size(50 + body, 50)
