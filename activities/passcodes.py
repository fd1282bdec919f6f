"""Making a passcode secret: random, so it happens outside the workflow."""

from __future__ import annotations

import pyotp
from temporalio import activity


@activity.defn
async def make_passcode_secret() -> str:
    # 160 bits, the HOTP recommendation (RFC 4226).
    return str(pyotp.random_base32(32))
