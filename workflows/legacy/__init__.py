"""Secure emails started before histories held ids only: everything that exists for them.

What is here: the frozen version-1 workflow (``workflows.legacy.secure_email_v1``, its
input models beside it) and ``runs_legacy_workflow``, the one question the rest of the
code asks about a secure email's workflow. Its activities, its HOTP passcodes and the
reading of replies whose payload carries their text are in ``activities.legacy`` (a
workflow package cannot hold what the worker's activities import: layers point down), and
the web app's answers to a version-1 message in ``web.legacy``.

Names: the frozen class is ``LegacySecureEmailWorkflow``, registered as the type
``"SecureEmailWorkflow"`` its histories record; the current class keeps the name
``SecureEmailWorkflow`` and is registered as ``"SecureEmail"``. Type names cannot change
(a history names its type), and the current class cannot be called ``SecureEmail``
without clashing with the database table's class that the web app imports beside it; so
the mismatch is at the one class that is going away, and "Legacy" says which it is.
Once this package is deleted, "SecureEmailWorkflow" names no type any more.

When it can go: once no version-1 workflow is open. They were started with an expiry of
at most 90 days and nothing moves it, so at most 90 days after the release that replaced
them. ``securemail legacy open`` says how many are still open (in the database and in
Temporal); at zero, delete this package, ``activities/legacy.py`` and ``web/legacy.py``,
their registration in ``workers/worker.py``, the branches that call them (``record_reply``
falls back to ``written_in_payload``; ``web.legacy`` lists its callers), the ``pyotp``
dependency, and the version-1 replay histories (lifecycle-001, -002).
"""

from __future__ import annotations

from typing import Protocol

# ``secure_emails.workflow_version`` of a message whose lifecycle runs on version 1; every
# message sent since has a higher number.
LEGACY_WORKFLOW_VERSION = 1
# Its workflow type, as recorded in its histories: it cannot change.
LEGACY_WORKFLOW_TYPE = "SecureEmailWorkflow"


class RunsAWorkflow(Protocol):
    @property
    def workflow_version(self) -> int: ...


def runs_legacy_workflow(secure_email: RunsAWorkflow) -> bool:
    """Its lifecycle runs on the frozen version-1 workflow: its passcodes come from a
    secret in its own history (the portal sends the typed code, not its checks), the
    office cannot change it, and a bounce is recorded without telling the workflow."""
    return secure_email.workflow_version == LEGACY_WORKFLOW_VERSION
