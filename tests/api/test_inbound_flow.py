"""An inbound call end to end through the real webhooks, on the simulator."""

from __future__ import annotations

from sqlalchemy import select

from app.storage.models import AuditEvent, Call, Recording
from tests.factories import MAIN_NUMBER, Platform


def test_contact_harlow_call_is_recorded_after_notice(platform: Platform, session) -> None:
    call_sid = platform.queue_call(MAIN_NUMBER, digits=["1"])
    recordings = platform.simulator.recordings(call_sid)
    assert [r.status for r in recordings] == ["in-progress"]
    platform.deliver_callbacks()
    platform.hangup(call_sid)
    call = session.get(Call, call_sid)
    assert call.department == "contact-harlow"
    row = session.scalars(select(Recording).where(Recording.call_sid == call_sid)).one()
    assert row.status == "completed"
    assert row.destroy_after is not None
    types = [
        e.type for e in session.scalars(select(AuditEvent).where(AuditEvent.call_sid == call_sid))
    ]
    assert types[0] == "call.started"
    assert "recording.started" in types and "recording.completed" in types
