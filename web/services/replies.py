"""Handing a patient's Reply All to its secure email's workflow, by id (R9, R12).

The reply's text and its files' names are PHI and must not enter a Temporal history:
the files are stored, the reply is kept (encrypted) as pending, the workflow is asked to
accept its id, and the workflow's ``record_reply`` activity makes it part of the thread.
A refused or failed reply leaves nothing behind: no pending row, no stored file.

The reply is audited by ``record_reply`` in the commit that puts it in the thread (one
event per reply, never one for a refused reply: the log cannot take one back), with the
patient's client address kept here beside the pending reply (a history holds none).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from temporalio.client import Client, WorkflowHandle

from domain.attachments import StoredAttachment
from domain.secure_email import ReplySubmitted, SecureEmailState, workflow_id_for
from infra import replies
from infra.audit import Actor
from infra.db.models import SecureEmail
from infra.replies import Written
from web.deps import DbSession, temporal_of
from web.services.files import Upload, stored_uploads
from web.state import AppState
from workflows.secure_email import SecureEmailWorkflow


def workflow_of(
    temporal: Client, secure_email: SecureEmail
) -> WorkflowHandle[SecureEmailWorkflow, SecureEmailState]:
    return temporal.get_workflow_handle_for(
        SecureEmailWorkflow.run, workflow_id_for(secure_email.id)
    )


async def send_reply(
    state: AppState,
    db: DbSession,
    secure_email: SecureEmail,
    *,
    subject: str,
    body: str,
    uploads: Sequence[Upload],
    actor: Actor,
) -> None:
    """Files already checked. Raises what storing or the update raises (the workflow's
    refusal, Temporal or the object store failing), having kept nothing."""
    reply_id = str(uuid.uuid4())
    prefix = ("secure-emails", secure_email.id, "replies", reply_id)
    async with stored_uploads(state.store, prefix, uploads) as stored:
        await submit_reply(state, db, secure_email, reply_id, subject, body, stored, actor)


async def submit_reply(
    state: AppState,
    db: DbSession,
    secure_email: SecureEmail,
    reply_id: str,
    subject: str,
    body: str,
    files: list[StoredAttachment],
    actor: Actor,
) -> None:
    """Raises what the update raises when the workflow refuses or cannot be reached."""
    written = Written(subject, body, files)
    await replies.keep_pending(db, secure_email.id, reply_id, written, actor.client_address)
    try:
        handle = workflow_of(await temporal_of(state), secure_email)
        await handle.execute_update(SecureEmailWorkflow.reply, ReplySubmitted(reply_id=reply_id))
    except BaseException:
        # The answer may have been lost after the reply was recorded: then it was sent.
        if await replies.reply(db, reply_id, fresh=True) is None:
            await replies.drop_pending(db, reply_id)
            raise
