"""Notice links and passcodes derived from the portal key (``infra.crypto.portal_secrets``)."""

from __future__ import annotations

import uuid

import pytest

from infra.crypto import portal_secrets
from infra.crypto.keys import KeyRing, UnknownKey


def test_link_is_stable_per_message_and_key_and_unguessable() -> None:
    ring = KeyRing.generate("p1")
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    link = portal_secrets.link_token(ring, "p1", first)
    assert link == portal_secrets.link_token(ring, "p1", first)  # the activity re-derives it
    assert link != portal_secrets.link_token(ring, "p1", second)
    assert link != portal_secrets.link_token(KeyRing.generate("p1"), "p1", first)
    assert len(link) == 43  # 256 bits, URL-safe


def test_passcodes_are_eight_digits_and_differ_per_counter() -> None:
    ring = KeyRing.generate("p1")
    message = str(uuid.uuid4())
    codes = [portal_secrets.passcode(ring, "p1", message, n) for n in range(1, 51)]
    assert all(len(code) == 8 and code.isdigit() for code in codes)
    assert len(set(codes)) > 45  # a collision among 50 of 10^8 is rare, not impossible


def test_check_of_the_typed_code_matches_only_the_mailed_code() -> None:
    ring = KeyRing.generate("p1")
    message = str(uuid.uuid4())
    mailed = portal_secrets.passcode(ring, "p1", message, 1)
    expected = portal_secrets.passcode_check(ring, "p1", message, mailed)
    assert portal_secrets.passcode_checks(ring, message, mailed)["p1"] == expected
    wrong = f"{(int(mailed) + 1) % 10**8:08d}"
    assert portal_secrets.passcode_checks(ring, message, wrong)["p1"] != expected
    # The same code for another message is another check: checks do not travel.
    assert portal_secrets.passcode_check(ring, "p1", str(uuid.uuid4()), mailed) != expected


def test_rotation_keeps_what_the_old_key_issued() -> None:
    old = KeyRing.generate("p1")
    rotated = KeyRing(current_id="p2", keys={**old.keys, "p2": KeyRing.generate("p2").current})
    message = str(uuid.uuid4())
    mailed = portal_secrets.passcode(old, "p1", message, 3)
    expected = portal_secrets.passcode_check(old, "p1", message, mailed)
    # The web app, holding the rotated ring, sends a check under every key.
    assert portal_secrets.passcode_checks(rotated, message, mailed)["p1"] == expected
    assert portal_secrets.link_token(rotated, "p1", message) == portal_secrets.link_token(
        old, "p1", message
    )
    with pytest.raises(UnknownKey):
        portal_secrets.link_token(KeyRing.generate("p3"), "p1", message)
