"""Sequencing: when an audited transaction's events get their place in the log.

A transaction queues its events (`app.audit.log.append`); as it commits they must be given
sequence numbers, chained and added to the Merkle tree (app/audit/placing.py places a
batch). One placer at a time, or the log would fork.

Until issue 16 every audited commit locked the head row from its chaining until its commit
was durable, so commits on every instance queued behind one another. Now it is a group
commit, Trillian's sequencer without a process of its own to watch:

* SQLite has a single writer: a transaction is already alone, so it places its own events
  as it commits (nothing to wait for, nothing to gain by batching).
* PostgreSQL: a committing transaction whose process has no transaction waiting already
  *tries* the sequencing lock (an advisory transaction lock, never waited for here); with
  it, it places the events others left waiting, then its own, in its own commit — one
  commit, as before, when nothing contends. Otherwise it commits its events to
  audit_pending, waiting for no one, and then waits for its process's sequencer thread
  (app/audit/waiters.py) to see them placed: the thread places every waiting event in a
  batch when the lock is free, or learns from the holder's NOTIFY that a batch was placed.
  The lock is held for a batch, not for every transaction's commit.
* A transaction returns only once its events are placed, so readers never see an event
  without its sequence, and what a request wrote is readable when it answers.
* Nothing is reordered within a call: a call's changes are made one at a time (its lock,
  app/calls/locks.py), each returning only once its events are placed, and waiting events
  are placed in the order they were queued.
* Nothing is lost: a placer that dies rolls back and PostgreSQL hands the lock on; events
  a process committed and never saw placed (it died) are placed by the next batch, or by
  `callguard serve`'s background pass (`place_waiting`, every second). /readyz says when an
  event has waited longer than WAIT_BOUND_SECONDS.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from app.audit.chain import unsequenced
from app.audit.placing import BATCH, OLDEST, WAIT, place_batch, try_lock
from app.audit.waiters import await_places, sequencer_of
from app.storage.models import utcnow

# How long an event may wait for its place before /readyz says the log is behind. The
# measured p99 under 8 contending writers is a few milliseconds (bench/audit.py); a
# second means no sequencer is getting through (the database, or a stuck holder).
WAIT_BOUND_SECONDS = 1.0

_QUEUED = "audit_queued"  # session.info: the transaction's events, not yet written
_AWAITING = "audit_awaiting"  # session.info: (engine, ids) committed to audit_pending


def queued(session: Session) -> list[dict[str, Any]]:
    """The events `session`'s transaction has appended, in order."""
    events: list[dict[str, Any]] = session.info.setdefault(_QUEUED, [])
    return events


def _before_commit(session: Session) -> None:
    events = session.info.pop(_QUEUED, None)
    if not events:
        return
    rows = [unsequenced(e) for e in events]
    connection = session.connection()
    if connection.dialect.name != "postgresql":
        place_batch(connection, rows, waiting=False)
    elif not sequencer_of(connection.engine).busy and try_lock(connection):
        # Nobody of this process is waiting: the lock is likely free, and taking it here
        # places this transaction's events in its own commit (no wait, no second commit).
        place_batch(connection, rows, waiting=True)
    else:
        now = utcnow()
        ids = connection.execute(WAIT, [{**row, "queued_at": now} for row in rows]).scalars()
        session.info[_AWAITING] = (connection.engine, list(ids))


def _after_commit(session: Session) -> None:
    awaiting = session.info.pop(_AWAITING, None)
    if awaiting is not None:
        await_places(*awaiting)


def _after_rollback(session: Session, *_: object) -> None:
    session.info.pop(_QUEUED, None)
    session.info.pop(_AWAITING, None)


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
                if not try_lock(connection):
                    return placed  # the holder places them
                done = len(place_batch(connection, (), waiting=True))
            placed += done
            if done < BATCH:
                return placed


def oldest_wait(connection: Connection) -> float | None:
    """Seconds the oldest waiting event has waited, or None when nothing waits (nothing
    ever waits on SQLite)."""
    oldest: datetime | None = connection.execute(OLDEST).scalar()
    if oldest is None:
        return None
    return max(0.0, (utcnow() - oldest).total_seconds())


# Every Session places what it queued as it commits and drops it on rollback. Registered
# on the class, so no session factory has to know of the audit log (a session that queued
# nothing pays one dictionary lookup).
sa_event.listen(Session, "before_commit", _before_commit)
sa_event.listen(Session, "after_commit", _after_commit)
sa_event.listen(Session, "after_rollback", _after_rollback)
