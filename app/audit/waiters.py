"""Waiting for a place in the audit log (PostgreSQL): a transaction that committed its events
to audit_pending hands their ids to its process's Sequencer thread and sleeps until they
are placed. The thread places batches itself when the sequencing lock is free, and
otherwise LISTENs for the NOTIFY a batch that placed others' events sends as it commits,
then asks which of its waiters' are placed: so the lock changes hands once a batch and a
waiting transaction sends no statement of its own (app/audit/sequencer.py says when a
transaction waits)."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from typing import Any

import structlog
from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.pool import NullPool

from app.audit.placing import BATCH, CHANNEL, UNPLACED, place_batch, try_lock
from app.errors import Unavailable

log = structlog.get_logger(__name__)

WAIT_TIMEOUT_SECONDS = 30.0  # a transaction waiting longer for its places fails


def await_places(engine: Engine, ids: Sequence[int]) -> None:
    """Return once the events `ids` of audit_pending have their places."""
    sequencer_of(engine).wait(ids)


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


class Sequencer:
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
            if try_lock(connection):
                placed = place_batch(connection, (), waiting=True)
                if len(placed) < BATCH:
                    return set()
                return {id_ for id_ in wanted if id_ > placed[-1]}
        raw: Any = listener.connection.driver_connection
        for _ in raw.notifies(timeout=self.WAKE_SECONDS, stop_after=1):
            break
        with connection.begin():
            return set(connection.execute(UNPLACED, {"ids": wanted}).scalars())

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


_sequencers: weakref.WeakKeyDictionary[Engine, Sequencer] = weakref.WeakKeyDictionary()
_sequencers_guard = threading.Lock()


def sequencer_of(engine: Engine) -> Sequencer:
    with _sequencers_guard:
        found = _sequencers.get(engine)
        if found is None:
            found = _sequencers[engine] = Sequencer(engine)
        return found
