"""Migration 0009: the Merkle tree of a log written before it is built from the events'
stored hashes (nothing in the chain changes, and it verifies as before); the downgrade
places events still waiting in audit_pending into the chain, and the chain verifies."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from app.audit.chain import seal
from app.audit.verify import verify_chain, verify_log
from app.storage import migrate
from app.storage.db import make_engine, make_session_factory
from tests.audit.test_sequencer import mth

EVENTS = sa.table(
    "audit_events",
    *(
        sa.column(name, type_)
        for name, type_ in {
            "sequence": sa.BigInteger(),
            "type": sa.String(),
            "call_sid": sa.String(),
            "recording_sid": sa.String(),
            "prev_hash": sa.String(),
            "hash": sa.String(),
            "body": sa.LargeBinary(),
        }.items()
    ),
)
HEAD = sa.table("audit_head", sa.column("sequence", sa.BigInteger), sa.column("hash", sa.String))
START = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)


def _event(n: int) -> dict:
    return {
        "type": "decision",
        "call_sid": f"CA{n:032x}",
        "recording_sid": None,
        "actor": "platform",
        "occurred_at": START + timedelta(seconds=n),
        "received_at": START + timedelta(seconds=n),
        "reasons": ["department_recorded"],
        "policy_version": None,
        "detail": {"n": n},
    }


def _chain_at_0008(url: str, count: int) -> None:
    """`count` events as the release before 0009 wrote them (after 0005's own event)."""
    migrate.upgrade(url, "0008")
    engine = make_engine(url)
    with engine.begin() as connection:
        head = connection.execute(sa.select(HEAD.c.sequence, HEAD.c.hash)).one()
        sequence, previous, rows = head.sequence, head.hash, []
        for n in range(count):
            sequence += 1
            rows.append(seal(_event(n), sequence, previous))
            previous = rows[-1]["hash"]
        connection.execute(EVENTS.insert(), rows)
        connection.execute(HEAD.update().values(sequence=sequence, hash=previous))
    engine.dispose()


def _hashes(url: str) -> list[str]:
    engine = make_engine(url)
    with engine.connect() as connection:
        rows = connection.execute(sa.text("SELECT hash FROM audit_events ORDER BY sequence"))
        hashes = [h for (h,) in rows]
    engine.dispose()
    return hashes


def test_upgrade_builds_the_tree_of_the_log_as_it_stands(database_url: str) -> None:
    _chain_at_0008(database_url, 37)
    before = _hashes(database_url)
    migrate.upgrade(database_url)
    assert _hashes(database_url) == before  # nothing in the chain changed
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        assert verify_log(session).as_dict() == {"ok": True, "events": len(before)}
        root = session.execute(sa.text("SELECT root FROM audit_head")).scalar_one()
    engine.dispose()
    assert bytes(root) == mth([bytes.fromhex(h) for h in before])


def test_downgrade_places_waiting_events_in_the_chain(database_url: str) -> None:
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    with engine.begin() as connection:  # committed by a process that died before its place
        connection.execute(
            sa.text(
                "INSERT INTO audit_pending (queued_at, type, call_sid, recording_sid, body) "
                "VALUES (:at, 'decision', :call, NULL, :body)"
            ),
            [
                {"at": START, "call": f"CA{n:032x}", "body": f'{{"n":{n}}}'.encode()}
                for n in range(3)
            ],
        )
    size = len(_hashes(database_url))
    engine.dispose()
    migrate.downgrade(database_url, "0008")
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        assert verify_chain(session).as_dict() == {"ok": True, "events": size + 3}
    tables = sa.inspect(engine).get_table_names()
    engine.dispose()
    assert "audit_pending" not in tables and "audit_nodes" not in tables
    migrate.upgrade(database_url)  # and up again, the tree rebuilt from the longer chain
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        assert verify_log(session).ok
    engine.dispose()
