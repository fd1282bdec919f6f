"""patients from other systems: where a patient came from (a CSV import, Open Dental) and
their id there, one patient per record

Patients already there were added by hand: no source, no id.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-06 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("external_source", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(
            "uq_patients_external", ["practice_id", "external_source", "external_id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("patients", schema=None) as batch_op:
        batch_op.drop_constraint("uq_patients_external", type_="unique")
        batch_op.drop_column("external_id")
        batch_op.drop_column("external_source")
