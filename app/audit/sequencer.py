"""Sequencing: where an audited transaction's events get their place in the log.

A transaction queues its events (`app.audit.append`); as it commits they must be given
sequence numbers, chained (app/audit/chain.py), and added to the Merkle tree
(app/audit/merkle.py: the leaves, the nodes they complete, the new root in audit_head).
One sequencer at a time, or the log would fork.

Until issue 16 every audited commit locked the head row from its chaining until its commit
was durable, so commits on every instance queued behind one another (~730/s on one
PostgreSQL). Now sequencing is a group commit, Trillian's sequencer without a process of
its own to watch:

* SQLite has a single writer: a transaction is already alone, so it places its own events
  as it commits (nothing to wait for, nothing to gain by batching).
* PostgreSQL: at commit a transaction *tries* the sequencing lock (an advisory transaction
  lock; never waited for there):
  - it got it: for this moment it is the sequencer; it places the events others left
    waiting (oldest first), then its own, and commits them with its work: one commit, as
    before, when nothing contends;
  - it did not: it adds its events to audit_pending and commits without waiting for
    anyone; then it waits for the lock. By the time it has it, the holder before it has
    usually placed its events (it checks, and returns); if not, it places every waiting
    event itself, BATCH at a time: one commit for many transactions' events.
  The lock is held for a batch, not for every transaction's commit, and its holder works
  for everyone waiting. A holder that dies rolls back, and PostgreSQL hands the lock to the
  next waiter; events a dead process committed but never saw placed are placed by the next
  sequencer, or by `callguard serve`'s background pass (`place_waiting`, every second).
* A transaction returns only once its events are placed, so readers never see an event
  without its sequence, and what a request wrote is readable when it answers.
* Nothing is reordered within a call: a call's changes are made one at a time (its lock,
  app/calls/locks.py), each returning only once its events are placed; waiting events are
  placed in the order they were queued.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from prometheus_client import Histogram
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    delete,
    func,
    insert,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from app.audit.chain import place, unsequenced
from app.audit.merkle import Frontier, MissingNode, Node, leaf_hash
from app.storage.models import AuditEvent, AuditHead, AuditNode, AuditPending, table_of, utcnow

BATCH = 1000  # events placed in one sequencing transaction at most
# How long an event may wait for its place before /readyz says the log is behind. The
# measured p99 under 8 contending writers is a few milliseconds (bench/audit.py); a
# second means no sequencer is getting through (the database, or a stuck holder).
WAIT_BOUND_SECONDS = 1.0

# The advisory lock's two-integer key space is apart from the calls' one-bigint keys
# (app/calls/locks.py): "callguard audit", sequencing.
_LOCK_SPACE, _LOCK_KEY = 0x63676175, 1
_LOCK = text(f"SELECT pg_advisory_xact_lock({_LOCK_SPACE}, {_LOCK_KEY})")
_TRY_LOCK = text(f"SELECT pg_try_advisory_xact_lock({_LOCK_SPACE}, {_LOCK_KEY})")

_HEAD = table_of(AuditHead)
_NODES = table_of(AuditNode)
_PENDING = table_of(AuditPending)
_READ_HEAD = select(_HEAD.c.sequence, _HEAD.c.hash, _HEAD.c.root).where(_HEAD.c.id == 1)
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(
        sequence=bindparam("new_sequence"),
        hash=bindparam("new_hash"),
        root=bindparam("new_root"),
    )
)
_INSERT_EVENTS = insert(table_of(AuditEvent))
_INSERT_NODES = insert(_NODES)
_WAIT = insert(_PENDING).returning(_PENDING.c.id, sort_by_parameter_order=True)
_WAITING = (
    select(
        _PENDING.c.id,
        _PENDING.c.queued_at,
        _PENDING.c.type,
        _PENDING.c.call_sid,
        _PENDING.c.recording_sid,
        _PENDING.c.body,
    )
    .order_by(_PENDING.c.id)
    .limit(BATCH)
)
_PLACED = delete(_PENDING).where(_PENDING.c.id.in_(bindparam("ids", expanding=True)))
_STILL_WAITING = (
    select(_PENDING.c.id).where(_PENDING.c.id.in_(bindparam("ids", expanding=True))).limit(1)
)
_OLDEST = select(func.min(_PENDING.c.queued_at))

_QUEUED = "audit_queued"  # session.info: the transaction's events, not yet written
_AWAITING = "audit_awaiting"  # session.info: (connection, ids) committed to audit_pending

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


def queued(session: Session) -> list[dict[str, Any]]:
    """The events `session`'s transaction has appended, in order."""
    events: list[dict[str, Any]] = session.info.setdefault(_QUEUED, [])
    return events


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


def _place(connection: Connection, waiting: Sequence[Any], own: Sequence[dict[str, Any]]) -> int:
    """Give `waiting` (rows of audit_pending, oldest first) then `own` their places, holding
    the sequencing lock (or SQLite's write lock): events, tree nodes, head. Returns how
    many were placed."""
    head = connection.execute(_READ_HEAD).one()
    frontier = _frontier(connection, head.sequence, head.root)
    sequence, previous = head.sequence, head.hash
    events = []
    for row in [*(w._mapping for w in waiting), *own]:
        sequence += 1
        events.append(place(row, sequence, previous))
        previous = events[-1]["hash"]
    if not events:
        return 0
    nodes = frontier.append(leaf_hash(bytes.fromhex(e["hash"])) for e in events)
    connection.execute(_INSERT_EVENTS, events)
    connection.execute(
        _INSERT_NODES, [{"level": lv, "position": at, "hash": h} for lv, at, h in nodes]
    )
    if waiting:
        connection.execute(_PLACED, {"ids": [w.id for w in waiting]})
    connection.execute(
        _MOVE_HEAD, {"new_sequence": sequence, "new_hash": previous, "new_root": frontier.root()}
    )
    _frontiers[connection.engine] = frontier
    BATCH_EVENTS.observe(len(events))
    if waiting:
        now = utcnow()
        for w in waiting:
            SEQUENCING_DELAY.observe(max(0.0, (now - w.queued_at).total_seconds()))
    return len(events)


def _before_commit(session: Session) -> None:
    events = session.info.pop(_QUEUED, None)
    if not events:
        return
    rows = [unsequenced(e) for e in events]
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        _place(connection, (), rows)
    elif connection.execute(_TRY_LOCK).scalar():
        _place(connection, connection.execute(_WAITING).all(), rows)
    else:
        now = utcnow()
        ids = connection.execute(_WAIT, [{**row, "queued_at": now} for row in rows]).scalars()
        session.info[_AWAITING] = (connection, list(ids))


def _after_commit(session: Session) -> None:
    awaiting = session.info.pop(_AWAITING, None)
    if awaiting is not None:
        await_places(*awaiting)


def _after_rollback(session: Session, *_: object) -> None:
    session.info.pop(_QUEUED, None)
    session.info.pop(_AWAITING, None)


def await_places(connection: Connection, ids: Sequence[int]) -> None:
    """Return once the events `ids` of audit_pending have their places, placing every
    waiting event itself when it gets the lock first. Runs on the committing session's own
    connection (its transaction has ended): waiting never needs a second connection from
    a pool that requests waiting here could have emptied."""
    while True:
        with connection.begin():
            connection.execute(_LOCK)
            if connection.execute(_STILL_WAITING, {"ids": list(ids)}).first() is None:
                return
            _place(connection, connection.execute(_WAITING).all(), ())


def place_waiting(engine: Engine) -> int:
    """Place what waits in audit_pending unless a sequencer is at work: the background
    pass that finds events a dead process committed but never saw placed. Returns how many
    it placed."""
    if engine.dialect.name != "postgresql":
        return 0  # nothing waits on SQLite: every transaction places its own
    placed = 0
    with engine.connect() as connection:
        while True:
            with connection.begin():
                if not connection.execute(_TRY_LOCK).scalar():
                    return placed  # the holder places them
                done = _place(connection, connection.execute(_WAITING).all(), ())
            placed += done
            if done < BATCH:
                return placed


def oldest_wait(connection: Connection) -> float | None:
    """Seconds the oldest waiting event has waited, or None when nothing waits (nothing
    ever waits on SQLite)."""
    oldest: datetime | None = connection.execute(_OLDEST).scalar()
    if oldest is None:
        return None
    return max(0.0, (utcnow() - oldest).total_seconds())


# Every Session places what it queued as it commits and drops it on rollback. Registered
# on the class, so no session factory has to know of the audit log (a session that queued
# nothing pays one dictionary lookup).
sa_event.listen(Session, "before_commit", _before_commit)
sa_event.listen(Session, "after_commit", _after_commit)
sa_event.listen(Session, "after_rollback", _after_rollback)
