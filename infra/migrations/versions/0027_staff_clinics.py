"""staff restricted to clinics: the clinics a member of staff works for (empty: every
clinic, as every member of staff had before)

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-06 23:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("clinic_ids", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.drop_column("clinic_ids")
