"""audit events store the hashed bytes (chain format 2)

Each event's content moves into `body`, the exact bytes that are hashed (with the columns
events are found by: app/audit/chain.py). The existing chain is verified first (a broken
chain is refused, so a migration can never launder tampering), then re-sealed in format 2
in the same order, and an `audit.format_changed` event naming the last format-1 hash links
the two: whoever kept that hash can still tie it to the new chain. The downgrade does the
reverse.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import hashlib
import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from app.audit.chain import GENESIS, message, parse_time, seal, v1_event_hash

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSAL = "audit_events is append-only"
SQLITE_GUARDS = [
    f"""
    CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: UPDATE refused'); END
    """,
    f"""
    CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    BEGIN SELECT RAISE(ABORT, '{REFUSAL}: DELETE refused'); END
    """,
]
V1_TYPES: dict[str, Any] = {
    "actor": sa.String(length=100),
    "occurred_at": sa.DateTime(timezone=True),
    "received_at": sa.DateTime(timezone=True),
    "reasons": sa.JSON(),
    "policy_version": sa.Integer(),
    "detail": sa.JSON(),
}
NOT_NULL_V1 = ("actor", "occurred_at", "received_at", "reasons", "detail")
BATCH = 5000


def _events(*extra: str) -> sa.TableClause:
    columns = ["sequence", "type", "call_sid", "recording_sid", "prev_hash", "hash", *extra]
    types = {**V1_TYPES, "sequence": sa.BigInteger(), "body": sa.LargeBinary()}
    return sa.table("audit_events", *(sa.column(n, types.get(n, sa.String())) for n in columns))


HEAD = sa.table("audit_head", sa.column("sequence", sa.BigInteger), sa.column("hash", sa.String))


def _unguard(bind: sa.Connection) -> None:
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_events DISABLE TRIGGER USER")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")


def _guard(bind: sa.Connection) -> None:
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_events ENABLE TRIGGER USER")
    else:
        for statement in SQLITE_GUARDS:
            op.execute(statement)


def _rows(bind: sa.Connection, table: sa.TableClause) -> Iterator[Any]:
    """Every event in sequence order, a batch at a time (the table may be large)."""
    after = 0
    while True:
        batch = bind.execute(
            sa.select(table).where(table.c.sequence > after).order_by(table.c.sequence).limit(BATCH)
        ).mappings()
        rows = list(batch)
        if not rows:
            return
        yield from rows
        after = rows[-1]["sequence"]


def _refuse(sequence: int, problem: str) -> RuntimeError:
    return RuntimeError(
        f"the audit chain is broken at sequence {sequence} ({problem}): the migration "
        "refuses to re-seal it. Keep this database as evidence and investigate "
        "(`callguard audit verify` on the previous release names the same place)."
    )


def _check_head(bind: sa.Connection, count: int, last: str) -> None:
    head = bind.execute(sa.select(HEAD.c.sequence, HEAD.c.hash)).one()
    if head.sequence != count or head.hash != last:
        raise _refuse(count + 1 if head.sequence > count else head.sequence, "head")


def _move_head(bind: sa.Connection, sequence: int, hash_: str) -> None:
    bind.execute(HEAD.update().values(sequence=sequence, hash=hash_))


def upgrade() -> None:
    bind = op.get_bind()
    _unguard(bind)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("body", sa.LargeBinary(), nullable=True))
    old = _events("body", *V1_TYPES)
    previous_v1 = previous = GENESIS
    count = 0
    for row in _rows(bind, old):
        count += 1
        if row["sequence"] != count:
            raise _refuse(count, "gap")
        if row["prev_hash"] != previous_v1:
            raise _refuse(count, "link_broken")
        if v1_event_hash(row) != row["hash"]:
            raise _refuse(count, "content_changed")
        sealed = seal(row, count, previous)
        bind.execute(
            old.update()
            .where(old.c.sequence == count)
            .values(body=sealed["body"], prev_hash=previous, hash=sealed["hash"])
        )
        previous_v1, previous = row["hash"], sealed["hash"]
    _check_head(bind, count, previous_v1)
    with op.batch_alter_table(
        "audit_events", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        for name in V1_TYPES:
            batch_op.drop_column(name)
        batch_op.alter_column("body", existing_type=sa.LargeBinary(), nullable=False)
    if count:
        now = datetime.now(UTC)
        event = {
            "type": "audit.format_changed",
            "call_sid": None,
            "recording_sid": None,
            "actor": "migration",
            "occurred_at": now,
            "received_at": now,
            "reasons": [],
            "policy_version": None,
            "detail": {"format": 2, "from_format": 1, "format_1_head": previous_v1},
        }
        sealed = seal(event, count + 1, previous)
        bind.execute(_events("body").insert().values(**sealed))
        previous, count = sealed["hash"], count + 1
    _move_head(bind, count, previous)
    _guard(bind)


def downgrade() -> None:
    bind = op.get_bind()
    _unguard(bind)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for name, type_ in V1_TYPES.items():
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    table = _events("body", *V1_TYPES)
    previous_v1 = previous = GENESIS
    count = 0
    for row in _rows(bind, table):
        count += 1
        if row["sequence"] != count:
            raise _refuse(count, "gap")
        if row["prev_hash"] != previous or hashlib.sha256(message(row)).hexdigest() != row["hash"]:
            raise _refuse(count, "link_broken" if row["prev_hash"] != previous else "changed")
        content = json.loads(row["body"])
        values = {
            "actor": content["actor"],
            "occurred_at": parse_time(content["occurred_at"]),
            "received_at": parse_time(content["received_at"]),
            "reasons": content["reasons"],
            "policy_version": content["policy_version"],
            "detail": content["detail"],
        }
        digest = v1_event_hash({**row, **values, "prev_hash": previous_v1})
        bind.execute(
            table.update()
            .where(table.c.sequence == count)
            .values(**values, prev_hash=previous_v1, hash=digest)
        )
        previous, previous_v1 = row["hash"], digest
    _check_head(bind, count, previous)
    with op.batch_alter_table(
        "audit_events", schema=None, table_kwargs={"sqlite_autoincrement": True}
    ) as batch_op:
        for name in NOT_NULL_V1:
            batch_op.alter_column(name, existing_type=V1_TYPES[name], nullable=False)
        batch_op.drop_column("body")
    _move_head(bind, count, previous_v1)
    _guard(bind)
