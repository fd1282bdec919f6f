"""The audit trail (R13): who did what, when, from which address. Never PHI.

An event names ids (practice, patient, secure email), an action and a short detail
such as "3 tries left"; never a subject, body, file name or passcode.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class AuditAction(StrEnum):
    STAFF_LOG_IN = "staff.log_in"
    STAFF_LOG_IN_FAILED = "staff.log_in_failed"
    STAFF_LOG_OUT = "staff.log_out"
    SEND = "secure_email.send"
    NOTICE_DELIVERED = "secure_email.notice_delivered"
    NOTICE_FAILED = "secure_email.notice_failed"
    # SendGrid's signed Event Webhook reported the notice bounced or dropped (its
    # workflow acts on it only once this is recorded).
    NOTICE_BOUNCED = "secure_email.notice_bounced"
    PASSCODE_ISSUED = "portal.passcode_issued"
    PASSCODE_REFUSED = "portal.passcode_refused"
    VERIFY_OK = "portal.verify_ok"
    VERIFY_FAILED = "portal.verify_failed"
    VERIFY_BURNED = "portal.verify_burned"
    SIGN_IN = "portal.sign_in"
    SIGN_OUT = "portal.sign_out"
    VIEW = "portal.view"
    DOWNLOAD = "portal.download"
    REPLY = "portal.reply"
    EXPIRED = "secure_email.expired"
    # Its workflow ended before the message did; the reconciliation marked it failed.
    STOPPED = "secure_email.stopped"
    OFFICE_READ_REPLY = "office.read_reply"
    OFFICE_DOWNLOAD = "office.download"
    OFFICE_ALERT_ACK = "office.alert_ack"
    # The office's changes to a sent secure email (R15).
    WITHDRAW = "secure_email.withdraw"
    EXPIRY_CHANGED = "secure_email.expiry_changed"
    NOTICE_RESENT = "secure_email.notice_resent"
    OPERATOR_DECODE = "operator.decode"
    OPERATOR_ENCODE = "operator.encode"
    # Platform operators: made and ended from the command line; a bearer token's first
    # use after a pause opens a decoding session (a browser's opens with its log-in).
    OPERATOR_CREATE = "operator.create"
    OPERATOR_REVOKE = "operator.revoke"
    OPERATOR_TOKEN_SESSION = "operator.token_session"
    # Staff reads of PHI (HIPAA §164.312(b)); never the query, subject or file name.
    OFFICE_VIEW = "office.view"
    OFFICE_CHART_LIST = "office.chart_list"
    # Lists: a count and the ids of the patients shown (``listing_detail``), never a
    # subject or what was typed into a search.
    OFFICE_SENT_LIST = "office.sent_list"  # the Sent box
    OFFICE_INBOX_LIST = "office.inbox_list"  # the Email Client's threads
    OFFICE_PATIENT_SEARCH = "office.patient_search"
    # One patient's name and address shown: the edit and compose pages, the API's read.
    OFFICE_PATIENT_VIEW = "office.patient_view"
    OFFICE_ALERT_LIST = "office.alert_list"  # alerts shown carry the patient's name
    PATIENT_ADD = "office.patient_add"
    PATIENT_EDIT = "office.patient_edit"
    # A CSV file's patients imported: counts only (each patient has its own add or edit).
    PATIENT_IMPORT = "office.patient_import"
    # A reply's file or a commlog put into the patient's Open Dental, or refused there:
    # what it was and Open Dental's number for it, never a file's name.
    OPEN_DENTAL_SENT = "open_dental.sent"
    # Changes to the practice, its staff and its tokens.
    SETTINGS_CHANGE = "office.settings_change"
    STAFF_ADD = "staff.add"
    STAFF_ROLE_CHANGE = "staff.role_change"
    STAFF_CLINICS_CHANGE = "staff.clinics_change"
    STAFF_DEACTIVATE = "staff.deactivate"
    STAFF_PASSWORD_RESET = "staff.password_reset"
    STAFF_PASSWORD_CHANGE = "staff.password_change"
    TOKEN_CREATE = "token.create"
    TOKEN_REVOKE = "token.revoke"
    # The Audit page and its export name patients and staff: reading them is a read of PHI.
    OFFICE_AUDIT_READ = "office.audit_read"


# How the Audit page says each action, after the name of who did it ("Ana Lopez (staff
# 163a1b11) searched patients"); the export keeps the codes beside these. Every action
# has one (``tests/domain/test_audit_phrases.py``), each different, so the page's action
# filter offers no two alike.
ACTION_PHRASES: dict[AuditAction, str] = {
    AuditAction.STAFF_LOG_IN: "logged in",
    AuditAction.STAFF_LOG_IN_FAILED: "failed to log in",
    AuditAction.STAFF_LOG_OUT: "logged out",
    AuditAction.SEND: "sent a secure email",
    AuditAction.NOTICE_DELIVERED: "notice delivered",
    AuditAction.NOTICE_FAILED: "notice could not be delivered",
    AuditAction.NOTICE_BOUNCED: "notice bounced",
    AuditAction.PASSCODE_ISSUED: "passcode sent",
    AuditAction.PASSCODE_REFUSED: "passcode request refused",
    AuditAction.VERIFY_OK: "entered the right passcode",
    AuditAction.VERIFY_FAILED: "entered a wrong passcode",
    AuditAction.VERIFY_BURNED: "passcode burned after too many wrong tries",
    AuditAction.SIGN_IN: "signed in to the portal",
    AuditAction.SIGN_OUT: "signed out of the portal",
    AuditAction.VIEW: "read a secure email in the portal",
    AuditAction.DOWNLOAD: "downloaded a file in the portal",
    AuditAction.REPLY: "replied to a secure email",
    AuditAction.EXPIRED: "secure email expired",
    AuditAction.STOPPED: "secure email stopped unexpectedly",
    AuditAction.OFFICE_READ_REPLY: "read a reply",
    AuditAction.OFFICE_DOWNLOAD: "downloaded a patient's file",
    AuditAction.OFFICE_ALERT_ACK: "dismissed an alert",
    AuditAction.WITHDRAW: "withdrew a secure email",
    AuditAction.EXPIRY_CHANGED: "changed a secure email's expiry",
    AuditAction.NOTICE_RESENT: "sent a notice again",
    AuditAction.OPERATOR_DECODE: "decoded workflow data",
    AuditAction.OPERATOR_ENCODE: "encoded workflow data",
    AuditAction.OPERATOR_CREATE: "operator account created",
    AuditAction.OPERATOR_REVOKE: "operator account revoked",
    AuditAction.OPERATOR_TOKEN_SESSION: "began a decoding session with a token",
    AuditAction.OFFICE_VIEW: "read a secure email",
    AuditAction.OFFICE_CHART_LIST: "listed a patient's chart",
    AuditAction.OFFICE_SENT_LIST: "listed sent secure emails",
    AuditAction.OFFICE_INBOX_LIST: "listed patients' replies",
    AuditAction.OFFICE_PATIENT_SEARCH: "searched patients",
    AuditAction.OFFICE_PATIENT_VIEW: "viewed a patient's name and address",
    AuditAction.OFFICE_ALERT_LIST: "listed alerts",
    AuditAction.PATIENT_ADD: "added a patient",
    AuditAction.PATIENT_EDIT: "changed a patient",
    AuditAction.PATIENT_IMPORT: "imported patients from a CSV file",
    AuditAction.OPEN_DENTAL_SENT: "sent to the patient's Open Dental",
    AuditAction.SETTINGS_CHANGE: "changed the practice settings",
    AuditAction.STAFF_ADD: "added a staff member",
    AuditAction.STAFF_ROLE_CHANGE: "changed a staff member's role",
    AuditAction.STAFF_CLINICS_CHANGE: "changed the clinics a staff member works for",
    AuditAction.STAFF_DEACTIVATE: "deactivated a staff member",
    AuditAction.STAFF_PASSWORD_RESET: "reset a staff member's password",
    AuditAction.STAFF_PASSWORD_CHANGE: "changed their own password",
    AuditAction.TOKEN_CREATE: "created an API token",
    AuditAction.TOKEN_REVOKE: "revoked an API token",
    AuditAction.OFFICE_AUDIT_READ: "read the audit log",
}


def phrase_of(action: str) -> str:
    """The words for an action code as stored; a code this version does not know (a
    newer one's, read back) is shown as it is."""
    try:
        return ACTION_PHRASES[AuditAction(action)]
    except (ValueError, KeyError):
        return action


def listing_detail(summary: str, patient_ids: Iterable[str]) -> str:
    """A list read's detail: its summary (a count, never a query) and the id of each
    patient the list showed, once each, in the order shown, so that who saw a patient's
    details can be answered from the log."""
    shown = list(dict.fromkeys(patient_ids))
    return f"{summary}; patients: {' '.join(shown)}" if shown else summary


# The practice column of events that concern no practice (an operator's log-in).
PLATFORM = "platform"


class ActorType(StrEnum):
    STAFF = "staff"
    OPERATOR = "operator"
    PATIENT = "patient"
    SYSTEM = "system"  # the workflow, through an activity


class AuditEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    action: AuditAction
    actor_type: ActorType
    actor_id: str | None
    patient_id: str | None
    secure_email_id: str | None
    client_address: str | None
    detail: str | None
    # Not stored in the event (its hash covers fixed columns): read when it is listed.
    clinic_id: str | None = Field(
        default=None,
        description=(
            "The clinic the event is about: the one its secure email was sent for, else "
            "its patient's current clinic; null for practice-wide events (settings, staff, "
            "log-ins) and for events about neither a clinic's message nor patient"
        ),
    )


class AuditEventList(BaseModel):
    items: list[AuditEventPublic]
