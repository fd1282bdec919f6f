"""Error types the workflow, its activities and the web app name to each other.

Temporal carries an application error's type as a string; these are its one home. The
web app chooses the patient's words by type (and the details an error carries), never
from an error's message.
"""

from __future__ import annotations

# An activity was given a secure email the database does not know, or whose practice and
# patient do not match the request: a forged or mistaken start. Never retried.
UNKNOWN_SECURE_EMAIL = "UnknownSecureEmail"
# A notice or passcode the database does not hold due (closed, opened, already mailed by
# another run, a resend the office never asked for), or a workflow input that names
# another workflow (copied from a history): nothing is mailed. Never retried.
NOT_DUE = "NotDue"
# A withdrawal or expiry change the database holds no request for (one the office asked
# for, unclaimed, naming this staff user and, for an expiry, this time): sent by hand or
# copied from a history. Nothing is changed. Never retried.
NOT_REQUESTED = "NotRequested"

# Mail the transport refused for good (bad address, rejected key) or for now.
PERMANENT_MAIL_ERROR = "PermanentMailError"
TEMPORARY_MAIL_ERROR = "TemporaryMailError"

# Update refusals by a secure email's workflow.
EXPIRED = "Expired"
FAILED = "Failed"  # its notice could not be delivered
WITHDRAWN = "Withdrawn"  # the office withdrew it
# The office's changes: an expiry outside what is allowed (the message says which rule),
# a resend of a notice the patient has already used (or too often).
BAD_EXPIRY = "BadExpiry"
NOT_RESENDABLE = "NotResendable"
TOO_MANY_RESENDS = "TooManyResends"
BAD_REQUEST = "BadRequest"  # a caller sent what a history must not hold
# Details: the minutes until another passcode can be requested.
TOO_MANY_PASSCODES = "TooManyPasscodes"
# Details: "total" (the conversation is full), or "hour" and the minutes to wait.
TOO_MANY_REPLIES = "TooManyReplies"
REPLIES_TOTAL = "total"
REPLIES_HOURLY = "hour"


class FieldRefused(ValueError):
    """A change a rule refuses, with the form field its words belong to (the page shows
    them beside it, the API answers them as that field's error)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
