"""open dental records: what went to a patient's Open Dental (a reply's files with their
DocNum, commlogs with their CommlogNum, or why Open Dental refused one), and alerts that
name the file Open Dental refused

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 02:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0031"
down_revision: str | None = "0030"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "open_dental_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("practice_id", sa.String(length=36), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("number", sa.Integer(), nullable=True),
        sa.Column("refused", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_open_dental_records_practice_id_practices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open_dental_records")),
        sa.UniqueConstraint("key", name=op.f("uq_open_dental_records_key")),
    )
    with op.batch_alter_table("open_dental_records", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_open_dental_records_practice_id"), ["practice_id"], unique=False
        )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attachment_id", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_alerts_attachment_id_attachments"),
            "attachments",
            ["attachment_id"],
            ["id"],
        )


def downgrade() -> None:
    # Alerts about files Open Dental refused did not exist before this revision.
    op.execute("DELETE FROM alerts WHERE attachment_id IS NOT NULL")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_alerts_attachment_id_attachments"), type_="foreignkey"
        )
        batch_op.drop_column("attachment_id")
    with op.batch_alter_table("open_dental_records", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_open_dental_records_practice_id"))
    op.drop_table("open_dental_records")
