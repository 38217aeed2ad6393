"""Where a webhook's units of work run (app/storage/db.py's run_transactions, issue 17): on
SQLite on the event loop itself while the process's write lock is free, else on a worker
thread, so the loop never waits on a lock another thread holds; on PostgreSQL always on a
thread. The webhooks that run there ask no provider, and a provider call on the loop
fails loudly (app/calls/reconcile.py)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from app.calls import reconcile
from app.calls.events import CallEvents
from app.runtime.services import Services
from app.storage import db
from app.storage.db import make_engine, make_session_factory, run_transactions, unit_of_work
from tests.factories import MAIN_NUMBER, Platform, new_call_sid

ON_POSTGRES = bool(os.environ.get("CALLGUARD_TEST_DATABASE_URL"))
sqlite_only = pytest.mark.skipif(ON_POSTGRES, reason="SQLite's one write lock")


@pytest.fixture
def engine(migrated_url: str) -> Iterator[Engine]:
    built = make_engine(migrated_url)
    yield built
    built.dispose()


def _where(engine: Engine) -> Callable[[], int]:
    """Work that opens a unit of work (re-entering the lock on the loop) and says its thread."""
    sessions = make_session_factory(engine)

    def work() -> int:
        with unit_of_work(sessions) as session:
            session.execute(text("SELECT 1"))
        return threading.get_ident()

    return work


@sqlite_only
def test_sqlite_work_runs_on_the_loop_while_the_lock_is_free(engine: Engine) -> None:
    async def main() -> tuple[int, int]:
        return threading.get_ident(), await run_transactions(engine, _where(engine))

    loop_thread, ran_on = asyncio.run(main())
    assert ran_on == loop_thread


@sqlite_only
def test_a_lock_held_elsewhere_is_waited_for_on_a_thread_while_the_loop_goes_on(
    engine: Engine,
) -> None:
    sessions = make_session_factory(engine)
    held, release = threading.Event(), threading.Event()

    def holder() -> None:
        with unit_of_work(sessions):
            held.set()
            release.wait(timeout=10)  # bounded: a loop stuck on the lock fails, never hangs

    thread = threading.Thread(target=holder)
    thread.start()
    assert held.wait(timeout=10)

    async def main() -> tuple[int, int, int]:
        task = asyncio.ensure_future(run_transactions(engine, _where(engine)))
        ticks = 0
        for _ in range(5):  # the loop still runs while the work waits for the lock
            await asyncio.sleep(0.01)
            ticks += 1
        assert not task.done()
        release.set()
        return threading.get_ident(), await task, ticks

    try:
        loop_thread, ran_on, ticks = asyncio.run(main())
    finally:
        release.set()
        thread.join()
    assert ticks == 5
    assert ran_on != loop_thread


@pytest.mark.skipif(not ON_POSTGRES, reason="PostgreSQL's transactions run side by side")
def test_postgres_work_always_runs_on_a_thread(engine: Engine) -> None:
    async def main() -> tuple[int, int]:
        return threading.get_ident(), await run_transactions(engine, _where(engine))

    loop_thread, ran_on = asyncio.run(main())
    assert ran_on != loop_thread


def test_a_provider_call_on_the_event_loop_fails() -> None:
    reconcile._off_the_event_loop()  # a plain thread: fine

    async def on_the_loop() -> None:
        reconcile._off_the_event_loop()

    with pytest.raises(RuntimeError, match="event loop"):
        asyncio.run(on_the_loop())


@sqlite_only
def test_the_database_only_webhooks_run_on_the_loop(
    platform: Platform, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """voice, call-status and recording-status; the IVR (which may start a recording at
    the platform) stays on a worker thread."""
    seen: dict[str, bool] = {}

    def spy(name: str) -> None:
        original = getattr(CallEvents, name)

        def wrapped(self: CallEvents, *args: Any) -> Any:
            try:
                asyncio.get_running_loop()
                seen[name] = True
            except RuntimeError:
                seen[name] = False
            return original(self, *args)

        monkeypatch.setattr(CallEvents, name, wrapped)

    for name in ("arrived", "menu_answered", "progressed", "recording_reported"):
        spy(name)
    call_sid = new_call_sid()
    assert platform.voice(call_sid, MAIN_NUMBER).status_code == 200
    assert platform.ivr(call_sid, 1, "1").status_code == 200
    assert platform.call_status(call_sid, "in-progress", 2).status_code == 204
    response = platform.recording_status(call_sid, "RE" + "0" * 32, "in-progress")
    assert response.status_code in (200, 204), response.text
    assert seen == {
        "arrived": True,
        "menu_answered": False,
        "progressed": True,
        "recording_reported": True,
    }


@sqlite_only
def test_sqlites_lock_held_by_another_process_is_waited_for_on_a_thread(engine: Engine) -> None:
    """Another process's transaction (a CLI command, an operator's shell) holds the
    file's write lock: the loop's BEGIN does not wait in SQLite's busy handler but steps
    aside, the work runs on a thread and waits there, and nothing is written twice."""
    database = engine.url.database
    assert database is not None
    other = sqlite3.connect(database, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    sessions = make_session_factory(engine)
    runs: list[int] = []

    def work() -> int:
        runs.append(threading.get_ident())
        with unit_of_work(sessions) as session:
            session.execute(text("CREATE TABLE IF NOT EXISTS probe (x)"))
            session.execute(text("INSERT INTO probe VALUES (1)"))
        return threading.get_ident()

    async def main() -> tuple[int, int, int]:
        task = asyncio.ensure_future(run_transactions(engine, work))
        ticks = 0
        for _ in range(5):
            await asyncio.sleep(0.01)
            ticks += 1
        assert not task.done()
        other.execute("COMMIT")
        return threading.get_ident(), await task, ticks

    try:
        loop_thread, ran_on, ticks = asyncio.run(main())
    finally:
        other.close()
    assert ticks == 5
    assert ran_on != loop_thread
    assert runs == [loop_thread, ran_on]  # tried on the loop, done on a thread
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM probe")).scalar_one() == 1
        assert connection.execute(text("PRAGMA busy_timeout")).scalar_one() == db.BUSY_MS
    # the loop's next work, the lock free again, runs on the loop
    assert asyncio.run(_on_loop(engine)) is True


async def _on_loop(engine: Engine) -> bool:
    return await run_transactions(engine, _where(engine)) == threading.get_ident()
