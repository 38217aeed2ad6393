"""The database unreachable during a flow call and a contact event (P7, E3), as on Twilio:
the caller gets the fail-safe answer at once, the event a 204, and both are journalled and
applied exactly once when the database is back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session, sessionmaker

from app.config import FailSafe
from app.storage.db import make_engine, make_session_factory
from tests.connect_fake.callguard import FALLBACK, ConnectCallguard


@contextmanager
def database_down(cg: ConnectCallguard) -> Iterator[None]:
    services = cg.services
    url = services.engine.url
    broken_url = url.set(
        database="/nonexistent/dir/x.db"
        if url.get_backend_name() == "sqlite"
        else "no_such_database_cg"
    )
    broken = make_engine(broken_url.render_as_string(hide_password=False))
    down = make_session_factory(broken)
    holders = [services, services.calls, services.segments, services.reconciler]
    saved: list[sessionmaker[Session]] = [h.sessions for h in holders]
    for holder in holders:
        holder.sessions = down
    try:
        yield
    finally:
        for holder, sessions in zip(holders, saved, strict=True):
            holder.sessions = sessions
        broken.dispose()


def test_a_flow_call_and_events_while_the_database_is_down(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact = cg.new_call()
    with database_down(cg):
        answer = cg.answer(contact)
        assert answer == {
            "next": "queue",
            "prompt": answer["prompt"],
            "department": "",
            "queue": FALLBACK,
            "queue_arn": cg.queues[FALLBACK],
            "recorded": "false",  # CALLGUARD_FAIL_SAFE=no-record
        }
        cg.event(contact, "QUEUED")
        cg.event(contact, "QUEUED")  # EventBridge delivered it twice
        assert cg.services.journal.backlog() == 3
    assert cg.server.requests_for("StartContactRecording") == []
    assert cg.services.replayer.run_once() == 3
    assert cg.services.replayer.run_once() == 0
    call = cg.call_row(contact.id)
    assert (call.queued, call.segment_sid, call.recording) == (True, contact.id, "off")
    types = cg.audit_types(contact.id)
    assert types.count("call.started") == 1 and types.count("call.fail_safe_answered") == 1
    assert types.count("call.status") == 1  # the event, once
    # The contact goes on: its end is applied as usual.
    cg.event(contact, "DISCONNECTED")
    assert cg.call_row(contact.id).ended


def test_an_opt_out_pressed_while_the_database_was_down_is_honoured(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact = cg.new_call()
    cg.answer(contact)  # the notice and menu, with the database up
    with database_down(cg):
        assert cg.answer(contact, "digits", "9")["queue"] == FALLBACK
    cg.services.replayer.run_once()
    call = cg.call_row(contact.id)
    assert call.opted_out and "opt_out.requested" in cg.audit_types(contact.id)


def test_a_transfer_while_the_database_was_down_is_the_calls_segment_afterwards(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="1")
    moved = cg.transfer(first, "housing-management")
    with database_down(cg):
        assert cg.answer(moved)["queue"] == FALLBACK
    cg.services.replayer.run_once()
    call = cg.call_row(first.id)
    # The fail-safe put the caller in the fallback queue, unrecorded; the first contact's
    # recording (Contact Harlow's) is stopped.
    assert (call.segment_sid, call.department, call.desired) == (moved.id, FALLBACK, "off")
    assert cg.recording_state(first) == "STOPPED"
    assert cg.recording_state(moved) is None


def test_with_fail_safe_record_the_outage_recording_is_tracked_once_the_database_is_back(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    settings = cg.services.calls.settings
    cg.services.calls.settings = settings.model_copy(update={"fail_safe": FailSafe.RECORD})
    contact = cg.new_call()
    with database_down(cg):
        answer = cg.answer(contact)
    assert (answer["queue"], answer["recorded"]) == (FALLBACK, "true")
    assert "may be recorded" in answer["prompt"]
    assert cg.recording_state(contact) == "RECORDING"  # started without the database
    cg.services.replayer.run_once()
    [recording] = cg.recordings(contact.id)
    assert (recording.segment_sid, recording.department) == (contact.id, "unknown")
    # Now callguard decides again: no department was chosen, so it is stopped; it is
    # found and dated (the longest retention: nobody chose a department) like any other.
    assert cg.recording_state(contact) == "STOPPED"
    cg.hang_up(contact)
    cg.event(contact, "DISCONNECTED")
    [recording] = cg.recordings(contact.id)
    assert recording.status == "completed" and recording.retention == "P2Y130D"
