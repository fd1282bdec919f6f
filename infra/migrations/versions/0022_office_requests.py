"""office requests: each withdrawal or expiry change the office asks for is recorded
before the workflow is asked, and confirmed by it once

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "office_requests",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("secure_email_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("staff_id", sa.String(length=36), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_by", sa.String(length=100), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["secure_email_id"],
            ["secure_emails.id"],
            name=op.f("fk_office_requests_secure_email_id_secure_emails"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_office_requests")),
    )
    with op.batch_alter_table("office_requests", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_office_requests_secure_email_id"), ["secure_email_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("office_requests", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_office_requests_secure_email_id"))
    op.drop_table("office_requests")
