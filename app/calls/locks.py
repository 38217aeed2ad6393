"""One reconciler per call at a time, across every process sharing the database.

The row lock serialises changes to a call's facts, but a reconciler must also keep the
lock while it waits on the provider — and a transaction must never stay open that long.
On PostgreSQL a session-level advisory lock, taken on a connection of its own with no
transaction open, does both: it outlives the short transactions around it and is
released by the server if the process dies. SQLite runs one process (trial deployments),
so an in-process lock per call is enough there.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, text

from app.errors import Unavailable

LOCK_TIMEOUT_SECONDS = 20


def advisory_key(call_sid: str) -> int:
    """A stable signed 64-bit key (Python's hash() differs between processes)."""
    digest = hashlib.blake2b(call_sid.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class CallLocks:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._local: dict[str, tuple[threading.Lock, int]] = {}
        self._guard = threading.Lock()

    @contextmanager
    def hold(self, call_sid: str) -> Iterator[None]:
        if self._postgres:
            with self._advisory(call_sid):
                yield
        else:
            with self._in_process(call_sid):
                yield

    @contextmanager
    def _advisory(self, call_sid: str) -> Iterator[None]:
        key = advisory_key(call_sid)
        connection = self.engine.connect()
        try:
            with connection.begin():
                connection.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT_SECONDS}s'"))
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                with connection.begin():
                    connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
        except BaseException:
            # Closing the session releases any advisory lock it still holds.
            connection.invalidate()
            raise
        finally:
            connection.close()

    @contextmanager
    def _in_process(self, call_sid: str) -> Iterator[None]:
        with self._guard:
            lock, users = self._local.get(call_sid, (threading.Lock(), 0))
            self._local[call_sid] = (lock, users + 1)
        acquired = lock.acquire(timeout=LOCK_TIMEOUT_SECONDS)
        try:
            if not acquired:
                raise Unavailable(f"call {call_sid} is busy: try again")
            yield
        finally:
            if acquired:
                lock.release()
            with self._guard:
                lock, users = self._local[call_sid]
                if users == 1:
                    del self._local[call_sid]
                else:
                    self._local[call_sid] = (lock, users - 1)
