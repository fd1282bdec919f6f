"""Email address rules shared by the directory, the settings and Send Secure."""

from __future__ import annotations


def normalise_address(address: str) -> str:
    """The form two addresses are compared in (R4): trimmed and case-folded.

    Mailbox local parts are case-sensitive in theory, but no mail provider a patient uses
    treats them so, and a practice that sends to itself must be caught either way.
    """
    return address.strip().casefold()


def same_address(a: str, b: str) -> bool:
    return normalise_address(a) == normalise_address(b)
