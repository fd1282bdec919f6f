"""clinics: a practice's locations, each with its own sender, phone, address, time zone
and Secure Email switch; the clinic of a patient and of each secure email

Patients and messages already there have no clinic: the practice's own, as before.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-06 20:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "clinics",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("practice_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("secure_email_enabled", sa.Boolean(), nullable=False),
        sa.Column("sender_address", sa.String(length=320), nullable=True),
        sa.Column("phone", sa.String(length=40), nullable=True),
        sa.Column("address", sa.String(length=300), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["practices.id"], name=op.f("fk_clinics_practice_id_practices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clinics")),
        sa.UniqueConstraint("practice_id", "name", name=op.f("uq_clinics_practice_id")),
    )
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clinics_practice_id"), ["practice_id"], unique=False)
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clinic_id", sa.String(length=36), nullable=True))
        batch_op.create_index(batch_op.f("ix_patients_clinic_id"), ["clinic_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_patients_clinic_id_clinics"), "clinics", ["clinic_id"], ["id"]
        )
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clinic_id", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_secure_emails_clinic_id_clinics"), "clinics", ["clinic_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("secure_emails", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_secure_emails_clinic_id_clinics"), type_="foreignkey"
        )
        batch_op.drop_column("clinic_id")
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_patients_clinic_id_clinics"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_patients_clinic_id"))
        batch_op.drop_column("clinic_id")
    with op.batch_alter_table("clinics", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clinics_practice_id"))
    op.drop_table("clinics")
