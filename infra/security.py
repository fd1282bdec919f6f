"""Passwords and opaque tokens.

Tokens (staff sessions, API tokens) are random and stored only as SHA-256 hashes, so a
copy of the database does not let anyone sign in.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Checked when the account does not exist, so a log-in takes as long either way.
_DUMMY_HASH = _hasher.hash("not-a-real-password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str | None) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def new_token() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewSession:
    """What starting a session (a staff log-in, a patient's Verify) stores besides whose
    it is: the hash of a new token (the token itself goes only into the cookie), when the
    session began, when it was last seen (now) and when it ends at the latest."""

    token: str
    token_hash: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime

    @classmethod
    def begin(cls, lifetime: timedelta, *, began_at: datetime | None = None) -> NewSession:
        """A session starting now and lasting ``lifetime``; ``began_at`` when it is
        counted from an earlier moment than now."""
        token = new_token()
        now = datetime.now(UTC)
        return cls(token, token_hash(token), began_at or now, now, now + lifetime)

    def columns(self) -> dict[str, object]:
        """The session row's columns it fills (all but whose session it is)."""
        return {
            "token_hash": self.token_hash,
            "created_at": self.created_at,
            "last_seen_at": self.last_seen_at,
            "expires_at": self.expires_at,
        }
