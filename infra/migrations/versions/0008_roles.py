"""staff roles (admin, clerk, operator), account and token lifecycle

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("role", sa.String(length=10), nullable=False, server_default="clerk")
        )
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.add_column(
            sa.Column(
                "must_change_password", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.execute("UPDATE staff_users SET role = 'admin' WHERE is_admin")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        # The role is set by the app for every new account; no default stays behind.
        batch_op.alter_column("role", server_default=None)
        batch_op.alter_column("practice_id", existing_type=sa.String(length=36), nullable=True)
        batch_op.drop_column("is_admin")
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("expires_at")
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_column("last_seen_at")
    # Operators belong to no practice and had no place before this revision.
    op.execute(
        "DELETE FROM api_tokens WHERE staff_id IN "
        "(SELECT id FROM staff_users WHERE role = 'operator')"
    )
    op.execute(
        "DELETE FROM staff_sessions WHERE staff_id IN "
        "(SELECT id FROM staff_users WHERE role = 'operator')"
    )
    op.execute("DELETE FROM staff_users WHERE role = 'operator'")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("is_admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute("UPDATE staff_users SET is_admin = (role = 'admin')")
    with op.batch_alter_table("staff_users", schema=None) as batch_op:
        batch_op.alter_column("is_admin", server_default=None)
        batch_op.alter_column("practice_id", existing_type=sa.String(length=36), nullable=False)
        batch_op.drop_column("must_change_password")
        batch_op.drop_column("active")
        batch_op.drop_column("role")
