"""audit log: the database decides each link's place in the chain, and moves the head

A link is filled only as the next one after the chain's head (position and prev_hash),
the head moves with each fill and never otherwise, and a link is always written empty.
On PostgreSQL the trigger also computes the link's hash, so the app's role cannot fill
one with a hash that does not match its event. Existing links stay as they are.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 17:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "the audit log is append-only"
NOT_NEXT = "an audit link must come next after the chain''s head"
NOT_EMPTY = "an audit link is written empty and filled in its turn"
WRONG_HASH = "an audit link''s hash must match its event"
HEAD_MOVED = "the audit chain''s head moves only with its links"

# ``infra.audit_chain.event_hash`` in SQL, for recipe "audit-chain-v1": SHA-256 over the
# JSON array of the version, the event's columns and prev_hash, written as Python's
# ``json.dumps(..., ensure_ascii=False, separators=(",", ":"))`` writes it (to_json
# escapes strings exactly as it does).
PG_HASH = """CREATE FUNCTION audit_link_hash(event integer, prev_hash text) RETURNS text AS $$
        SELECT encode(sha256(convert_to('[' || concat_ws(',',
            to_json('audit-chain-v1'::text)::text,
            e.id::text,
            to_json(to_char(e.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))::text,
            COALESCE(to_json(e.practice_id)::text, 'null'),
            COALESCE(to_json(e.action)::text, 'null'),
            COALESCE(to_json(e.actor_type)::text, 'null'),
            COALESCE(to_json(e.actor_id)::text, 'null'),
            COALESCE(to_json(e.patient_id)::text, 'null'),
            COALESCE(to_json(e.secure_email_id)::text, 'null'),
            COALESCE(to_json(e.client_address)::text, 'null'),
            COALESCE(to_json(e.detail)::text, 'null'),
            COALESCE(to_json(prev_hash)::text, 'null')
        ) || ']', 'UTF8')), 'hex')
        FROM audit_events e WHERE e.id = event
        $$ LANGUAGE sql STABLE"""
PG_FILL_ONCE = f"""CREATE OR REPLACE FUNCTION audit_links_fill_once() RETURNS trigger AS $$
        DECLARE
            head audit_chain_head%ROWTYPE;
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.position IS NULL AND NEW.event_id = OLD.event_id
               AND NEW.position IS NOT NULL AND NEW.prev_hash IS NOT NULL
               AND NEW.hash IS NOT NULL THEN
                SELECT * INTO head FROM audit_chain_head WHERE id = 1;
                IF NEW.position IS DISTINCT FROM head.last_position + 1
                   OR NEW.prev_hash IS DISTINCT FROM head.last_hash THEN
                    RAISE EXCEPTION '{NOT_NEXT} (link %)', head.last_position;
                END IF;
                IF NEW.hash IS DISTINCT FROM audit_link_hash(NEW.event_id, NEW.prev_hash) THEN
                    RAISE EXCEPTION '{WRONG_HASH}';
                END IF;
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{REFUSAL}';
        END;
        $$ LANGUAGE plpgsql"""
PG_TRIGGERS = [
    PG_HASH,
    PG_FILL_ONCE,
    f"""CREATE FUNCTION audit_links_written_empty() RETURNS trigger AS $$
        BEGIN
            IF NEW.position IS NULL AND NEW.prev_hash IS NULL AND NEW.hash IS NULL THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{NOT_EMPTY}';
        END;
        $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_links_written_empty BEFORE INSERT ON audit_links
       FOR EACH ROW EXECUTE FUNCTION audit_links_written_empty()""",
    # After the row is written, so that the head's own trigger finds the link it names.
    """CREATE FUNCTION audit_links_advance_head() RETURNS trigger AS $$
        BEGIN
            UPDATE audit_chain_head SET last_position = NEW.position, last_hash = NEW.hash
            WHERE id = 1;
            RETURN NULL;
        END;
        $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_links_advance_head AFTER UPDATE ON audit_links
       FOR EACH ROW EXECUTE FUNCTION audit_links_advance_head()""",
    # The head may be written unchanged (how the linker takes its turn) or moved one link
    # on, onto a link that follows it: only the fill above does that, in the same step.
    f"""CREATE FUNCTION audit_chain_head_follows_links() RETURNS trigger AS $$
        BEGIN
            IF NEW IS NOT DISTINCT FROM OLD THEN
                RETURN NEW;
            END IF;
            IF NEW.id = OLD.id AND NEW.last_position = OLD.last_position + 1
               AND EXISTS (SELECT 1 FROM audit_links WHERE position = NEW.last_position
                           AND hash = NEW.last_hash AND prev_hash = OLD.last_hash) THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{HEAD_MOVED}';
        END;
        $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_chain_head_follows_links BEFORE UPDATE ON audit_chain_head
       FOR EACH ROW EXECUTE FUNCTION audit_chain_head_follows_links()""",
]
# Revision 0016's, restored on the way down.
PG_FILL_ONCE_0016 = f"""CREATE OR REPLACE FUNCTION audit_links_fill_once() RETURNS trigger AS $$
        BEGIN
            IF TG_OP = 'UPDATE' AND OLD.position IS NULL AND NEW.event_id = OLD.event_id
               AND NEW.position IS NOT NULL AND NEW.prev_hash IS NOT NULL
               AND NEW.hash IS NOT NULL THEN
                RETURN NEW;
            END IF;
            RAISE EXCEPTION '{REFUSAL}';
        END;
        $$ LANGUAGE plpgsql"""

# SQLite has no SHA-256 of its own to check hashes with; it has no roles either, so
# whoever can write to the file is its owner, and ``securemail audit verify`` checks them.
SQLITE_FILL_ONCE_0016 = f"""CREATE TRIGGER audit_links_fill_once BEFORE UPDATE ON audit_links
        WHEN OLD.position IS NOT NULL OR NEW.event_id IS NOT OLD.event_id
             OR NEW.position IS NULL OR NEW.prev_hash IS NULL OR NEW.hash IS NULL
        BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END"""
# One trigger with its checks in order, so that each refusal says what it refuses.
SQLITE_FILL_ONCE = f"""CREATE TRIGGER audit_links_fill_once BEFORE UPDATE ON audit_links
        BEGIN
            SELECT RAISE(ABORT, '{REFUSAL}')
            WHERE OLD.position IS NOT NULL OR NEW.event_id IS NOT OLD.event_id
                  OR NEW.position IS NULL OR NEW.prev_hash IS NULL OR NEW.hash IS NULL;
            SELECT RAISE(ABORT, '{NOT_NEXT}')
            WHERE NOT EXISTS (SELECT 1 FROM audit_chain_head WHERE id = 1
                              AND last_position + 1 = NEW.position
                              AND last_hash = NEW.prev_hash);
        END"""
SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER audit_links_written_empty BEFORE INSERT ON audit_links
        WHEN NEW.position IS NOT NULL OR NEW.prev_hash IS NOT NULL OR NEW.hash IS NOT NULL
        BEGIN SELECT RAISE(ABORT, '{NOT_EMPTY}'); END""",
    """CREATE TRIGGER audit_links_advance_head AFTER UPDATE ON audit_links
        BEGIN
            UPDATE audit_chain_head SET last_position = NEW.position, last_hash = NEW.hash
            WHERE id = 1;
        END""",
    f"""CREATE TRIGGER audit_chain_head_follows_links BEFORE UPDATE ON audit_chain_head
        WHEN NOT (
            NEW.id IS OLD.id AND NEW.last_position IS OLD.last_position
            AND NEW.last_hash IS OLD.last_hash
            OR NEW.id IS OLD.id AND NEW.last_position = OLD.last_position + 1
               AND EXISTS (SELECT 1 FROM audit_links WHERE position = NEW.last_position
                           AND hash = NEW.last_hash AND prev_hash = OLD.last_hash))
        BEGIN SELECT RAISE(ABORT, '{HEAD_MOVED}'); END""",
]


def _postgresql() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    if _postgresql():
        for statement in PG_TRIGGERS:
            op.execute(statement)
        return
    op.execute("DROP TRIGGER audit_links_fill_once")
    for statement in (SQLITE_FILL_ONCE, *SQLITE_TRIGGERS):
        op.execute(statement)


def downgrade() -> None:
    if _postgresql():
        op.execute("DROP TRIGGER audit_chain_head_follows_links ON audit_chain_head")
        op.execute("DROP FUNCTION audit_chain_head_follows_links()")
        op.execute("DROP TRIGGER audit_links_advance_head ON audit_links")
        op.execute("DROP FUNCTION audit_links_advance_head()")
        op.execute("DROP TRIGGER audit_links_written_empty ON audit_links")
        op.execute("DROP FUNCTION audit_links_written_empty()")
        op.execute(PG_FILL_ONCE_0016)
        op.execute("DROP FUNCTION audit_link_hash(integer, text)")
        return
    for name in (
        "audit_chain_head_follows_links",
        "audit_links_advance_head",
        "audit_links_written_empty",
        "audit_links_fill_once",
    ):
        op.execute(f"DROP TRIGGER {name}")
    op.execute(SQLITE_FILL_ONCE_0016)
