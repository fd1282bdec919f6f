"""audit log: hash chain, its head row, and no TRUNCATE

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 11:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from infra.audit_chain import GENESIS, HASHED, HEAD_ID, event_hash

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The columns as this revision knows them, whatever the models say later.
audit_events = sa.table(
    "audit_events",
    sa.column("id", sa.Integer()),
    sa.column("at", sa.DateTime(timezone=True)),
    *(sa.column(name, sa.String()) for name in HASHED if name not in ("id", "at")),
    sa.column("hash", sa.String()),
)
audit_chain_head = sa.table(
    "audit_chain_head",
    sa.column("id", sa.Integer()),
    sa.column("last_event_id", sa.Integer()),
    sa.column("last_hash", sa.String()),
)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "audit_chain_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_event_id", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_chain_head")),
    )
    # The append-only triggers would refuse the hashes written below into existing rows.
    _allow_updates(True)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    last_id, last_hash = _chain_existing_events()
    op.bulk_insert(
        audit_chain_head, [{"id": HEAD_ID, "last_event_id": last_id, "last_hash": last_hash}]
    )
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
    _allow_updates(False)
    if _postgresql():
        # Even the owner must drop this trigger on purpose before emptying the log.
        op.execute(
            """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
               FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()"""
        )


def _chain_existing_events() -> tuple[int, str]:
    """Links the events written before the chain existed, oldest first."""
    bind = op.get_bind()
    previous_id, previous_hash = 0, GENESIS
    rows = bind.execute(sa.select(audit_events).order_by(audit_events.c.id)).mappings().all()
    for row in rows:
        linked = {**row, "prev_hash": previous_hash}
        digest = event_hash(linked)
        bind.execute(
            sa.update(audit_events)
            .where(audit_events.c.id == row["id"])
            .values(prev_hash=previous_hash, hash=digest)
        )
        previous_id, previous_hash = row["id"], digest
    return previous_id, previous_hash


def _allow_updates(allowed: bool) -> None:
    if _postgresql():
        verb = "DISABLE" if allowed else "ENABLE"
        op.execute(f"ALTER TABLE audit_events {verb} TRIGGER audit_events_append_only")
        return
    # SQLite cannot switch a trigger off; and copying the table (batch mode) drops them.
    for verb in ("update", "delete"):
        if allowed:
            op.execute(f"DROP TRIGGER audit_events_no_{verb}")
        else:
            op.execute(
                f"""CREATE TRIGGER audit_events_no_{verb} BEFORE {verb.upper()} ON audit_events
                    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END"""
            )


def downgrade() -> None:
    if _postgresql():
        op.execute("DROP TRIGGER audit_events_no_truncate ON audit_events")
    _allow_updates(True)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
    _allow_updates(False)
    op.drop_table("audit_chain_head")
