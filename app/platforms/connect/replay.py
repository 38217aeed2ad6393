"""Connect's calls journalled while the database was down, applied once it is back through
their live dedupe keys. A flow call was already answered with the fail-safe (the fallback
queue): what happened is recorded, an opt-out key press honoured, and a transferred
contact registered as the call's segment in the fallback queue. An event is applied as if
it had just come."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from app.calls.answers import FALLBACK_QUEUE
from app.calls.inputs import RECORDING_STARTED, Delivery, RecordingReported, SegmentArrived
from app.calls.journal import Entry
from app.platforms.connect import contact_events, flow
from app.platforms.connect.webhooks import (
    EVENTS_PATH,
    FAIL_SAFE_RECORDING,
    FLOW_PATH,
    apply_event,
    connect_of,
)
from app.runtime.services import Services

log = structlog.get_logger(__name__)


def replay(services: Services, entry: Entry) -> None:
    instance = connect_of(services).instance_id
    received = datetime.fromtimestamp(entry.received_at_ns / 1e9, UTC)
    if entry.path == EVENTS_PATH:
        event = contact_events.parse(entry.form, instance)
        if event is not None:
            apply_event(services, event)
    elif entry.path == FLOW_PATH:
        call = flow.parse(entry.form, instance)
        if entry.form.get(FAIL_SAFE_RECORDING):
            _recorded(services, call)
        _flow(services, call, received)
    else:
        log.warning("journal_entry_unknown_path", path=entry.path, entry=entry.name)


def _flow(services: Services, call: flow.FlowCall, received: datetime) -> None:
    calls = services.calls
    if call.step == "digits":
        step = call.menu_step or 1
        key = call.menu_key(step)
        calls.replay_fail_safe(call.initial_id, None, call.digits, key, "ivr", received)
    elif call.successor:
        # The fail-safe put the transferred caller in the fallback queue, unrecorded.
        arrived = SegmentArrived(
            call_sid=call.initial_id,
            segment_sid=call.contact_id,
            previous_sid=call.previous_id,
            department=FALLBACK_QUEUE,
            delivery=Delivery(call.arrive_key()),
        )
        services.segments.arrived(arrived, lambda _answer: "")
    else:
        calls.replay_fail_safe(
            call.initial_id,
            call.dialled,
            None,
            call.arrive_key(),
            "voice",
            received,
            segment_sid=call.contact_id,
        )


def _recorded(services: Services, call: flow.FlowCall) -> None:
    """The fail-safe answer started recording the contact (CALLGUARD_FAIL_SAFE=record):
    tracked from now on, so it is decided, found and destroyed like any other."""
    services.calls.recording_reported(
        RecordingReported(
            call_sid=call.initial_id,
            recording_sid=call.contact_id,
            status=RECORDING_STARTED,
            duration_seconds=None,
            started_at=None,
            media_url=None,
            error_code=None,
            delivery=Delivery(f"fail-safe-recording:{call.contact_id}"),
            segment_sid=call.contact_id,
        )
    )
