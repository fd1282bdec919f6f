"""ids-only workflow histories: pending replies, workflow version per secure email

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 11:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pending_replies",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("secure_email_id", sa.String(length=36), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("attachments", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["secure_email_id"],
            ["secure_emails.id"],
            name=op.f("fk_pending_replies_secure_email_id_secure_emails"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_replies")),
    )
    with op.batch_alter_table("pending_replies", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_pending_replies_secure_email_id"), ["secure_email_id"], unique=False
        )
    # Messages already running keep their first workflow (version 1) until they expire.
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("workflow_version", sa.Integer(), nullable=False, server_default="1")
        )


def downgrade() -> None:
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.drop_column("workflow_version")
    with op.batch_alter_table("pending_replies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pending_replies_secure_email_id"))
    op.drop_table("pending_replies")
