"""audit hash chain, head row, append-only triggers

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from app.audit.chain import GENESIS
from app.audit.chain import v1_event_hash as event_hash

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "audit_events is append-only"

POSTGRES_UP = [
    f"""
    CREATE FUNCTION audit_events_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSAL}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER audit_events_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()
    """,
    # Row-level triggers do not fire on TRUNCATE: a statement-level one does.
    """
    CREATE TRIGGER audit_events_no_truncate
    BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only()
    """,
]
POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events",
    "DROP TRIGGER IF EXISTS audit_events_no_update_delete ON audit_events",
    "DROP FUNCTION IF EXISTS audit_events_append_only()",
]
SQLITE_UP = [
    f"""
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE refused'); END
    """,
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS audit_events_no_update",
    "DROP TRIGGER IF EXISTS audit_events_no_delete",
]

EVENTS = sa.table(
    "audit_events",
    sa.column("sequence", sa.BigInteger),
    sa.column("type", sa.String),
    sa.column("call_sid", sa.String),
    sa.column("recording_sid", sa.String),
    sa.column("actor", sa.String),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("received_at", sa.DateTime(timezone=True)),
    sa.column("reasons", sa.JSON),
    sa.column("policy_version", sa.Integer),
    sa.column("detail", sa.JSON),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
)


def _chain_existing_events(bind: sa.Connection) -> tuple[int, str]:
    """Events written before the chain existed are chained in sequence order, renumbered
    1..N (earlier versions could leave gaps on a rolled-back transaction)."""
    previous, sequence = GENESIS, 0
    rows = bind.execute(sa.select(EVENTS).order_by(EVENTS.c.sequence)).mappings().all()
    for row in rows:
        sequence += 1
        content = {**row, "sequence": sequence, "prev_hash": previous}
        digest = event_hash(content)
        bind.execute(
            EVENTS.update()
            .where(EVENTS.c.sequence == row["sequence"])
            .values(sequence=sequence, prev_hash=previous, hash=digest)
        )
        previous = digest
    return sequence, previous


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    bind = op.get_bind()
    last_sequence, last_hash = _chain_existing_events(bind)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "sequence": last_sequence, "hash": last_hash}])
    for statement in POSTGRES_UP if bind.dialect.name == "postgresql" else SQLITE_UP:
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    for statement in POSTGRES_DOWN if bind.dialect.name == "postgresql" else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table("audit_head")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_column("hash")
        batch_op.drop_column("prev_hash")
