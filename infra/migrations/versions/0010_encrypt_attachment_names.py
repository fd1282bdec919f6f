"""attachment file names encrypted at rest, like subjects

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 11:20:00

A file name can be PHI ("biopsy-jane.pdf"), so ``attachments.filename`` becomes an
``EncryptedText`` column: wider (a sealed name is longer than the name) and every existing
row sealed under the keys the app uses. Downgrade opens them again.

The keys are the ones this process configured (the web app configures it before it
migrates), otherwise the one the settings name (``securemail migrate`` reads the same
environment as the app). It is looked up only when there is a row to convert, so a new
or empty database migrates without keys.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from infra.crypto.fields import (
    FieldEncryptionNotConfigured,
    configured_keys,
    decrypt_field,
    encrypt_field,
)
from infra.crypto.keys import EncryptionKeys, encryption_keys
from infra.settings import get_settings

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMN = "attachments.filename"
# Files named before this revision; safe_filename keeps a name within 200 bytes.
PLAIN_LENGTH = 255


def _field_keys() -> EncryptionKeys:
    try:
        return configured_keys()
    except FieldEncryptionNotConfigured:
        return encryption_keys(get_settings())


def _rewrite_names(seal: bool) -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.text("SELECT id, filename FROM attachments")).all()
    if not rows:
        return
    keys = _field_keys()
    for attachment_id, stored in rows:
        name = encrypt_field(keys, COLUMN, stored) if seal else decrypt_field(keys, COLUMN, stored)
        connection.execute(
            sa.text("UPDATE attachments SET filename = :name WHERE id = :id"),
            {"name": name, "id": attachment_id},
        )


def upgrade() -> None:
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.alter_column(
            "filename",
            existing_type=sa.String(length=PLAIN_LENGTH),
            type_=sa.Text(),
            existing_nullable=False,
        )
    _rewrite_names(seal=True)


def downgrade() -> None:
    _rewrite_names(seal=False)
    with op.batch_alter_table("attachments", schema=None) as batch_op:
        batch_op.alter_column(
            "filename",
            existing_type=sa.Text(),
            type_=sa.String(length=PLAIN_LENGTH),
            existing_nullable=False,
        )
