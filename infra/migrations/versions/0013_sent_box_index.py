"""secure emails: an index for the Sent box (a practice's, newest first, by keyset)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 22:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.create_index(
            "ix_secure_emails_practice_sent", ["practice_id", "sent_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.drop_index("ix_secure_emails_practice_sent")
