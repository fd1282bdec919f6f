"""patients: families share an address, and each may name its guarantor

An address is no longer unique in a practice (a parent and children share one mailbox);
an ordinary index keeps finding who holds an address fast. ``guarantor_id`` names the
head of the patient's family. Going down brings the uniqueness back, which fails while
two patients of a practice share an address: they must be told apart first.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 20:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("uq_patients_practice_id"), type_="unique")
        batch_op.create_index(
            "ix_patients_practice_address", ["practice_id", "email_normalised"], unique=False
        )
        batch_op.add_column(sa.Column("guarantor_id", sa.String(length=36), nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_patients_guarantor_id_patients"), "patients", ["guarantor_id"], ["id"]
        )
        batch_op.create_index(op.f("ix_patients_guarantor_id"), ["guarantor_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_index(op.f("ix_patients_guarantor_id"))
        batch_op.drop_constraint(op.f("fk_patients_guarantor_id_patients"), type_="foreignkey")
        batch_op.drop_column("guarantor_id")
        batch_op.drop_index("ix_patients_practice_address")
        batch_op.create_unique_constraint(
            op.f("uq_patients_practice_id"), ["practice_id", "email_normalised"]
        )
