"""Engine and sessions. One unit of work per request or job: helpers never commit."""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from contextvars import ContextVar
from pathlib import Path
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, MetaData, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError, OperationalError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app.storage.driver import Sql

# Stable constraint names, so Alembic migrations are identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(url: str, **kwargs: Any) -> Engine:
    if url.startswith("sqlite"):
        return _sqlite_engine(url, **kwargs)
    kwargs.setdefault("pool_size", 10)
    kwargs.setdefault("max_overflow", 10)
    engine = create_engine(url, **kwargs)
    event.listen(engine, "checkout", _ping_when_idle(engine))
    event.listen(engine, "connect", _note_use)  # new: as good as pinged
    event.listen(engine, "checkin", _note_use)
    return engine


# A pooled connection that sat unused may have been dropped (a database restart, a proxy's
# idle timeout): it is pinged before it is handed out. SQLAlchemy's pool_pre_ping pings on
# every checkout, a round trip on every request (an IVR webhook checks out five times);
# a connection checked in moments ago is as good as a ping, so it is pinged only after
# IDLE_PING_SECONDS unused. One dropped within that window fails its one statement, which
# SQLAlchemy reports as a disconnect and answers by discarding the pool's older
# connections; the request is journalled (webhooks) or answered 503 (the API), as for any
# outage.
IDLE_PING_SECONDS = 1.0
_LAST_USED = "callguard_last_used"


def _note_use(_dbapi_connection: Any, record: Any) -> None:
    record.info[_LAST_USED] = time.monotonic()


def _ping_when_idle(engine: Engine) -> Any:
    def checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        last_used = record.info.get(_LAST_USED)
        if last_used is not None and time.monotonic() - last_used < IDLE_PING_SECONDS:
            return
        reason = "no answer"
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            alive = False
            reason = type(exc).__name__
        if not alive:  # the pool discards it and checks out a fresh connection
            raise DisconnectionError(f"stale pooled connection ({reason})")

    return checkout


def _sqlite_engine(url: str, **kwargs: Any) -> Engine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not pysqlite, decide when transactions begin (see _begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    _sqlite_write_locks[engine] = threading.RLock()  # re-entered by run_transactions

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        # IMMEDIATE takes the write lock up front: SQLite's single writer then serialises
        # per-call changes, and no transaction fails late upgrading a read lock. A long
        # read (verifying the audit chain) asks for a plain BEGIN so it blocks no writer.
        if connection.info.get(READ_ONLY):
            _BEGIN.run(connection)
        elif _first_begin_on_the_loop.get():
            _first_begin_on_the_loop.set(False)
            _begin_or_step_aside(connection)
        else:
            _BEGIN_IMMEDIATE.run(connection)

    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    # Audit events queued in a transaction are chained as it commits: app/audit/log.py
    # registers that hook on every Session itself, so storage knows nothing of the audit.
    return sessionmaker(bind=engine, expire_on_commit=False)


# Every transaction begins with one of these, sent to the driver (app/storage/driver.py).
_BEGIN, _BEGIN_IMMEDIATE = Sql("BEGIN"), Sql("BEGIN IMMEDIATE")
BUSY_MS = 30_000  # how long a transaction waits for another process's write lock
_NO_WAIT, _WAIT = Sql("PRAGMA busy_timeout=0"), Sql(f"PRAGMA busy_timeout={BUSY_MS}")
# Set by run_transactions for the work it runs on the event loop, cleared by its first BEGIN.
_first_begin_on_the_loop: ContextVar[bool] = ContextVar("first_begin_on_the_loop", default=False)


class _WouldWait(Exception):
    """Another process holds SQLite's write lock: run_transactions moves the work to a
    thread to wait for it there. Not a DBAPIError, so no webhook journals it."""


def _begin_or_step_aside(connection: Any) -> None:
    """BEGIN IMMEDIATE without SQLite's busy wait, which on the event loop would stall
    every request (a CLI command's transaction, an operator's shell)."""
    _NO_WAIT.run(connection)
    try:
        _BEGIN_IMMEDIATE.run(connection)
    except OperationalError as exc:
        if getattr(exc.orig, "sqlite_errorname", None) == "SQLITE_BUSY":
            raise _WouldWait from exc
        raise
    finally:
        _WAIT.run(connection)


# SQLite has one writer. Threads queueing on a Python lock are woken the moment it is free;
# threads queueing in SQLite's busy handler sleep in steps of up to 100 ms (p99 latency).
# Every unit of work holds it, reads included (each begins IMMEDIATE).
_sqlite_write_locks: weakref.WeakKeyDictionary[Engine, threading.RLock] = (
    weakref.WeakKeyDictionary()
)


READ_ONLY = "callguard_read_only"


@contextmanager
def read_only_session(engine: Engine) -> Iterator[Session]:
    """A session for long reads, seeing one snapshot throughout (a verify's walk and its
    look at the head row must agree while the service appends). On SQLite (WAL) that
    snapshot blocks no writer; on PostgreSQL it is a REPEATABLE READ, READ ONLY
    transaction. It must not write."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        connection.info[READ_ONLY] = True
        try:
            with Session(bind=connection) as session:
                yield session
        finally:
            connection.info.pop(READ_ONLY, None)
            connection.rollback()


@contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed when the block succeeds, rolled back when it raises."""
    lock = _sqlite_write_locks.get(factory.kw["bind"])
    with lock or nullcontext(), factory() as session, session.begin():
        yield session


T = TypeVar("T")


async def run_transactions(engine: Engine, work: Callable[[], T]) -> T:
    """Run `work` — units of work and nothing else that waits: no provider call, no
    download — from async code, on the event loop itself when SQLite's write lock is free,
    else on a worker thread.

    On SQLite every unit of work holds the process's one write lock, so a webhook's
    transaction runs alone whichever thread runs it. Handed to a thread, it paid the hop
    there and back, and each statement released the GIL (sqlite3 does, around every call)
    to a loop thread that kept it up to the switch interval: measured in process, the
    whole voice webhook's CPU fell from 3.6-3.8 ms to 2.8-3.2 run here (README, How far it
    goes). A lock already held (a background pass, a request on a thread) is waited
    for on a thread, never on the loop; so is SQLite's own lock held by another process
    (a CLI command, an operator's shell): the work's first BEGIN, on the loop, does not
    wait but steps aside, and the work runs again from the start on a thread, where it
    waits up to BUSY_MS. So `work` must write nothing before its first unit of work.
    On PostgreSQL transactions run side by side and wait on round trips: always a
    thread."""
    lock = _sqlite_write_locks.get(engine)
    if lock is not None and lock.acquire(blocking=False):
        first = _first_begin_on_the_loop.set(True)
        try:
            return work()  # unit_of_work re-enters the lock this thread now holds
        except _WouldWait:
            pass  # nothing was written: its first BEGIN found the file locked
        finally:
            _first_begin_on_the_loop.reset(first)
            lock.release()
    return await anyio.to_thread.run_sync(work)
