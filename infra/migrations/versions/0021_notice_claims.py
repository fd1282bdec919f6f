"""notice claims: each notice mail (first, reminder, each resend the office asked for)
is claimed by the one activity that mails it

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 18:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notice_claims",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("secure_email_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("requested_by", sa.String(length=36), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["secure_email_id"],
            ["secure_emails.id"],
            name=op.f("fk_notice_claims_secure_email_id_secure_emails"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notice_claims")),
        sa.UniqueConstraint(
            "secure_email_id", "key", name=op.f("uq_notice_claims_secure_email_id")
        ),
    )
    with op.batch_alter_table("notice_claims", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_notice_claims_secure_email_id"), ["secure_email_id"], unique=False
        )
    # Secure emails whose first notice went before claims existed: claimed by no activity
    # of today's code, so a start copied from their history mails nothing.
    op.execute(
        sa.text(
            "INSERT INTO notice_claims (secure_email_id, key, requested_at, claimed_by, "
            "claimed_at) SELECT id, 'first', sent_at, 'before-claims', sent_at "
            "FROM secure_emails WHERE status <> 'sending'"
        )
    )
    # Likewise the reminders already mailed (their timeline line is keyed "reminder").
    op.execute(
        sa.text(
            "INSERT INTO notice_claims (secure_email_id, key, requested_at, claimed_by, "
            "claimed_at) SELECT secure_email_id, 'reminder', at, 'before-claims', at "
            "FROM secure_email_events WHERE key = 'reminder'"
        )
    )


def downgrade() -> None:
    with op.batch_alter_table("notice_claims", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_notice_claims_secure_email_id"))
    op.drop_table("notice_claims")
