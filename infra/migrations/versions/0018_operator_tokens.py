"""operators: every codec token ends; the ones made before get 90 days from their creation

An operator's token opens every practice's histories, and until this revision one lived
until someone deleted it by hand. Each gets the expiry a new one gets, counted from when
it was made, not from today: the tokens older than 90 days, the likeliest to have been
copied somewhere, end now, and an operator replaces one with `securemail token create
--email <operator>` (the embedded stack replaces its own at its next start). The tokens
of practice software keep what their admins chose.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# domain.operators.DEFAULT_TOKEN_DAYS as this revision knows it, whatever it becomes.
TOKEN_DAYS = 90

_users = sa.table("staff_users", sa.column("id"), sa.column("role"))
_tokens = sa.table(
    "api_tokens",
    sa.column("id"),
    sa.column("staff_id"),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("expires_at", sa.DateTime(timezone=True)),
)


def _utc(value: datetime) -> datetime:
    # SQLite keeps no zone; the app writes UTC there.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def upgrade() -> None:
    connection = op.get_bind()
    # In Python, not in SQL: date arithmetic differs between SQLite and PostgreSQL, and
    # operators have a handful of tokens.
    unending = connection.execute(
        sa.select(_tokens.c.id, _tokens.c.created_at)
        .join(_users, _users.c.id == _tokens.c.staff_id)
        .where(_users.c.role == "operator", _tokens.c.expires_at.is_(None))
    ).all()
    for token_id, created_at in unending:
        connection.execute(
            sa.update(_tokens)
            .where(_tokens.c.id == token_id)
            .values(expires_at=_utc(created_at) + timedelta(days=TOKEN_DAYS))
        )


def downgrade() -> None:
    # The expiries stay: the code before this revision honours them, and making the
    # tokens unending again is what this revision exists to prevent.
    pass
