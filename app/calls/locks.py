"""One reconciler per call at a time, across every process sharing the database.

The row lock serialises changes to a call's facts, but a reconciler must also keep the
lock while it waits on the provider — and a transaction must never stay open that long.
On PostgreSQL a session-level advisory lock, taken on a connection of its own with no
transaction open, does both: it outlives the short transactions around it and is
released by the server if the process dies. SQLite runs one process (trial deployments),
so an in-process lock per call is enough there.

On both, a thread first queues on the in-process lock, holding no database connection, so
many requests on one call cannot empty the connection pool the lock's holder needs; only
one thread per process then waits for the advisory lock. Whoever does not get the call
within BUSY_SECONDS (well under the 15 s a platform waits for a webhook) gets CallBusy: 503
`call_busy` with Retry-After, on both databases. The fact the request recorded is kept: the
holder's reconcile plans from the newest facts, and the sweep retries any call whose
platform state still differs from its decision.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import OperationalError

from app.errors import DomainError

BUSY_SECONDS = 5.0
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL: lock_timeout expired


class CallBusy(DomainError):
    status = 503
    code = "call_busy"

    def __init__(self, call_sid: str, detail: str | None = None, **extra: object) -> None:
        super().__init__(
            detail or f"call {call_sid} is busy with another change: try again", **extra
        )
        self.call_sid = call_sid
        self.headers["Retry-After"] = "1"


def advisory_key(call_sid: str) -> int:
    """A stable signed 64-bit key (Python's hash() differs between processes)."""
    digest = hashlib.blake2b(call_sid.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


_TRY_LOCK = text("SELECT pg_try_advisory_lock(:key)")
_LOCK = text("SELECT pg_advisory_lock(:key)")
_UNLOCK = text("SELECT pg_advisory_unlock(:key)")


def _wait_for(connection: Connection, call_sid: str, key: int, timeout: float) -> None:
    """Another process holds the call: wait for it up to `timeout` (lock_timeout, set for
    this wait and reset after, since the connection goes back to the pool), or CallBusy."""
    connection.execute(text(f"SET lock_timeout = {max(1, int(timeout * 1000))}"))
    try:
        connection.execute(_LOCK, {"key": key})
    except OperationalError as exc:
        if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            raise CallBusy(call_sid) from None
        raise
    finally:
        connection.execute(text("RESET lock_timeout"))


class CallLocks:
    def __init__(self, engine: Engine, timeout: float = BUSY_SECONDS) -> None:
        self.engine = engine
        self.timeout = timeout
        self._postgres = engine.dialect.name == "postgresql"
        self._local: dict[str, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, call_sid: str) -> Iterator[None]:
        """The call's lock, or CallBusy after `timeout` seconds."""
        deadline = time.monotonic() + self.timeout
        with self._in_process(call_sid, wait=True):
            if self._postgres:
                with self._advisory(call_sid, deadline - time.monotonic()):
                    yield
            else:
                yield

    @contextmanager
    def attempt(self, call_sid: str) -> Iterator[bool]:
        """The call's lock if it is free now (True), without waiting for it; False, and
        nothing held, when another has it."""
        with self._in_process(call_sid, wait=False) as got:
            if not got or not self._postgres:
                yield got
                return
            with self._advisory(call_sid, None) as got:
                yield got

    @contextmanager
    def _advisory(self, call_sid: str, timeout: float | None) -> Iterator[bool]:
        """Outside any transaction (autocommit; session-level locks need none): taken in one
        round trip when free, as it nearly always is, released in one. It used to be a
        transaction each way, seven round trips a reconcile (issue 17). Held: True; when
        another holds it, waited for up to `timeout` (or CallBusy), or with None not
        waited for: False."""
        key = advisory_key(call_sid)
        connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = bool(connection.execute(_TRY_LOCK, {"key": key}).scalar())
            if not got and timeout is not None:
                _wait_for(connection, call_sid, key, timeout)
                got = True
            try:
                yield got
            finally:
                if got:
                    connection.execute(_UNLOCK, {"key": key})
        except BaseException:
            # Closing the session releases any advisory lock it still holds.
            connection.invalidate()
            raise
        finally:
            connection.close()  # the pool restores its isolation level

    @contextmanager
    def _in_process(self, call_sid: str, *, wait: bool) -> Iterator[bool]:
        """This process's lock of the call: waited for up to `timeout` (or CallBusy), or
        only taken if free (`wait` false; False when it is not)."""
        with self._guard:
            lock, users = self._local.get(call_sid, (threading.Lock(), 0))
            self._local[call_sid] = (lock, users + 1)
        acquired = lock.acquire(timeout=self.timeout) if wait else lock.acquire(blocking=False)
        try:
            if not acquired and wait:
                raise CallBusy(call_sid)
            yield acquired
        finally:
            if acquired:
                lock.release()
            with self._guard:
                lock, users = self._local[call_sid]
                if users == 1:
                    del self._local[call_sid]
                else:
                    self._local[call_sid] = (lock, users - 1)
