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

import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import structlog
from prometheus_client import Histogram
from sqlalchemy import (
    Connection,
    Engine,
    bindparam,
    create_engine,
    func,
    insert,
    select,
    text,
    true,
    tuple_,
    update,
)
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.audit.chain import place, unsequenced
from app.audit.merkle import Frontier, MissingNode, Node, leaf_hash
from app.errors import Unavailable
from app.storage.models import AuditEvent, AuditHead, AuditNode, AuditPending, table_of, utcnow

log = structlog.get_logger(__name__)

BATCH = 1000  # events placed in one sequencing transaction at most
# How long an event may wait for its place before /readyz says the log is behind. The
# measured p99 under 8 contending writers is a few milliseconds (bench/audit.py); a
# second means no sequencer is getting through (the database, or a stuck holder).
WAIT_BOUND_SECONDS = 1.0
WAIT_TIMEOUT_SECONDS = 30.0  # a transaction waiting longer for its places fails

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
_OLDEST_WAITING = (
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
    .subquery()
)
# The head and the oldest waiting events in one read (a row for the head alone when
# nothing waits), in id order.
_READ_WAITING = (
    select(_HEAD.c.sequence, _HEAD.c.hash, _HEAD.c.root, *_OLDEST_WAITING.c)
    .select_from(_HEAD.outerjoin(_OLDEST_WAITING, true()))
    .where(_HEAD.c.id == 1)
    .order_by(_OLDEST_WAITING.c.id)
)
_EVENT_COLUMNS = ("sequence", "type", "call_sid", "recording_sid", "prev_hash", "hash", "body")
# PostgreSQL: a batch's events, nodes, the waiting rows it took and the head, written in one
# statement from arrays.
_WRITE_BATCH = text(
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
_OLDEST = select(func.min(_PENDING.c.queued_at))
_UNPLACED = select(_PENDING.c.id).where(_PENDING.c.id.in_(bindparam("ids", expanding=True)))

_QUEUED = "audit_queued"  # session.info: the transaction's events, not yet written
_AWAITING = "audit_awaiting"  # session.info: (engine, ids) committed to audit_pending

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


def _place(connection: Connection, own: Sequence[dict[str, Any]], *, waiting: bool) -> list[int]:
    """Give the events waiting in audit_pending (oldest first, BATCH at most; PostgreSQL,
    when `waiting`), then `own`, their places, holding the sequencing lock (or SQLite's
    write lock): events, tree nodes, head. Returns the ids of audit_pending placed."""
    rows = connection.execute(_READ_WAITING if waiting else _READ_HEAD).all()
    head = rows[0]
    taken = [row for row in rows if waiting and row.id is not None]
    frontier = _frontier(connection, head.sequence, head.root)
    sequence, previous = head.sequence, head.hash
    events: list[dict[str, Any]] = []
    placing: list[Mapping[str, Any]] = [dict(t._mapping) for t in taken]
    for row in [*placing, *own]:
        sequence += 1
        events.append(place(row, sequence, previous))
        previous = events[-1]["hash"]
    if not events:
        return []
    nodes = frontier.append(leaf_hash(bytes.fromhex(e["hash"])) for e in events)
    moved = {"new_sequence": sequence, "new_hash": previous, "new_root": frontier.root()}
    ids = [t.id for t in taken]
    if connection.dialect.name == "postgresql":
        # One statement, one round trip, for everything the batch writes: the lock is
        # held for the batch, and each round trip of it is a wait for every waiter.
        connection.execute(
            _WRITE_BATCH,
            {column: [e[column] for e in events] for column in _EVENT_COLUMNS}
            | {"levels": [n[0] for n in nodes], "positions": [n[1] for n in nodes]}
            | {"hashes": [n[2] for n in nodes], "ids": ids, "notify": bool(ids)}
            | moved,
        )
    else:
        connection.execute(_INSERT_EVENTS, events)
        connection.execute(
            _INSERT_NODES, [{"level": lv, "position": at, "hash": h} for lv, at, h in nodes]
        )
        connection.execute(_MOVE_HEAD, moved)
    _frontiers[connection.engine] = frontier
    BATCH_EVENTS.observe(len(events))
    if taken:
        now = utcnow()
        for t in taken:
            SEQUENCING_DELAY.observe(max(0.0, (now - t.queued_at).total_seconds()))
    return ids


def _before_commit(session: Session) -> None:
    events = session.info.pop(_QUEUED, None)
    if not events:
        return
    rows = [unsequenced(e) for e in events]
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        _place(connection, rows, waiting=False)
    elif not _sequencer_of(connection.engine).busy and connection.execute(_TRY_LOCK).scalar():
        # Nobody of this process is waiting: the lock is likely free, and taking it here
        # places this transaction's events in its own commit (no wait, no second commit).
        _place(connection, rows, waiting=True)
    else:
        now = utcnow()
        ids = connection.execute(_WAIT, [{**row, "queued_at": now} for row in rows]).scalars()
        session.info[_AWAITING] = (connection.engine, list(ids))


def _after_commit(session: Session) -> None:
    awaiting = session.info.pop(_AWAITING, None)
    if awaiting is not None:
        await_places(*awaiting)


def _after_rollback(session: Session, *_: object) -> None:
    session.info.pop(_QUEUED, None)
    session.info.pop(_AWAITING, None)


def await_places(engine: Engine, ids: Sequence[int]) -> None:
    """Return once the events `ids` of audit_pending have their places."""
    _sequencer_of(engine).wait(ids)


class SequencingFailed(Unavailable):
    """Events were committed but their places could not be confirmed: the next sequencer
    places them (nothing is lost), but the transaction that wrote them cannot say they
    are readable yet (503, as for the database being away)."""

    code = "audit_sequencing_failed"


class _Waiter:
    def __init__(self, ids: set[int]) -> None:
        self.ids = ids
        self.done = threading.Event()
        self.error: Exception | None = None


class _Sequencer:
    """One per process and database: the thread that sees this process's waiting
    transactions' events placed, and wakes each once its events are.

    A round: if the sequencing lock is free, this thread is the sequencer: it places a
    batch of every waiting event (any process's) and commits, and knows which of its
    waiters' events that placed. If another holds the lock (another process's sequencer,
    or a transaction placing its own), that one is placing: this thread waits for its
    NOTIFY (sent as a batch that placed others' events commits), or WAKE_SECONDS, then asks
    which of its waiters' events are still unplaced, and the next round places those. So
    the lock changes hands once a batch, a waiting transaction sends no statement of its
    own, and a process that did not sequence pays one query a batch. The thread has
    connections of its own, outside the pool the waiting transactions hold theirs from,
    and ends after IDLE seconds with nothing to wait for."""

    IDLE = 5.0
    WAKE_SECONDS = 0.02  # at most this long between asking, notified or not
    ATTEMPTS = 3  # failed rounds in a row before the waiters are told

    def __init__(self, engine: Engine) -> None:
        self._url = engine.url
        self._cond = threading.Condition()
        self._waiters: dict[int, _Waiter] = {}
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> bool:
        """Whether transactions of this process are waiting: the lock is then likely held,
        and a committing transaction need not try it."""
        return bool(self._waiters)

    def wait(self, ids: Sequence[int]) -> None:
        waiter = _Waiter(set(ids))
        with self._cond:
            for id_ in ids:
                self._waiters[id_] = waiter
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="audit-sequencer", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        if not waiter.done.wait(WAIT_TIMEOUT_SECONDS):
            with self._cond:
                for id_ in ids:
                    self._waiters.pop(id_, None)
            raise SequencingFailed(f"events not placed within {WAIT_TIMEOUT_SECONDS} s")
        if waiter.error is not None:
            raise SequencingFailed(f"events not placed: {waiter.error}") from waiter.error

    def _run(self) -> None:
        # Two connections of its own, held for the thread's life: one to place and ask
        # with, one that LISTENs.
        engine = create_engine(self._url, poolclass=NullPool)
        connections: tuple[Connection, Connection] | None = None
        failures = 0
        try:
            while True:
                with self._cond:
                    if not self._cond.wait_for(lambda: bool(self._waiters), self.IDLE):
                        self._thread = None
                        return
                    wanted = list(self._waiters)
                try:
                    if connections is None:
                        connections = self._connect(engine)
                    unplaced = self._round(*connections, wanted)
                except Exception as exc:  # the database, or a lost connection: try again
                    failures += 1
                    log.warning("audit_sequencing_failed", error=type(exc).__name__)
                    if connections is not None:
                        for connection in connections:
                            connection.invalidate()
                        connections = None
                    if failures >= self.ATTEMPTS:
                        self._settle(wanted, set(), exc)
                        failures = 0
                    time.sleep(0.1)
                else:
                    failures = 0
                    self._settle(wanted, unplaced, None)
        finally:
            for connection in connections or ():
                connection.close()
            engine.dispose()

    @staticmethod
    def _connect(engine: Engine) -> tuple[Connection, Connection]:
        listener = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        listener.exec_driver_sql(f"LISTEN {CHANNEL}")
        return engine.connect(), listener

    def _round(self, connection: Connection, listener: Connection, wanted: list[int]) -> set[int]:
        """Returns which of `wanted` may still be unplaced. Every wanted event was
        committed before the round began, so a batch's read, in id order, saw all of
        them: those up to the newest it placed are placed (by this batch or an earlier
        sequencer); only a full batch can leave newer ones."""
        with connection.begin():
            if connection.execute(_TRY_LOCK).scalar():
                placed = _place(connection, (), waiting=True)
                if len(placed) < BATCH:
                    return set()
                return {id_ for id_ in wanted if id_ > placed[-1]}
        raw: Any = listener.connection.driver_connection
        for _ in raw.notifies(timeout=self.WAKE_SECONDS, stop_after=1):
            break
        with connection.begin():
            return set(connection.execute(_UNPLACED, {"ids": wanted}).scalars())

    def _settle(self, wanted: list[int], unplaced: set[int], error: Exception | None) -> None:
        with self._cond:
            for id_ in wanted:
                if id_ in unplaced:
                    continue
                waiter = self._waiters.pop(id_, None)
                if waiter is None:
                    continue
                if error is not None:
                    waiter.error = error
                    waiter.done.set()
                    continue
                waiter.ids.discard(id_)
                if not waiter.ids:
                    waiter.done.set()


_sequencers: weakref.WeakKeyDictionary[Engine, _Sequencer] = weakref.WeakKeyDictionary()
_sequencers_guard = threading.Lock()


def _sequencer_of(engine: Engine) -> _Sequencer:
    with _sequencers_guard:
        found = _sequencers.get(engine)
        if found is None:
            found = _sequencers[engine] = _Sequencer(engine)
        return found


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
                done = len(_place(connection, (), waiting=True))
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
