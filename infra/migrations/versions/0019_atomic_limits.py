"""rate limits: a count per limit and fixed window, kept by one upsert, for the hits

An attempt is now counted and decided in one statement (infra/rate_limits.py): an
upsert of its window's count that returns the new count. The table of single hits it
replaces is dropped, not converted: what it held is at most an hour of attempts, and
forgetting them once, at the upgrade, gives a client no more than one more allowance.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_counts",
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("bucket", "window_start", name=op.f("pk_rate_limit_counts")),
    )
    with op.batch_alter_table("rate_limit_counts", schema=None) as batch_op:
        batch_op.create_index("ix_rate_limit_counts_window_start", ["window_start"], unique=False)
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limit_hits_at")
        batch_op.drop_index("ix_rate_limit_hits_bucket_at")
    op.drop_table("rate_limit_hits")


def downgrade() -> None:
    op.create_table(
        "rate_limit_hits",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("bucket", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_hits")),
    )
    with op.batch_alter_table("rate_limit_hits", schema=None) as batch_op:
        batch_op.create_index("ix_rate_limit_hits_bucket_at", ["bucket", "at"], unique=False)
        batch_op.create_index("ix_rate_limit_hits_at", ["at"], unique=False)
    with op.batch_alter_table("rate_limit_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_rate_limit_counts_window_start")
    op.drop_table("rate_limit_counts")
