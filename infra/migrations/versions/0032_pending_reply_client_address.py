"""pending reply client address: the patient's client address kept beside a pending
reply, so the worker audits the reply in the commit that records it

Revision ID: 0032
Revises: 0031
Create Date: 2026-12-07 06:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pending_replies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("client_address", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("pending_replies", schema=None) as batch_op:
        batch_op.drop_column("client_address")
