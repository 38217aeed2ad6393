"""E3: webhooks arriving while the database is away are journalled (fsync'd, encrypted)
and replayed in order, exactly once, when it is back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from app.audit.verify import verify_chain
from app.calls.journal import Entry, Journal
from app.calls.replay import Replayer
from app.storage.db import make_engine, make_session_factory
from app.storage.models import AuditEvent, Call, Recording
from tests.factories import MAIN_NUMBER, Platform, new_call_sid


def test_entries_are_encrypted_ordered_and_removed_once_applied(tmp_path) -> None:
    journal = Journal(tmp_path / "j", "key")
    for i in range(5):
        journal.append(f"/webhooks/twilio/call-status?i={i}", {"From": "+447700900123"}, None)
    assert journal.backlog() == 5
    raw = b"".join(p.read_bytes() for p in (tmp_path / "j").iterdir() if p.is_file())
    assert b"7700900123" not in raw
    seen: list[str] = []
    assert journal.replay(lambda e: seen.append(e.path)) == 5
    assert seen == [f"/webhooks/twilio/call-status?i={i}" for i in range(5)]
    assert journal.backlog() == 0


def test_a_failing_entry_stops_the_replay_and_keeps_order(tmp_path) -> None:
    journal = Journal(tmp_path, "key")
    for i in range(3):
        journal.append(f"/p?{i}", {}, None)
    applied: list[str] = []

    def flaky(entry) -> None:
        if entry.path == "/p?1" and not applied.count("/p?1-failed"):
            applied.append("/p?1-failed")
            raise ConnectionError("database away again")
        applied.append(entry.path)

    with pytest.raises(ConnectionError):
        journal.replay(flaky)
    assert journal.backlog() == 2
    journal.replay(flaky)
    assert applied == ["/p?0", "/p?1-failed", "/p?1", "/p?2"]


def test_an_entry_under_another_key_cannot_be_read(tmp_path) -> None:
    Journal(tmp_path, "key").append("/p", {"From": "+447700900123"}, None)
    with pytest.raises(InvalidTag):
        Journal(tmp_path, "other").replay(lambda e: None)


def _cut_database(services) -> object:
    """Point the app at a database that cannot be reached; returns the way back."""
    engine, sessions = services.engine, services.sessions
    url = engine.url
    if url.get_backend_name() == "sqlite":
        broken = url.set(database="/nonexistent/dir/x.db")
    else:
        broken = url.set(port=1)  # nothing listens there
    services.engine = make_engine(broken.render_as_string(hide_password=False))
    cut = make_session_factory(services.engine)
    for holder in (
        services,
        services.calls,
        services.reconciler,
        services.controls,
        services.transfers,
        services.assignments,
    ):
        holder.sessions = cut

    def restore() -> None:
        services.engine = engine
        for holder in (
            services,
            services.calls,
            services.reconciler,
            services.controls,
            services.transfers,
            services.assignments,
        ):
            holder.sessions = sessions

    return restore


def test_webhooks_during_an_outage_are_replayed_exactly_once(platform: Platform, services):
    live = platform.queue_call(MAIN_NUMBER, ["1"])  # recording, before the outage
    recording_sid = platform.simulator.recordings(live)[0].sid
    platform.deliver_callbacks()
    restore = _cut_database(services)
    new = new_call_sid()
    answer = platform.voice(new, MAIN_NUMBER)
    assert ET.fromstring(answer.text).find("Enqueue") is not None  # fail-safe, at once
    assert platform.ivr(new, 1, "9").status_code == 200  # caller presses opt-out
    platform.simulator.hangup(live)
    for response in platform.deliver_callbacks():
        assert response.status_code == 204
    assert platform.call_status(live, "completed", 9).status_code == 204
    assert platform.call_status(live, "completed", 9).status_code == 204  # a retry
    assert services.journal.backlog() == 5
    restore()

    assert services.replayer.run_once() == 5
    assert services.replayer.run_once() == 0
    # The platform's retry of an entry already replayed changes nothing either.
    platform.call_status(live, "completed", 9)
    with services.sessions() as session:

        def count(call_sid: str, type_: str) -> int:
            query = select(AuditEvent).where(
                AuditEvent.call_sid == call_sid, AuditEvent.type == type_
            )
            return len(session.scalars(query).all())

        assert count(live, "call.ended") == 1
        assert count(live, "recording.completed") == 1
        assert session.get(Recording, recording_sid).status == "completed"
        assert count(new, "call.started") == 1
        assert count(new, "call.fail_safe_answered") == 2  # the voice and the ivr answers
        assert count(new, "opt_out.requested") == 1
        call = session.get(Call, new)
        assert call.opted_out
        journaled = session.scalars(
            select(AuditEvent).where(AuditEvent.call_sid == new).order_by(AuditEvent.sequence)
        ).all()
        assert all(e.detail.get("journaled") for e in journaled if e.type != "decision")
        assert verify_chain(session).ok


def test_an_entry_the_database_cannot_hold_is_dropped_not_blocking(services):
    """PostgreSQL refuses a value longer than its column (SQLite stores it): such an entry
    would be refused live too, so replay drops it and goes on with the next. (Twilio's forms
    can no longer carry such a value past their edge checks, so the bad entry reaches the
    call-control service as a platform with laxer checks would hand it over.)"""
    if services.engine.dialect.name != "postgresql":
        pytest.skip("SQLite does not enforce column lengths")
    bad, good = new_call_sid(), new_call_sid()
    services.journal.append("/webhooks/twilio/voice", {"CallSid": bad, "To": "1" * 300}, None)
    services.journal.append("/webhooks/twilio/voice", {"CallSid": good, "To": MAIN_NUMBER}, None)

    def apply(entry: Entry) -> None:
        if entry.form["CallSid"] == bad:
            at = datetime.now(UTC)
            services.calls.replay_fail_safe(bad, "1" * 300, None, f"voice:{bad}", "voice", at)
        else:
            services.platform.replay(services, entry)

    assert Replayer(services.journal, apply).run_once() == 2
    assert services.journal.backlog() == 0
    with services.sessions() as session:
        assert session.get(Call, bad) is None
        assert session.get(Call, good) is not None
