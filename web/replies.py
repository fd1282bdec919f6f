"""Handing a patient's Reply All to its secure email's workflow, by id (R9, R12).

The reply's text and its files' names are PHI and must not enter a Temporal history:
the reply is kept (encrypted) as pending, the workflow is asked to accept its id, and
the workflow's ``record_reply`` activity makes it part of the thread. A refused reply
leaves no pending row behind (the caller discards its files).
"""

from __future__ import annotations

from pydantic import TypeAdapter
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from domain.secure_email import ReplyAttachment, ReplySubmitted
from infra.db.models import PendingReply, Reply, SecureEmail
from web.portal_common import workflow_of
from web.state import AppState
from workflows.secure_email import SecureEmailWorkflow

_FILES = TypeAdapter(list[ReplyAttachment])


async def submit_reply(
    state: AppState,
    db: AsyncSession,
    secure_email: SecureEmail,
    reply_id: str,
    subject: str,
    body: str,
    files: list[ReplyAttachment],
    client_address: str | None,
) -> None:
    """Raises what the update raises when the workflow refuses or cannot be reached."""
    db.add(
        PendingReply(
            id=reply_id,
            secure_email_id=secure_email.id,
            subject=subject,
            body=body,
            attachments=_FILES.dump_json(files).decode(),
        )
    )
    await db.commit()
    try:
        handle = await workflow_of(state, secure_email)
        await handle.execute_update(
            SecureEmailWorkflow.reply,
            ReplySubmitted(reply_id=reply_id, client_address=client_address),
        )
    except BaseException:
        # The answer may have been lost after the reply was recorded: then it was sent.
        if await db.get(Reply, reply_id, populate_existing=True) is not None:
            return
        await db.execute(delete(PendingReply).where(PendingReply.id == reply_id))
        await db.commit()
        raise
