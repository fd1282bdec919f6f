"""What the patient is told when the portal refuses, chosen here by the refusal's type.

The workflow refuses an update with an ``ApplicationError`` whose type is one of
``domain.errors`` and whose details carry the numbers (minutes to wait); its message is
for operators reading a history, never shown to the patient.
"""

from __future__ import annotations

from collections.abc import Sequence

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain import errors
from domain.passcodes import MAX_WRONG_TRIES, PASSCODE_VALID_FOR
from domain.secure_email import MAX_REPLIES, MAX_REPLIES_PER_HOUR, VerifyOutcome
from web.errors import TEMPORAL_DOWN

MINUTES_VALID = int(PASSCODE_VALID_FOR.total_seconds() // 60)

TOO_MANY_REQUESTS = "Too many attempts from this device. Please wait an hour and try again."
EXPIRED = "This secure email has expired"
NOT_DELIVERED = "This secure email could not be delivered"
WITHDRAWN = "This secure email was withdrawn by the practice that sent it"
VERIFY_MESSAGES = {
    VerifyOutcome.BURNED: (
        f"That passcode was entered wrongly {MAX_WRONG_TRIES} times and no longer works. "
        "Press “Send me a new code” below."
    ),
    VerifyOutcome.TIMED_OUT: (
        f"That passcode has expired (each one works for {MINUTES_VALID} minutes). "
        "Press “Send me a new code” below."
    ),
    VerifyOutcome.NONE_ISSUED: "That passcode has already been used. "
    "Press “Send me a new code” below.",
}


def wrong_passcode(tries_left: int) -> str:
    plural = "try" if tries_left == 1 else "tries"
    return f"That passcode is not right. {tries_left} {plural} left."


def _minutes(details: Sequence[object], at: int) -> str:
    value = details[at] if len(details) > at else None
    return str(value) if isinstance(value, int) else "a few"


def _too_many_replies(details: Sequence[object]) -> str:
    if details and details[0] == errors.REPLIES_TOTAL:
        return (
            f"This conversation already has {MAX_REPLIES} replies, the most one secure "
            "email can hold. Please call the office; they can send you a new secure email."
        )
    return (
        f"You have sent {MAX_REPLIES_PER_HOUR} replies to this message in the last hour. "
        f"Please wait {_minutes(details, 1)} minutes before replying again, or call the office."
    )


def refusal(error: WorkflowUpdateFailedError) -> str:
    """What the patient is told when the workflow refuses (expired, too many passcodes...)."""
    cause = error.cause
    if not isinstance(cause, ApplicationError):
        return TEMPORAL_DOWN
    details = cause.details
    if cause.type == errors.EXPIRED:
        return EXPIRED
    if cause.type == errors.FAILED:
        return NOT_DELIVERED
    if cause.type == errors.WITHDRAWN:
        return WITHDRAWN
    if cause.type == errors.TOO_MANY_PASSCODES:
        return f"Too many passcodes were requested. Try again in {_minutes(details, 0)} minutes."
    if cause.type == errors.TOO_MANY_REPLIES:
        return _too_many_replies(details)
    return TEMPORAL_DOWN
