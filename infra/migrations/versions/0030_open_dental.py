"""open dental: a practice's connector (its API's address, its keys encrypted, the
Imaging category, how often patients are synced and where the last sync stopped), and
which clinic each Open Dental ClinicNum is

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-06 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "open_dental_integrations",
        sa.Column("practice_id", sa.String(length=36), nullable=False),
        sa.Column("base_url", sa.String(length=300), nullable=False),
        sa.Column("developer_key", sa.Text(), nullable=False),
        sa.Column("customer_key", sa.Text(), nullable=False),
        sa.Column("document_category", sa.Integer(), nullable=True),
        sa.Column("sync_minutes", sa.Integer(), server_default="15", nullable=False),
        sa.Column("server_date_time", sa.String(length=30), nullable=True),
        sa.Column("keys_refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_sync", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_open_dental_integrations_practice_id_practices"),
        ),
        sa.PrimaryKeyConstraint("practice_id", name=op.f("pk_open_dental_integrations")),
    )
    op.create_table(
        "open_dental_clinics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("practice_id", sa.String(length=36), nullable=False),
        sa.Column("clinic_num", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["clinic_id"], ["clinics.id"], name=op.f("fk_open_dental_clinics_clinic_id_clinics")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"],
            ["practices.id"],
            name=op.f("fk_open_dental_clinics_practice_id_practices"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open_dental_clinics")),
        sa.UniqueConstraint("clinic_id", name=op.f("uq_open_dental_clinics_clinic_id")),
        sa.UniqueConstraint(
            "practice_id", "clinic_num", name=op.f("uq_open_dental_clinics_practice_id")
        ),
    )
    with op.batch_alter_table("open_dental_clinics", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_open_dental_clinics_practice_id"), ["practice_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("open_dental_clinics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_open_dental_clinics_practice_id"))
    op.drop_table("open_dental_clinics")
    op.drop_table("open_dental_integrations")
