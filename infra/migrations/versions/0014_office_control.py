"""the office's control of what it sent: timeline events, time zone, reminders, the
address a message was sent to

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 05:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "secure_email_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("secure_email_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["secure_email_id"],
            ["secure_emails.id"],
            name=op.f("fk_secure_email_events_secure_email_id_secure_emails"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secure_email_events")),
        sa.UniqueConstraint(
            "secure_email_id", "key", name=op.f("uq_secure_email_events_secure_email_id")
        ),
    )
    with op.batch_alter_table("secure_email_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_secure_email_events_secure_email_id"), ["secure_email_id"], unique=False
        )
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "time_zone",
                sa.String(length=64),
                server_default="America/New_York",
                nullable=False,
            )
        )
        batch_op.add_column(
            sa.Column("reminder_after_hours", sa.Integer(), server_default="48", nullable=False)
        )
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient_address", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.drop_column("recipient_address")
    with op.batch_alter_table("practices", schema=None) as batch_op:
        batch_op.drop_column("reminder_after_hours")
        batch_op.drop_column("time_zone")
    with op.batch_alter_table("secure_email_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_secure_email_events_secure_email_id"))
    op.drop_table("secure_email_events")
