"""Placing events in the audit log: one batch, by whoever holds the sequencing lock (or, on
SQLite, the write lock) — the events waiting in audit_pending, oldest first, then the
committing transaction's own — chained (app/audit/chain.py), added to the Merkle tree
(app/audit/merkle.py: the leaves, the nodes they complete, the new root in audit_head), in
as few statements as can be: on PostgreSQL one read and one write, since every round trip
made holding the lock is a wait for everyone else. The statements and the lock live here;
who calls it when is app/audit/sequencer.py's."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any

from prometheus_client import Histogram
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    func,
    insert,
    select,
    text,
    tuple_,
)

from app.audit.chain import place
from app.audit.merkle import Frontier, MissingNode, Node, leaf_hash
from app.storage.driver import Sql
from app.storage.models import AuditNode, AuditPending, table_of, utcnow

BATCH = 1000  # events placed in one sequencing transaction at most

# The advisory lock's two-integer key space is apart from the calls' one-bigint keys
# (app/calls/locks.py): "callguard audit", sequencing.
LOCK_SPACE, LOCK_KEY = 0x63676175, 1
LOCK = text(f"SELECT pg_advisory_xact_lock({LOCK_SPACE}, {LOCK_KEY})")
_TRY_LOCK = Sql(f"SELECT pg_try_advisory_xact_lock({LOCK_SPACE}, {LOCK_KEY})")


def try_lock(connection: Connection) -> bool:
    """The sequencing lock, if free (held to the transaction's end); every audited commit
    on PostgreSQL asks, so sent to the driver.

    A statement of its own, never joined to the batch's read: under READ COMMITTED a
    statement reads from a snapshot taken as it starts, so a read that took the lock
    itself would see the head and the waiting events as they were before the last holder
    committed — a stale sequence (a duplicate key, a failed commit) and events placed
    twice. Tried and measured (issue 17): one webhook in ~2,000 failed so under load."""
    ((locked,),) = _TRY_LOCK.run(connection).fetchall()
    return bool(locked)


_NODES = table_of(AuditNode)
_PENDING = table_of(AuditPending)
# Every batch's statements, sent to the driver (app/storage/driver.py: SQLAlchemy's own
# execution cost more than the statements themselves on this path).
_READ_HEAD = Sql("SELECT sequence, hash, root FROM audit_head WHERE id = 1")
# The head and the oldest waiting events in one read (a row for the head alone when
# nothing waits), in id order.
_READ_WAITING = Sql(
    f"""
    SELECT h.sequence, h.hash, h.root, w.id, w.queued_at, w.type, w.call_sid,
           w.recording_sid, w.body
    FROM audit_head AS h LEFT OUTER JOIN (
        SELECT id, queued_at, type, call_sid, recording_sid, body FROM audit_pending
        ORDER BY id LIMIT {BATCH}
    ) AS w ON true
    WHERE h.id = 1 ORDER BY w.id
    """  # noqa: S608 (BATCH is this module's constant)
)
_INSERT_EVENTS = Sql(
    "INSERT INTO audit_events (sequence, type, call_sid, recording_sid, prev_hash, hash, body)"
    " VALUES (:sequence, :type, :call_sid, :recording_sid, :prev_hash, :hash, :body)"
)
# (SQLite only, from the (level, position, hash) tuples merkle gives)
_INSERT_NODES = Sql("INSERT INTO audit_nodes (level, position, hash) VALUES (?, ?, ?)")
_MOVE_HEAD = Sql(
    "UPDATE audit_head SET sequence = :new_sequence, hash = :new_hash, root = :new_root"
    " WHERE id = 1"
)
WAIT = insert(_PENDING).returning(_PENDING.c.id, sort_by_parameter_order=True)
_EVENT_COLUMNS = ("sequence", "type", "call_sid", "recording_sid", "prev_hash", "hash", "body")
# PostgreSQL: a batch's events, nodes, the waiting rows it took and the head, written in one
# statement from arrays.
_WRITE_BATCH = Sql(
    """
    WITH placed AS (
        INSERT INTO audit_events (sequence, type, call_sid, recording_sid, prev_hash, hash, body)
        SELECT * FROM unnest(
            CAST(:sequence AS bigint[]), CAST(:type AS varchar[]), CAST(:call_sid AS varchar[]),
            CAST(:recording_sid AS varchar[]), CAST(:prev_hash AS varchar[]),
            CAST(:hash AS varchar[]), CAST(:body AS bytea[]))
    ), nodes AS (
        INSERT INTO audit_nodes (level, position, hash)
        SELECT * FROM unnest(
            CAST(:levels AS smallint[]), CAST(:positions AS bigint[]), CAST(:hashes AS bytea[]))
    ), taken AS (
        DELETE FROM audit_pending WHERE id = ANY(CAST(:ids AS bigint[]))
    ), moved AS (
        UPDATE audit_head SET sequence = :new_sequence, hash = :new_hash, root = :new_root
        WHERE id = 1 RETURNING 1
    )
    SELECT pg_notify('callguard_audit', '') FROM moved WHERE CAST(:notify AS boolean)
    """
)
# Sent (as the batch commits) when a batch placed events others were waiting for: each
# process's sequencer thread LISTENs, and then asks which of its waiters' are placed.
CHANNEL = "callguard_audit"
OLDEST = select(func.min(_PENDING.c.queued_at))
UNPLACED = select(_PENDING.c.id).where(_PENDING.c.id.in_(bindparam("ids", expanding=True)))

SEQUENCING_DELAY = Histogram(
    "callguard_audit_sequencing_delay_seconds",
    "How long committed audit events waited in audit_pending for their place in the log",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BATCH_EVENTS = Histogram(
    "callguard_audit_batch_events",
    "Events placed in the log by one sequencing transaction",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
)


class NodeTable:
    """The stored tree (audit_nodes) as app.audit.merkle's NodeStore: one query a call."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def get_many(self, nodes: Sequence[Node]) -> list[bytes]:
        if not nodes:
            return []
        wanted = list(dict.fromkeys(nodes))
        rows = self.connection.execute(
            select(_NODES.c.level, _NODES.c.position, _NODES.c.hash).where(
                tuple_(_NODES.c.level, _NODES.c.position).in_(wanted)
            )
        )
        found = {(row.level, row.position): bytes(row.hash) for row in rows}
        try:
            return [found[node] for node in nodes]
        except KeyError as exc:
            raise MissingNode(f"no node {exc.args[0]} in audit_nodes") from None


# The newest frontier this process placed events with, per database: the next batch
# extends it without reading the tree. Trusted only while the head still names its size
# and root (another process may have placed events since, or the batch rolled back).
_frontiers: weakref.WeakKeyDictionary[Engine, Frontier] = weakref.WeakKeyDictionary()


def _frontier(connection: Connection, size: int, root: bytes) -> Frontier:
    known = _frontiers.get(connection.engine)
    if known is None or known.size != size or known.root() != root:
        known = Frontier.load(NodeTable(connection), size)
    return Frontier(known.size, known.hashes)  # a copy: the batch may yet roll back


def place_batch(
    connection: Connection, own: Sequence[dict[str, Any]], *, waiting: bool
) -> list[int]:
    """Give the events waiting in audit_pending (oldest first, BATCH at most; PostgreSQL,
    when `waiting`), then `own`, their places, holding the sequencing lock (or SQLite's
    write lock): events, tree nodes, head. Returns the ids of audit_pending placed."""
    cursor = (_READ_WAITING if waiting else _READ_HEAD).run(connection)
    names = [column[0] for column in cursor.description]
    rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    head = rows[0]
    taken = [row for row in rows if waiting and row["id"] is not None]
    frontier = _frontier(connection, head["sequence"], head["root"])
    sequence, previous = head["sequence"], head["hash"]
    events: list[dict[str, Any]] = []
    for row in [*taken, *own]:
        sequence += 1
        events.append(place(row, sequence, previous))
        previous = events[-1]["hash"]
    if not events:
        return []
    nodes = frontier.append(leaf_hash(bytes.fromhex(e["hash"])) for e in events)
    moved = {"new_sequence": sequence, "new_hash": previous, "new_root": frontier.root()}
    ids = [t["id"] for t in taken]
    if connection.dialect.name == "postgresql":
        # One statement, one round trip, for everything the batch writes: the lock is
        # held for the batch, and each round trip of it is a wait for every waiter.
        _WRITE_BATCH.run(
            connection,
            {column: [e[column] for e in events] for column in _EVENT_COLUMNS}
            | {"levels": [n[0] for n in nodes], "positions": [n[1] for n in nodes]}
            | {"hashes": [n[2] for n in nodes], "ids": ids, "notify": bool(ids)}
            | moved,
        )
    else:
        _INSERT_EVENTS.run_many(connection, events)
        _INSERT_NODES.run_many(connection, nodes)
        _MOVE_HEAD.run(connection, moved)
    _frontiers[connection.engine] = frontier
    BATCH_EVENTS.observe(len(events))
    if taken:
        now = utcnow()
        for t in taken:
            SEQUENCING_DELAY.observe(max(0.0, (now - t["queued_at"]).total_seconds()))
    return ids
