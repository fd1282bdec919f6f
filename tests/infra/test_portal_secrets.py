"""Notice links and passcodes derived from the portal keyset (``infra.crypto.portal_secrets``)."""

from __future__ import annotations

import uuid

import pytest

from infra.crypto import portal_secrets
from infra.crypto.keys import PortalKeys, UnknownKey
from tests.fixtures.passcodes import another_code


def test_link_is_stable_per_message_and_key_and_unguessable() -> None:
    keys = PortalKeys.generate()
    key_id = keys.current_id
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    link = portal_secrets.link_token(keys, key_id, first)
    assert link == portal_secrets.link_token(keys, key_id, first)  # the activity re-derives it
    assert link != portal_secrets.link_token(keys, key_id, second)
    other = PortalKeys.generate()
    assert link != portal_secrets.link_token(other, other.current_id, first)
    assert len(link) == 43  # 256 bits, URL-safe


def test_passcodes_are_eight_digits_and_differ_per_counter() -> None:
    keys = PortalKeys.generate()
    message = str(uuid.uuid4())
    codes = [portal_secrets.passcode(keys, keys.current_id, message, n) for n in range(1, 51)]
    assert all(len(code) == 8 and code.isdigit() for code in codes)
    assert len(set(codes)) > 45  # a collision among 50 of 10^8 is rare, not impossible


def test_check_of_the_typed_code_matches_only_the_mailed_code() -> None:
    keys = PortalKeys.generate()
    key_id = keys.current_id
    message = str(uuid.uuid4())
    mailed = portal_secrets.passcode(keys, key_id, message, 1)
    expected = portal_secrets.passcode_check(keys, key_id, message, mailed)
    assert portal_secrets.passcode_checks(keys, message, mailed)[key_id] == expected
    wrong = another_code(mailed)
    assert portal_secrets.passcode_checks(keys, message, wrong)[key_id] != expected
    # The same code for another message is another check: checks do not travel.
    assert portal_secrets.passcode_check(keys, key_id, str(uuid.uuid4()), mailed) != expected


def test_rotation_keeps_what_the_old_key_issued() -> None:
    old = PortalKeys.generate()
    old_id = old.current_id
    rotated = old.rotated()
    assert rotated.current_id != old_id and set(rotated.ids) == {old_id, rotated.current_id}
    message = str(uuid.uuid4())
    mailed = portal_secrets.passcode(old, old_id, message, 3)
    expected = portal_secrets.passcode_check(old, old_id, message, mailed)
    # The web app, holding the rotated keyset, sends a check under every key.
    assert portal_secrets.passcode_checks(rotated, message, mailed)[old_id] == expected
    assert portal_secrets.link_token(rotated, old_id, message) == portal_secrets.link_token(
        old, old_id, message
    )
    with pytest.raises(UnknownKey):
        portal_secrets.link_token(PortalKeys.generate(), old_id, message)
    with pytest.raises(UnknownKey):
        portal_secrets.link_token(old, "portal-1", message)  # a key id from before Tink
