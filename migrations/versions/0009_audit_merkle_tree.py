"""the audit log as a Merkle tree, sequenced in groups (issue 16)

Adds the stored tree (audit_nodes: every complete perfect subtree's hash, append-only like
the events), its root in audit_head, and audit_pending, where events committed by a
transaction that did not hold the sequencing lock wait for their place
(app/audit/sequencer.py). The tree of the events already in the log is built here, from
their stored hashes, in sequence order: nothing in the chain changes, so it verifies as
before. The downgrade first places any waiting events in the chain (the chain alone, as
the code before this revision did), then drops the tree.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from alembic import op

from app.audit.chain import place
from app.audit.merkle import EMPTY_ROOT, Frontier, leaf_hash

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "audit_nodes is append-only"
POSTGRES_UP = [
    f"""
    CREATE FUNCTION audit_nodes_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSAL}: % refused', TG_OP USING ERRCODE = 'insufficient_privilege';
    END
    $$ LANGUAGE plpgsql
    """,
    """
    CREATE TRIGGER audit_nodes_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_nodes
    FOR EACH ROW EXECUTE FUNCTION audit_nodes_append_only()
    """,
    """
    CREATE TRIGGER audit_nodes_no_truncate
    BEFORE TRUNCATE ON audit_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION audit_nodes_append_only()
    """,
]
POSTGRES_DOWN = [
    "DROP TRIGGER IF EXISTS audit_nodes_no_truncate ON audit_nodes",
    "DROP TRIGGER IF EXISTS audit_nodes_no_update_delete ON audit_nodes",
    "DROP FUNCTION IF EXISTS audit_nodes_append_only()",
]
SQLITE_UP = [
    f"""
    CREATE TRIGGER audit_nodes_no_update BEFORE UPDATE ON audit_nodes
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER audit_nodes_no_delete BEFORE DELETE ON audit_nodes
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE refused'); END
    """,
]
SQLITE_DOWN = [
    "DROP TRIGGER IF EXISTS audit_nodes_no_update",
    "DROP TRIGGER IF EXISTS audit_nodes_no_delete",
]
BATCH = 10_000

EVENTS = sa.table(
    "audit_events",
    sa.column("sequence", sa.BigInteger),
    sa.column("type", sa.String),
    sa.column("call_sid", sa.String),
    sa.column("recording_sid", sa.String),
    sa.column("prev_hash", sa.String),
    sa.column("hash", sa.String),
    sa.column("body", sa.LargeBinary),
)
HEAD = sa.table(
    "audit_head",
    sa.column("id", sa.Integer),
    sa.column("sequence", sa.BigInteger),
    sa.column("hash", sa.String),
    sa.column("root", sa.LargeBinary),
)
PENDING = sa.table(
    "audit_pending",
    sa.column("id", sa.BigInteger),
    sa.column("type", sa.String),
    sa.column("call_sid", sa.String),
    sa.column("recording_sid", sa.String),
    sa.column("body", sa.LargeBinary),
)


def _hashes(bind: sa.Connection) -> Iterator[str]:
    """Every event's hash in sequence order, a batch at a time (keyset, constant memory)."""
    after = 0
    while True:
        rows = bind.execute(
            sa.select(EVENTS.c.sequence, EVENTS.c.hash)
            .where(EVENTS.c.sequence > after)
            .order_by(EVENTS.c.sequence)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        for row in rows:
            yield row.hash
        after = rows[-1].sequence


def _build_tree(bind: sa.Connection, nodes: sa.Table) -> None:
    frontier, made = Frontier(), []

    def flush() -> None:
        if made:
            bind.execute(
                nodes.insert(), [{"level": lv, "position": at, "hash": h} for lv, at, h in made]
            )
            made.clear()

    for digest in _hashes(bind):
        made += frontier.append([leaf_hash(bytes.fromhex(digest))])
        if len(made) >= BATCH:
            flush()
    flush()
    head = bind.execute(sa.select(HEAD.c.sequence)).scalar_one()
    if head != frontier.size:
        raise RuntimeError(
            f"audit_head says {head} events but the log holds {frontier.size}: "
            "run `callguard audit verify` and resolve that before migrating"
        )
    bind.execute(HEAD.update().values(root=frontier.root()))


def upgrade() -> None:
    nodes = op.create_table(
        "audit_nodes",
        sa.Column("level", sa.SmallInteger(), autoincrement=False, nullable=False),
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hash", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("level", "position", name=op.f("pk_audit_nodes")),
    )
    op.create_table(
        "audit_pending",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("recording_sid", sa.String(length=64), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_pending")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.add_column(sa.Column("root", sa.LargeBinary(), nullable=True))
    bind = op.get_bind()
    bind.execute(HEAD.update().values(root=EMPTY_ROOT))
    _build_tree(bind, nodes)
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.alter_column("root", existing_type=sa.LargeBinary(), nullable=False)
    for statement in POSTGRES_UP if bind.dialect.name == "postgresql" else SQLITE_UP:
        op.execute(statement)


def _place_waiting(bind: sa.Connection) -> None:
    """Events committed but not yet placed go into the chain, oldest first."""
    waiting = bind.execute(sa.select(PENDING).order_by(PENDING.c.id)).mappings().all()
    if not waiting:
        return
    head = bind.execute(sa.select(HEAD.c.sequence, HEAD.c.hash)).one()
    sequence, previous, rows = head.sequence, head.hash, []
    for row in waiting:
        sequence += 1
        rows.append(place(row, sequence, previous))
        previous = rows[-1]["hash"]
    bind.execute(EVENTS.insert(), rows)
    bind.execute(HEAD.update().values(sequence=sequence, hash=previous))


def downgrade() -> None:
    bind = op.get_bind()
    _place_waiting(bind)
    for statement in POSTGRES_DOWN if bind.dialect.name == "postgresql" else SQLITE_DOWN:
        op.execute(statement)
    op.drop_table("audit_pending")
    op.drop_table("audit_nodes")
    with op.batch_alter_table("audit_head", schema=None) as batch_op:
        batch_op.drop_column("root")
