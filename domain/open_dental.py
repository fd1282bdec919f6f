"""The Open Dental connector's settings (one per practice): where its API is, the keys
that open it, the Imaging category reply files go to, how often patients are synced.

Open Dental's API answers every request that carries ``Authorization: ODFHIR
{developer key}/{customer key}``; the keys are secrets, stored encrypted and shown only
by their last four characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, StringConstraints

from domain.errors import FieldRefused
from domain.strict import STRICT_BODY, WHOLE

CLOUD_API = "https://api.opendental.com/api/v1"
DEFAULT_SYNC_MINUTES = 15
# Patients a page of ``GET /patients/Simple`` holds on the cloud API (a Local API's may
# hold up to 1,000): a shorter page is the last.
CLOUD_PAGE_SIZE = 100
MIN_SYNC_MINUTES = 5
MAX_SYNC_MINUTES = 24 * 60
# Hosts that may be reached over plain http in development and tests: an office's Local
# API on this machine, or the stand-in.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1"})
# The name of the sync workflow, as the schedule starts it (``workflows.open_dental_sync``).
SYNC_WORKFLOW = "OpenDentalSyncWorkflow"
MASK = "••••"

Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]

HTTPS_ONLY = (
    "Enter the address of Open Dental's API starting with https:// (the cloud API is "
    f"{CLOUD_API}); plain http is allowed only for localhost in development"
)
CLINIC_NUMBERS_REFUSED = (
    "Give each of the practice's clinics (by id) its own Open Dental ClinicNum: {problem}"
)
KEY_MISSING = "Enter the {key} Open Dental gave you: there is none stored yet"


class OpenDentalChange(BaseModel):
    """``PUT /api/v1/integrations/open-dental``: a key left out keeps the stored one."""

    model_config = STRICT_BODY

    base_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = CLOUD_API
    developer_key: Key | None = None
    customer_key: Key | None = None
    # The Imaging category (a definition of Category 18 in Open Dental) reply files go to;
    # none: Open Dental's default category.
    document_category: Annotated[int, Field(ge=1), WHOLE] | None = None
    sync_minutes: Annotated[int, Field(ge=MIN_SYNC_MINUTES, le=MAX_SYNC_MINUTES), WHOLE] = (
        DEFAULT_SYNC_MINUTES
    )
    # Which of the practice's clinics each Open Dental ClinicNum is ({clinic id: ClinicNum});
    # left out keeps them, {} forgets them. A synced patient of another ClinicNum has no clinic.
    clinic_numbers: dict[str, Annotated[int, Field(ge=1), WHOLE]] | None = None


class OpenDentalPublic(BaseModel):
    """What ``GET`` shows: the keys masked to their last four characters."""

    base_url: str
    developer_key: str
    customer_key: str
    document_category: int | None
    sync_minutes: int
    # When Open Dental last refused the keys: the sync is paused until they change.
    keys_refused_at: datetime | None = None
    last_sync_at: datetime | None = None
    last_sync: str | None = Field(default=None, description="What the last sync did, in words")
    clinic_numbers: dict[str, int] = Field(
        default_factory=dict, description="Each clinic's Open Dental ClinicNum, by clinic id"
    )


def masked(key: str) -> str:
    return MASK + key[-4:] if len(key) > 4 else MASK


def check_base_url(url: str, *, allow_local_http: bool) -> str:
    """The API's address without a trailing slash, or ``FieldRefused``: https, or http
    to this machine when ``allow_local_http`` (development and tests)."""
    parts = urlsplit(url)
    local = (parts.hostname or "") in LOCAL_HOSTS
    if not parts.hostname or parts.query or parts.fragment:
        raise FieldRefused("base_url", HTTPS_ONLY)
    if parts.scheme != "https" and not (parts.scheme == "http" and local and allow_local_http):
        raise FieldRefused("base_url", HTTPS_ONLY)
    return url.rstrip("/")


def schedule_id_for(practice_id: str) -> str:
    """The Temporal Schedule that syncs one practice's patients (ids only)."""
    return f"open-dental-sync-{practice_id}"


def sync_workflow_id_for(practice_id: str) -> str:
    return f"open-dental-sync-{practice_id}"


@dataclass(frozen=True)
class ConnectionCheck:
    """What "Test connection" found, in words."""

    ok: bool
    message: str


CONNECTED = "Connected: Open Dental answered and accepted the keys."
KEYS_REFUSED = (
    "Open Dental refused the keys. Check the developer key and the customer key (Setup, "
    "Advanced Setup, API in Open Dental) and that the customer key is enabled."
)
UNREACHABLE = (
    "Open Dental cannot be reached at this address. Check the address, and for the cloud "
    "API that the office's eConnector is running."
)
BUSY = "Open Dental is busy or answered with an error; try again in a minute."


class OpenDentalSync(BaseModel):
    """The sync workflow's input: ids only."""

    practice_id: str


# The error type an activity raises when Open Dental refused the keys (401/403): the
# sync stops, and has already told the office and paused the schedule.
KEYS_REFUSED_ERROR = "OpenDentalKeysRefused"
# Open Dental refused a request as it is (another 4xx): trying again changes nothing.
REQUEST_REFUSED_ERROR = "OpenDentalRequestRefused"


class SyncStart(BaseModel):
    """Where a sync begins: ``date_t_stamp`` is the ``serverDateTime`` the previous sync
    received (none the first time); ``ready`` is False when there is nothing to sync
    with (no connector, or keys Open Dental refused)."""

    ready: bool
    date_t_stamp: str | None = None


class PageToSync(BaseModel):
    practice_id: str
    date_t_stamp: str | None
    offset: int


class PageSynced(BaseModel):
    """What one page did, in counts; ``unlinked`` pairs (PatNum, Guarantor PatNum) whose
    guarantor has not been synced yet, linked at the end."""

    read: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    without_email: int = 0
    server_date_time: str | None = None
    unlinked: list[tuple[int, int]] = Field(default_factory=list)


class FamiliesToLink(BaseModel):
    practice_id: str
    unlinked: list[tuple[int, int]]


class SyncFinished(BaseModel):
    practice_id: str
    server_date_time: str | None
    summary: str


class SyncSummary(BaseModel):
    """The sync workflow's result: counts only."""

    read: int = 0
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    without_email: int = 0
    keys_refused: bool = False

    def words(self) -> str:
        if self.keys_refused:
            return "Open Dental refused the keys"
        return (
            f"{self.read} read: {self.added} added, {self.changed} changed, "
            f"{self.unchanged} unchanged, {self.without_email} without an email"
        )


# What goes to a patient's Open Dental from a secure email: a commlog when it is sent and
# when the patient replies, and the files of each reply (R21). Ids only: the activities
# read the rest from the database and the object store.

# Open Dental busy (429) or failing (5xx): how often an upload or a commlog is tried
# before the office is told it did not go.
OPEN_DENTAL_ATTEMPTS = 10
# The error type of an attempt Open Dental was too busy for (retried with backoff).
OPEN_DENTAL_BUSY_ERROR = "OpenDentalBusy"


class CommlogToAdd(BaseModel):
    """The commlog of a secure email's sending (``reply_id`` None), or of one reply."""

    secure_email_id: str
    reply_id: str | None = None


class ReplyFilesToUpload(BaseModel):
    """The files of one reply, each to go into the patient's Imaging module once."""

    secure_email_id: str
    reply_id: str


def sent_note(readable_until: str) -> str:
    """A commlog's words for a secure email sent: when, never what."""
    return f"Secure email sent, readable until {readable_until}"


def reply_note(files: int) -> str:
    """A commlog's words for a reply: how many files, never what the patient wrote."""
    counted = "no files" if files == 0 else "1 file" if files == 1 else f"{files} files"
    return f"Secure email reply received, {counted}"


def reply_description(file_name: str) -> str:
    """The Imaging module's description of a file the patient sent."""
    return f"Secure email reply: {file_name}"[:255]
