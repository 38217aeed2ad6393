"""Shared by the governance console's browser tests: recordings made on the live
simulator or seeded into its database, changes behind the page's back (as another process
makes them: a retention worker's lease, a retention run), and requests sent with the
page's own token."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from rich.console import Console
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from app.calls.provider import ProviderError
from app.people.users import Role
from app.platforms.simulator.drive import LiveCall
from app.platforms.simulator.provider import SimulatorProvider
from app.retention.run import RetentionRun, Summary
from app.storage.db import make_engine, make_session_factory
from app.storage.models import Recording
from tests.e2e.test_console_browser import DESKTOP, PHONE, Centre
from tests.governance.search_seed import add_recording

WIDTHS = pytest.mark.parametrize("width", [PHONE, DESKTOP], ids=["phone", "desktop"])


def completed_recording(centre: Centre, department: str, caller: str) -> str:
    """A call that was recorded and has ended: its recording, completed (the sid)."""
    policy = centre.platform.post("/simulator/policy", {}).json()
    number = next(d["numbers"][0] for d in policy["departments"] if d["id"] == department)
    call = LiveCall(centre.platform, None, Console(file=io.StringIO()), talk=0)
    call.dial("governance", number, caller, None)
    call.hang_up()
    token = centre.user(f"reader-{call.sid[-8:]}", Role.ADMIN)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        items = httpx.get(
            f"{centre.base}/api/v1/recordings",
            headers={"Authorization": f"Bearer {token}"},
        ).json()["items"]
        done = [r for r in items if r["call_sid"] == call.sid and r["completed_at"]]
        if done:
            return str(done[0]["recording_sid"])
        time.sleep(0.2)
    raise AssertionError(f"the recording of {call.sid} did not complete")


@contextmanager
def live_sessions(centre: Centre) -> Iterator[sessionmaker[Session]]:
    """Sessions on the live service's database, as another process has them."""
    engine = make_engine(centre.live["env"]["CALLGUARD_DATABASE_URL"])
    try:
        yield make_session_factory(engine)
    finally:
        engine.dispose()


def seed_recordings(centre: Centre, *starts: datetime, **values: Any) -> list[str]:
    """Completed recordings on calls of their own, started at `starts` (completed five
    minutes later), straight into the database (tests/governance/search_seed.py)."""
    with live_sessions(centre) as sessions:
        seeder = SimpleNamespace(sessions=sessions, settings=None)
        return [add_recording(seeder, started_at=start, **values) for start in starts]  # type: ignore[arg-type]


def retention_run(centre: Centre, platform: SimulatorProvider, fail: ProviderError) -> Summary:
    """A real retention run on the live database, one recording at a time, soonest due
    first, against `platform` (the recordings to destroy are its own): the first deletion
    is answered with `fail`."""
    platform.inject_fault("delete", fail)
    with live_sessions(centre) as sessions:
        return RetentionRun(sessions, platform, concurrency=1, batch_size=1).run()


def change_recording(centre: Centre, sid: str, **values: Any) -> None:
    """What another process does behind the page: a retention worker's lease, say."""
    engine = make_engine(centre.live["env"]["CALLGUARD_DATABASE_URL"])
    try:
        with engine.begin() as connection:
            connection.execute(
                update(Recording).where(Recording.recording_sid == sid).values(**values)
            )
    finally:
        engine.dispose()


def rec(page: Any, sid: str) -> Any:
    return page.locator(f'li.recording-card[data-recording-sid="{sid}"]')


def api_status(page: Any, method: str, path: str, body: Any = None) -> int:
    """A request through the page's own token, as a hand-edited page would send it."""
    return int(
        page.evaluate(
            """async ([method, path, body]) => {
                const token = sessionStorage.getItem("callguard.token");
                const headers = {Authorization: `Bearer ${token}`,
                                 "Content-Type": "application/json"};
                const init = {method, headers};
                if (body !== null) init.body = JSON.stringify(body);
                return (await fetch(`/api/v1${path}`, init)).status;
            }""",
            [method, path, body],
        )
    )
