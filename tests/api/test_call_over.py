"""A call the platform says is over (it refused a start: the call has ended) and whose own
end report never came is ended by the reconciler, so the sweep stops; its status is then
the platform's own word for an ended call, never one the core picks."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from app.calls.provider import ProviderError
from app.calls.reconcile import START_UNCERTAIN
from app.config import Settings
from app.main import create_app
from app.platforms.simulator import SimulatorPlatform
from app.platforms.simulator.provider import SimulatorProvider
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.runtime.services import build_services
from app.storage.db import unit_of_work
from app.storage.models import AuditEvent, Call
from tests.factories import Platform

CONTACT = load_policy_file(DEFAULT_POLICY_PATH).department("contact-harlow").numbers[0]


def test_a_call_twilio_says_is_over_is_ended_so_the_sweep_stops(
    client: TestClient, platform: Platform, services
) -> None:
    """The caller hung up; the recording's completed callback came, the call's never did
    (call-status callbacks are the operator's to configure). For a minute nothing is started
    (the call's own callback usually trails the recording's); then the sweep's start is
    refused with 21220, and the call is ended, not retried every 15 s for ever."""
    call_sid = platform.queue_call(CONTACT)
    platform.simulator.hangup(call_sid)
    platform.deliver_callbacks()  # the recording's completed callback only
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert (call.ended, call.desired, call.recording) == (False, "recording", "off")

    starts = len(platform.simulator.requests)
    services.reconciler.sweep()
    assert len(platform.simulator.requests) == starts  # within the minute: no start
    with unit_of_work(services.sessions) as session:
        call = session.get(Call, call_sid)
        call.start_pending_until -= START_UNCERTAIN  # a minute later
    assert services.reconciler.sweep() == 1
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert (call.ended, call.status, call.desired) == (True, "completed", "off")
        ended = session.scalars(
            select(AuditEvent).where(
                AuditEvent.call_sid == call_sid, AuditEvent.type == "call.ended"
            )
        ).one()
        assert ended.detail == {"status": "completed", "source": "provider", "code": 21220}
    assert services.reconciler.sweep() == 0
    # The late callback changes nothing.
    assert platform.call_status(call_sid, "completed", 3).status_code == 204
    with services.sessions() as session:
        types = [
            e.type
            for e in session.scalars(select(AuditEvent).where(AuditEvent.call_sid == call_sid))
        ]
    assert types.count("call.ended") == 1
    assert types[-1] == "call.status_ignored"


def test_the_call_is_ended_in_its_platforms_own_word(
    settings: Settings, simulator: SimulatorProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(SimulatorPlatform, "ended_status", "over-here")
    services = build_services(settings, provider=simulator)
    try:
        with TestClient(create_app(settings, services), base_url=settings.public_base_url) as c:
            platform = Platform(c, settings, simulator)
            call_sid = platform.queue_call(CONTACT)
            platform.simulator.hangup(call_sid)
            platform.deliver_callbacks()  # the recording's completed callback only
            with unit_of_work(services.sessions) as session:
                session.get(Call, call_sid).start_pending_until -= START_UNCERTAIN
            assert services.reconciler.sweep() == 1
        with services.sessions() as session:
            call = session.get(Call, call_sid)
            assert (call.ended, call.status) == (True, "over-here")
            ended = session.scalars(
                select(AuditEvent).where(
                    AuditEvent.call_sid == call_sid, AuditEvent.type == "call.ended"
                )
            ).one()
            assert ended.detail["status"] == "over-here"
    finally:
        services.close()


def test_a_start_refused_because_the_call_ended_meanwhile_ends_it_once(
    client: TestClient, platform: Platform, services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The caller hangs up while callguard is asking the platform to start the recording:
    the platform's end report is applied first, then the start is refused as the call is
    over. The call was ended already, so the refusal ends nothing more (it once wrote a
    second call.ended and ran the ending again)."""
    call_sid = "CA" + "e" * 32

    def refused(sid: str, _callback: str) -> object:
        platform.simulator.hangup(sid)
        assert platform.call_status(sid, "completed", 3).status_code == 204
        raise ProviderError(
            "call is not in-progress", transient=False, status=400, code=21220, call_over=True
        )

    monkeypatch.setattr(platform.simulator, "start_recording", refused)
    response = platform.voice(call_sid, CONTACT)
    assert response.status_code == 200, response.text
    while "<Enqueue" not in response.text:
        response = platform.ivr(call_sid, 1, None)
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert (call.ended, call.status, call.desired) == (True, "completed", "off")
        types = [
            e.type
            for e in session.scalars(select(AuditEvent).where(AuditEvent.call_sid == call_sid))
        ]
    assert types.count("call.ended") == 1, types
    assert "recording.start_failed" in types


def test_a_recordings_callback_writes_the_call_and_the_recording_once_each(
    client: TestClient, platform: Platform, services
) -> None:
    """Issue 17: the call's recordings are read first and its confirmed state worked out
    from them in memory, so the recording's completion and the call's new state go to the
    database in one flush: one UPDATE of each row, no second read of the recording."""
    call_sid = platform.queue_call(CONTACT)
    platform.deliver_callbacks()  # the recording's in-progress
    platform.simulator.hangup(call_sid)
    sent: list[str] = []

    def listener(_conn: object, _cursor: object, statement: str, *_rest: object) -> None:
        sent.append(" ".join(statement.split()))

    event.listen(services.engine, "before_cursor_execute", listener)
    try:
        [completed] = platform.deliver_callbacks()
    finally:
        event.remove(services.engine, "before_cursor_execute", listener)
    assert completed.status_code == 204
    assert sum(s.startswith("UPDATE recordings") for s in sent) == 1, sent
    assert sum(s.startswith("UPDATE calls") for s in sent) == 1, sent
    assert sum(s.startswith("SELECT recordings") for s in sent) == 1, sent
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert call.recording == "off"
