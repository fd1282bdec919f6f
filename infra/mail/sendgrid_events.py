"""SendGrid's Signed Event Webhook: is a posted batch SendGrid's, and fresh?

SendGrid signs ``timestamp + body`` with ECDSA P-256 / SHA-256 (the
``X-Twilio-Email-Event-Webhook-Signature`` header, base64 DER) and shows the
verification key (base64 DER SubjectPublicKeyInfo) once "Signed Event Webhook" is on. A
timestamp outside a few minutes of now is refused, so a batch someone recorded cannot be
posted again later. What the events say is ``web.webhooks.sendgrid``'s.
"""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

# SendGrid signs as it posts; a clock a little off is allowed, a recorded batch is not.
OLDEST = timedelta(minutes=10)
NEWEST = timedelta(minutes=5)


@lru_cache(maxsize=4)
def verification_key(text: str) -> ec.EllipticCurvePublicKey:
    """The key as SendGrid shows it; ValueError if it is not an ECDSA P-256 public key
    (``infra.settings`` refuses such a setting at start)."""
    try:
        key = load_der_public_key(base64.b64decode(text.strip(), validate=True))
    except (binascii.Error, ValueError, UnsupportedAlgorithm) as error:
        raise ValueError("not an ECDSA P-256 public key") from error
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
        raise ValueError("not an ECDSA P-256 public key")
    return key


def fresh(timestamp: str, now: datetime) -> bool:
    """The signed timestamp (Unix seconds) is within a few minutes of ``now``."""
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    signed_at = datetime.fromtimestamp(int(timestamp), UTC)
    return now - OLDEST <= signed_at <= now + NEWEST


def signed(key_text: str, signature: str, timestamp: str, body: bytes) -> bool:
    """``signature`` is SendGrid's over ``timestamp + body``, checked on the raw bytes."""
    try:
        der = base64.b64decode(signature, validate=True)
        verification_key(key_text).verify(der, timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (binascii.Error, ValueError, InvalidSignature):
        return False
    return True
