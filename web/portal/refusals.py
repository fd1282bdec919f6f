"""What the patient is told when the portal refuses, chosen here by the refusal's type,
in the page's language (``words``, the request's catalog: ``web.languages.translator``).

The workflow refuses an update with an ``ApplicationError`` whose type is one of
``domain.errors`` and whose details carry the numbers (minutes to wait); its message is
for operators reading a history, never shown to the patient.

The constants are the English the catalog is keyed by (``N_``); a page shows them
through its catalog (``words.gettext``).
"""

from __future__ import annotations

import gettext
from collections.abc import Sequence
from dataclasses import dataclass

from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError

from domain import errors
from domain.passcodes import MAX_WRONG_TRIES, PASSCODE_VALID_FOR
from domain.secure_email import MAX_REPLIES, MAX_REPLIES_PER_HOUR, VerifyOutcome
from web.errors import TEMPORAL_DOWN
from web.languages import N_

Words = gettext.NullTranslations

MINUTES_VALID = int(PASSCODE_VALID_FOR.total_seconds() // 60)

TOO_MANY_REQUESTS = N_("Too many attempts from this device. Please wait an hour and try again.")
EXPIRED = N_("This secure email has expired")
NOT_DELIVERED = N_("This secure email could not be delivered")
WITHDRAWN = N_("This secure email was withdrawn by the practice that sent it")
NO_PASSCODE = N_("Enter the 8-digit passcode from the email.")


def verify_message(outcome: VerifyOutcome, words: Words) -> str:
    """Why a passcode no longer works (burned, timed out, used), and what to do."""
    if outcome == VerifyOutcome.BURNED:
        return words.gettext(
            "That passcode was entered wrongly %(tries)d times and no longer works. "
            "Press “Send me a new code” below."
        ) % {"tries": MAX_WRONG_TRIES}
    if outcome == VerifyOutcome.TIMED_OUT:
        return words.gettext(
            "That passcode has expired (each one works for %(minutes)d minutes). "
            "Press “Send me a new code” below."
        ) % {"minutes": MINUTES_VALID}
    return words.gettext("That passcode has already been used. Press “Send me a new code” below.")


def wrong_passcode(tries_left: int, words: Words) -> str:
    return words.ngettext(
        "That passcode is not right. %(num)d try left.",
        "That passcode is not right. %(num)d tries left.",
        tries_left,
    ) % {"num": tries_left}


def _minutes(details: Sequence[object], at: int) -> int | None:
    value = details[at] if len(details) > at else None
    return value if isinstance(value, int) else None


def _too_many_replies(details: Sequence[object], words: Words) -> str:
    if details and details[0] == errors.REPLIES_TOTAL:
        return words.gettext(
            "This conversation already has %(replies)d replies, the most one secure email "
            "can hold. Please call the office; they can send you a new secure email."
        ) % {"replies": MAX_REPLIES}
    minutes = _minutes(details, 1)
    if minutes is None:
        return words.gettext(
            "You have sent %(replies)d replies to this message in the last hour. Please wait "
            "a few minutes before replying again, or call the office."
        ) % {"replies": MAX_REPLIES_PER_HOUR}
    return words.ngettext(
        "You have sent %(replies)d replies to this message in the last hour. Please wait "
        "%(num)d minute before replying again, or call the office.",
        "You have sent %(replies)d replies to this message in the last hour. Please wait "
        "%(num)d minutes before replying again, or call the office.",
        minutes,
    ) % {"replies": MAX_REPLIES_PER_HOUR, "num": minutes}


def _too_many_passcodes(details: Sequence[object], words: Words) -> str:
    minutes = _minutes(details, 0)
    if minutes is None:
        return words.gettext("Too many passcodes were requested. Try again in a few minutes.")
    return words.ngettext(
        "Too many passcodes were requested. Try again in %(num)d minute.",
        "Too many passcodes were requested. Try again in %(num)d minutes.",
        minutes,
    ) % {"num": minutes}


@dataclass(frozen=True)
class RefusalStatus:
    """How a workflow's refusal answers over HTTP: a limit is 429 with the seconds until it
    lifts (Retry-After, R17); a message that is over is 410; a full conversation or an
    undelivered notice 409; anything unknown 503, as if Temporal were down."""

    code: int
    retry_after: int | None = None

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}


def refusal_status(error: WorkflowUpdateFailedError) -> RefusalStatus:
    cause = error.cause
    if not isinstance(cause, ApplicationError):
        return RefusalStatus(503)
    details = cause.details
    if cause.type in (errors.EXPIRED, errors.WITHDRAWN):
        return RefusalStatus(410)
    if cause.type == errors.TOO_MANY_PASSCODES:
        return _limit(_minutes(details, 0))
    if cause.type == errors.TOO_MANY_REPLIES:
        if details and details[0] == errors.REPLIES_TOTAL:
            return RefusalStatus(409)
        return _limit(_minutes(details, 1))
    if cause.type == errors.FAILED:
        return RefusalStatus(409)
    return RefusalStatus(503)


def _limit(minutes: int | None) -> RefusalStatus:
    # Without the workflow's figure, the longest a window lasts.
    return RefusalStatus(429, 60 * (minutes if minutes is not None else 60))


def refusal(error: WorkflowUpdateFailedError, words: Words) -> str:
    """What the patient is told when the workflow refuses (expired, too many passcodes...)."""
    cause = error.cause
    if not isinstance(cause, ApplicationError):
        return words.gettext(TEMPORAL_DOWN)
    details = cause.details
    if cause.type == errors.EXPIRED:
        return words.gettext(EXPIRED)
    if cause.type == errors.FAILED:
        return words.gettext(NOT_DELIVERED)
    if cause.type == errors.WITHDRAWN:
        return words.gettext(WITHDRAWN)
    if cause.type == errors.TOO_MANY_PASSCODES:
        return _too_many_passcodes(details, words)
    if cause.type == errors.TOO_MANY_REPLIES:
        return _too_many_replies(details, words)
    return words.gettext(TEMPORAL_DOWN)
