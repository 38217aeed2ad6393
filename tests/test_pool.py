"""PostgreSQL's pool: a connection idle for a while is pinged before use, and a dropped one
replaced without the request noticing; one used moments ago is not pinged (a round trip
saved on every request, issue 17)."""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from sqlalchemy import text

from app.storage import db
from app.storage.db import make_engine

pytestmark = pytest.mark.skipif(
    not os.environ.get("CALLGUARD_TEST_DATABASE_URL"),
    reason="PostgreSQL's pool (SQLite's connections are files)",
)


@pytest.fixture
def engine(migrated_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    built = make_engine(migrated_url, pool_size=1, max_overflow=0)
    pings: list[int] = []
    do_ping = built.dialect.do_ping

    def counted(dbapi_connection: Any) -> bool:
        pings.append(1)
        return do_ping(dbapi_connection)

    monkeypatch.setattr(built.dialect, "do_ping", counted)
    built.pings = pings  # type: ignore[attr-defined]
    yield built
    built.dispose()


def backend_pid(engine: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT pg_backend_pid()")).scalar_one())


def test_a_connection_used_moments_ago_is_not_pinged(engine: Any) -> None:
    first = backend_pid(engine)
    for _ in range(5):
        assert backend_pid(engine) == first  # the same pooled connection
    assert engine.pings == []


def test_an_idle_dropped_connection_is_replaced_unnoticed(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "IDLE_PING_SECONDS", 0.05)
    dropped = backend_pid(engine)
    other = make_engine(str(engine.url.render_as_string(hide_password=False)))
    with other.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": dropped})
    other.dispose()
    time.sleep(0.1)
    assert backend_pid(engine) != dropped  # pinged, found dead, replaced: no error
    assert engine.pings == [1]
