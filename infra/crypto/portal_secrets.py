"""Notice links and passcodes, derived from a server-side key and a secure email's id.

Nothing a Temporal history holds lets anyone open a patient's portal (R12): the workflow
keeps the secure email's id, a passcode counter and a key id, and the worker and the web
app derive from those with a key Temporal never sees:

- the notice link token: PRF(key, "notice-link" ‖ id), 256 bits; the database keeps
  only its hash, the notice activity derives it again to put it in the email;
- the n-th passcode: PRF(key, "passcode" ‖ id ‖ n), reduced to 8 digits as HOTP does
  (RFC 4226 dynamic truncation);
- a passcode check: PRF(key, "passcode-check" ‖ id ‖ code). The issuing activity hands
  the workflow the check of the code it mailed, the web app the check of the code the
  patient typed; the workflow compares the two, so no code enters the history either.

The PRF is Tink's HMAC_SHA256_PRF over the portal keyset (``infra.crypto.keys``). Each
derivation names its key id (Tink's, as text), so a rotated keyset keeps what it issued
working.
"""

from __future__ import annotations

import base64

from domain.passcodes import PASSCODE_DIGITS
from infra.crypto.keys import PortalKeys


def _mac(keys: PortalKeys, key_id: str, *parts: str) -> bytes:
    # Length-prefixed parts: ("ab", "c") and ("a", "bc") never collide.
    message = b"".join(len(p.encode()).to_bytes(4, "big") + p.encode() for p in parts)
    return keys.compute(key_id, message, 32)


def link_token(keys: PortalKeys, key_id: str, secure_email_id: str) -> str:
    digest = _mac(keys, key_id, "notice-link", secure_email_id)
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def passcode(keys: PortalKeys, key_id: str, secure_email_id: str, counter: int) -> str:
    digest = _mac(keys, key_id, "passcode", secure_email_id, str(counter))
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(number % 10**PASSCODE_DIGITS).zfill(PASSCODE_DIGITS)


def passcode_check(keys: PortalKeys, key_id: str, secure_email_id: str, code: str) -> str:
    return _mac(keys, key_id, "passcode-check", secure_email_id, code).hex()


def passcode_checks(keys: PortalKeys, secure_email_id: str, typed: str) -> dict[str, str]:
    """The check of a typed code under every key of the keyset: the web app does not know
    which key issued the patient's passcode, the workflow does."""
    return {key_id: passcode_check(keys, key_id, secure_email_id, typed) for key_id in keys.ids}
