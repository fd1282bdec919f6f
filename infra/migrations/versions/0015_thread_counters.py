"""secure emails: each thread's reply counters, the Email Client's index, the Inbox's

The counters are filled from the replies already recorded, so the Email Client and the
Sent box read them instead of counting replies on every load; the portal's Inbox pages
through a patient's messages by (sent_at, id).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 08:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ANSWERED = "latest_reply_at IS NOT NULL"

BACKFILL = """
UPDATE secure_emails SET
    reply_count = (SELECT count(*) FROM replies r WHERE r.secure_email_id = secure_emails.id),
    unread_count = (
        SELECT count(*) FROM replies r
        WHERE r.secure_email_id = secure_emails.id AND r.read_at IS NULL
    ),
    latest_reply_at = (
        SELECT max(r.sent_at) FROM replies r WHERE r.secure_email_id = secure_emails.id
    )
WHERE id IN (SELECT secure_email_id FROM replies)
"""


def upgrade() -> None:
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("reply_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("unread_count", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("has_unread", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(sa.Column("latest_reply_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(BACKFILL)
    op.execute("UPDATE secure_emails SET has_unread = (unread_count > 0) WHERE " + ANSWERED)
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.create_index(
            "ix_secure_emails_practice_threads",
            ["practice_id", "has_unread", "latest_reply_at", "id"],
            unique=False,
            sqlite_where=sa.text(ANSWERED),
            postgresql_where=sa.text(ANSWERED),
        )
        batch_op.create_index(
            "ix_secure_emails_patient_sent", ["patient_id", "sent_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.drop_index("ix_secure_emails_patient_sent")
        batch_op.drop_index("ix_secure_emails_practice_threads")
        batch_op.drop_column("latest_reply_at")
        batch_op.drop_column("has_unread")
        batch_op.drop_column("unread_count")
        batch_op.drop_column("reply_count")
