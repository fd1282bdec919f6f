"""audit log: the database writes each event's empty link, not the app

A trigger on audit_events inserts the event's empty audit_links row in the statement that
inserts the event: one statement per audited action instead of two (the ORM's
after_insert hook sent the second), and an event inserted by any means, the ORM or not,
gets its link. Existing events keep the links they have.

On SQLite a batch_alter_table of audit_events rebuilds the table and drops its triggers:
a later migration that does so must create this one again.

Revision ID: 0033
Revises: 0032
Create Date: 2026-12-07 09:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# After the event's row is written, so its id is known and the link's row finds it.
PG_TRIGGER = [
    """CREATE FUNCTION audit_events_link() RETURNS trigger AS $$
        BEGIN
            INSERT INTO audit_links (event_id) VALUES (NEW.id);
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_events_link AFTER INSERT ON audit_events
       FOR EACH ROW EXECUTE FUNCTION audit_events_link()""",
]
SQLITE_TRIGGER = """CREATE TRIGGER audit_events_link AFTER INSERT ON audit_events
        BEGIN INSERT INTO audit_links (event_id) VALUES (NEW.id); END"""


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        for statement in PG_TRIGGER:
            op.execute(statement)
        return
    op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if _postgresql():
        op.execute("DROP TRIGGER audit_events_link ON audit_events")
        op.execute("DROP FUNCTION audit_events_link()")
        return
    op.execute("DROP TRIGGER audit_events_link")
