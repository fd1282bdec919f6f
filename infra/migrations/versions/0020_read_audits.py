"""audit log: an event's detail holds any length, so a list's event can name every
patient the page showed

A staff read of a list (the directory, the Sent box, the Email Client, the alerts) is one
event naming the ids of the patients shown: up to a few hundred ids, past the 200
characters the column held. Widening keeps every stored value as it is, so the hash chain
still verifies.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "the audit log is append-only"
NARROW = sa.String(length=200)


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def _without_event_triggers(change: Callable[[], None]) -> None:
    """SQLite copies a table to change a column's type, and the copy has no triggers."""
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


def upgrade() -> None:
    def widen() -> None:
        with op.batch_alter_table("audit_events", schema=None) as batch_op:
            batch_op.alter_column("detail", existing_type=NARROW, type_=sa.Text())

    _without_event_triggers(widen)


def downgrade() -> None:
    # An event is never shortened (it is hashed as stored): refuse rather than cut.
    longer = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM audit_events WHERE length(detail) > 200")
    )
    if longer:
        raise RuntimeError(
            f"{longer} audit event(s) have a detail longer than 200 characters, which "
            "revision 0016 cannot hold: the log cannot go back past this revision"
        )

    def narrow() -> None:
        with op.batch_alter_table("audit_events", schema=None) as batch_op:
            batch_op.alter_column("detail", existing_type=sa.Text(), type_=NARROW)

    _without_event_triggers(narrow)
