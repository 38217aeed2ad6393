"""Migration 0005: a format-1 chain is verified, re-sealed in format 2 (content kept, the
old head linked by an audit.format_changed event), and converted back on downgrade; a
broken chain is refused rather than laundered."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from app.audit.chain import GENESIS, v1_event_hash
from app.audit.verify import verify_chain
from app.storage import migrate
from app.storage.db import make_engine, make_session_factory
from app.storage.models import AuditEvent

V1 = sa.table(
    "audit_events",
    *(
        sa.column(name, type_)
        for name, type_ in {
            "sequence": sa.BigInteger(),
            "type": sa.String(),
            "call_sid": sa.String(),
            "recording_sid": sa.String(),
            "actor": sa.String(),
            "occurred_at": sa.DateTime(timezone=True),
            "received_at": sa.DateTime(timezone=True),
            "reasons": sa.JSON(),
            "policy_version": sa.Integer(),
            "detail": sa.JSON(),
            "prev_hash": sa.String(),
            "hash": sa.String(),
        }.items()
    ),
)
HEAD = sa.table("audit_head", sa.column("sequence", sa.BigInteger), sa.column("hash", sa.String))
START = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def _format_1_chain(url: str, count: int) -> list[dict]:
    """`count` events written as the release before 0005 wrote them."""
    migrate.upgrade(url, "0004")
    engine = make_engine(url)
    rows, previous = [], GENESIS
    for n in range(1, count + 1):
        row = {
            "sequence": n,
            "type": "decision",
            "call_sid": f"CA{n:032x}",
            "recording_sid": None if n % 2 else f"RE{n:032x}",
            "actor": "platform",
            "occurred_at": START + timedelta(seconds=n),
            "received_at": START + timedelta(seconds=n, microseconds=250),
            "reasons": ["department_recorded"],
            "policy_version": 1,
            "detail": {"n": n, "text": "é"},
            "prev_hash": previous,
        }
        row["hash"] = previous = v1_event_hash(row)
        rows.append(row)
    with engine.begin() as connection:
        connection.execute(V1.insert(), rows)
        connection.execute(HEAD.update().values(sequence=count, hash=previous))
    engine.dispose()
    return rows


def test_upgrade_reseals_the_chain_keeping_every_event(database_url: str) -> None:
    written = _format_1_chain(database_url, 7)
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    with make_session_factory(engine)() as session:
        assert verify_chain(session).as_dict() == {"ok": True, "events": 8}
        events = list(session.scalars(sa.select(AuditEvent).order_by(AuditEvent.sequence)))
    for before, after in zip(written, events, strict=False):
        assert (after.sequence, after.type, after.call_sid, after.recording_sid) == (
            before["sequence"],
            before["type"],
            before["call_sid"],
            before["recording_sid"],
        )
        assert (after.actor, after.reasons, after.policy_version, after.detail) == (
            "platform",
            ["department_recorded"],
            1,
            before["detail"],
        )
        assert (after.occurred_at, after.received_at) == (
            before["occurred_at"],
            before["received_at"],
        )
    marker = events[-1]
    assert marker.type == "audit.format_changed"
    assert marker.detail == {"format": 2, "from_format": 1, "format_1_head": written[-1]["hash"]}

    # And back: a format-1 chain that the old release's rules verify.
    migrate.downgrade(database_url, "0004")
    with engine.connect() as connection:
        rows = connection.execute(sa.select(V1).order_by(V1.c.sequence)).mappings().all()
    previous = GENESIS
    for row in rows:
        content = {**row}
        for name in ("occurred_at", "received_at"):
            if content[name].tzinfo is None:  # SQLite hands back naive UTC
                content[name] = content[name].replace(tzinfo=UTC)
        assert row["prev_hash"] == previous
        assert v1_event_hash(content) == row["hash"]
        previous = row["hash"]
    assert [r["detail"] for r in rows[:7]] == [w["detail"] for w in written]
    assert len(rows) == 8
    migrate.upgrade(database_url)
    with make_session_factory(engine)() as session:
        assert verify_chain(session).ok
    engine.dispose()


def test_a_broken_chain_is_refused_not_resealed(database_url: str) -> None:
    _format_1_chain(database_url, 5)
    engine = make_engine(database_url)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SET session_replication_role = replica"))
        else:
            connection.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        connection.execute(V1.update().where(V1.c.sequence == 3).values(actor="mallory"))
    with pytest.raises(RuntimeError, match=r"broken at sequence 3 \(content_changed\)"):
        migrate.upgrade(database_url)
    if engine.dialect.name == "postgresql":  # transactional DDL: nothing was changed
        assert migrate.current_revision(engine) == "0004"
    engine.dispose()
