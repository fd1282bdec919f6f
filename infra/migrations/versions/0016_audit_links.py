"""audit log: each event's link in the hash chain moves to audit_links, made by a linker

An event is now written with an empty link and linked afterwards, so audited requests no
longer queue on the chain's head row (infra/audit_chain.py). The links of the events
already chained are copied as they are: their hashes stay valid.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 19:00:00
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "the audit log is append-only"
# A link may change once, from empty to filled, and never go.
PG_LINK_TRIGGERS = [
    f"""CREATE FUNCTION audit_links_fill_once() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.position IS NULL AND NEW.event_id = OLD.event_id
               AND NEW.position IS NOT NULL AND NEW.prev_hash IS NOT NULL
               AND NEW.hash IS NOT NULL THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{REFUSAL}';
        END;
        $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_links_fill_once BEFORE UPDATE OR DELETE ON audit_links
       FOR EACH ROW EXECUTE FUNCTION audit_links_fill_once()""",
    """CREATE TRIGGER audit_links_no_truncate BEFORE TRUNCATE ON audit_links
       FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()""",
]
SQLITE_LINK_TRIGGERS = [
    f"""CREATE TRIGGER audit_links_fill_once BEFORE UPDATE ON audit_links
        WHEN OLD.position IS NOT NULL OR NEW.event_id IS NOT OLD.event_id
             OR NEW.position IS NULL OR NEW.prev_hash IS NULL OR NEW.hash IS NULL
        BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
    f"""CREATE TRIGGER audit_links_no_delete BEFORE DELETE ON audit_links
        BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END""",
]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "audit_links",
        sa.Column("event_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("position", sa.Integer(), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=True),
        sa.Column("hash", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_audit_links")),
        sa.UniqueConstraint("position", name=op.f("uq_audit_links_position")),
    )
    # What the linker looks for: the empty links, however long the log.
    op.create_index(
        "ix_audit_links_unlinked",
        "audit_links",
        ["event_id"],
        sqlite_where=sa.text("position IS NULL"),
        postgresql_where=sa.text("position IS NULL"),
    )
    # Positions are consecutive even where ids have gaps (events from before the chain).
    op.execute(
        """INSERT INTO audit_links (event_id, position, prev_hash, hash)
           SELECT id, ROW_NUMBER() OVER (ORDER BY id), prev_hash, hash FROM audit_events"""
    )
    with op.batch_alter_table("audit_chain_head", schema=None) as batch_op:
        batch_op.alter_column("last_event_id", new_column_name="last_position")
    # The head's event's position; past the end if that event is already gone.
    op.execute(
        """UPDATE audit_chain_head SET last_position = COALESCE(
               (SELECT position FROM audit_links WHERE event_id = last_position),
               (SELECT count(*) + 1 FROM audit_links))
           WHERE last_position > 0"""
    )
    _without_event_triggers(_drop_event_columns)
    for statement in PG_LINK_TRIGGERS if _postgresql() else SQLITE_LINK_TRIGGERS:
        op.execute(statement)
    if _postgresql():
        # Ids were given by the chain until now, so the sequence never moved.
        op.execute(
            """SELECT setval(pg_get_serial_sequence('audit_events', 'id'),
                             COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM audit_events"""
        )


def _drop_event_columns() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")


def _without_event_triggers(change: Callable[[], None]) -> None:
    """SQLite copies a table to change its columns, and the copy has no triggers."""
    if _postgresql():
        change()
        return
    for verb in ("update", "delete"):
        op.execute(f"DROP TRIGGER audit_events_no_{verb}")
    change()
    for verb in ("update", "delete"):
        op.execute(
            f"""CREATE TRIGGER audit_events_no_{verb} BEFORE {verb.upper()} ON audit_events
                BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"""
        )


def downgrade() -> None:
    unlinked = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM audit_links WHERE position IS NULL")
    )
    if unlinked:
        raise RuntimeError(
            f"{unlinked} audit event(s) are not linked yet: start the app once so its "
            "linker links them, then downgrade"
        )

    def restore_event_columns() -> None:
        with op.batch_alter_table("audit_events", schema=None) as batch_op:
            batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
            batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
        if _postgresql():
            op.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_append_only")
        op.execute(
            """UPDATE audit_events SET
                   prev_hash = (SELECT prev_hash FROM audit_links WHERE event_id = id),
                   hash = (SELECT hash FROM audit_links WHERE event_id = id)"""
        )
        if _postgresql():
            op.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_append_only")
        with op.batch_alter_table("audit_events", schema=None) as batch_op:
            batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
            batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)

    _without_event_triggers(restore_event_columns)
    op.execute(
        """UPDATE audit_chain_head SET last_position = COALESCE(
               (SELECT event_id FROM audit_links WHERE position = last_position), 0)"""
    )
    with op.batch_alter_table("audit_chain_head", schema=None) as batch_op:
        batch_op.alter_column("last_position", new_column_name="last_event_id")
    if _postgresql():
        op.execute("DROP TRIGGER audit_links_no_truncate ON audit_links")
        op.execute("DROP TRIGGER audit_links_fill_once ON audit_links")
        op.execute("DROP FUNCTION audit_links_fill_once()")
    op.drop_index("ix_audit_links_unlinked", table_name="audit_links")
    op.drop_table("audit_links")
