"""Amazon Connect's contact events as EventBridge delivers them (at least once, in any
order), checked and translated into callguard's `SegmentProgressed`: each contact is a
segment of the call its initialContactId names, moving through Connect's event types in
their order (RANKS), never backwards; DISCONNECTED (or COMPLETED, if that is what arrives)
ends the segment. An event is applied once under its EventBridge `id`.

Not applied, and answered 2xx all the same (EventBridge must not retry them): event types
callguard does not use (Connect adds types without notice), contacts that are not voice,
and MONITOR contacts (a supervisor listening in is not a segment of the caller's call)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from app.calls.inputs import Delivery, SegmentProgressed
from app.platforms.connect import payloads as p
from app.platforms.connect.settings import UUID

DETAIL_TYPE = "Amazon Connect Contact Event"
SOURCE = "aws.connect"
# Connect's contact event types in the order a contact moves through them.
RANKS = {
    "INITIATED": 0,
    "CONNECTED_TO_SYSTEM": 1,
    "QUEUED": 2,
    "CONNECTED_TO_AGENT": 3,
    "DISCONNECTED": 4,
    "COMPLETED": 5,
}
ENDINGS = frozenset({"DISCONNECTED", "COMPLETED"})
EVENT_TYPE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_AGENT = re.compile(rf"arn:aws[a-z-]*:connect:[a-z0-9-]+:\d{{12}}:instance/({UUID})/agent/({UUID})")


@dataclass(frozen=True)
class ContactEvent:
    event_id: str
    event_type: str
    contact_id: str
    initial_id: str
    previous_id: str | None
    method: str
    occurred_at: datetime | None
    agent_id: str | None

    @property
    def ended(self) -> bool:
        return self.event_type in ENDINGS


def parse(payload: object, instance_id: str) -> ContactEvent | None:
    """The event, or None when it is one callguard accepts without applying."""
    body = p.obj(payload, "the body")
    if body.get("detail-type") != DETAIL_TYPE or body.get("source") != SOURCE:
        raise p.BadPayload(f"not an {DETAIL_TYPE} from {SOURCE}")
    event_id = p.uuid(body.get("id"), "id")
    detail = p.obj(body.get("detail"), "detail")
    event_type = p.text(detail.get("eventType"), "detail.eventType", max_length=64)
    if not EVENT_TYPE.fullmatch(event_type):
        raise p.BadPayload("detail.eventType is not an event type")
    p.instance_of(detail.get("instanceArn"), "detail.instanceArn", instance_id)
    channel = p.one_of(detail.get("channel"), p.CHANNELS, "detail.channel")
    method = p.one_of(detail.get("initiationMethod"), p.INITIATION_METHODS, "initiationMethod")
    contact = p.uuid(detail.get("contactId"), "detail.contactId")
    initial = p.optional_uuid(detail.get("initialContactId"), "detail.initialContactId")
    previous = p.optional_uuid(detail.get("previousContactId"), "detail.previousContactId")
    agent = p.optional_obj(detail.get("agentInfo"), "detail.agentInfo")
    if event_type not in RANKS or channel != "VOICE" or method in p.IGNORED_METHODS:
        return None
    when = detail.get("disconnectTimestamp") if event_type in ENDINGS else None
    return ContactEvent(
        event_id=event_id,
        event_type=event_type,
        contact_id=contact,
        initial_id=initial or contact,
        previous_id=previous,
        method=method,
        occurred_at=p.moment(when) or p.moment(body.get("time")),
        agent_id=_agent_id(agent.get("agentArn"), instance_id),
    )


def _agent_id(value: object, instance_id: str) -> str | None:
    if value is None:
        return None
    found = _AGENT.fullmatch(p.text(value, "agentInfo.agentArn", max_length=2048))
    if found is None or found.group(1) != instance_id:
        raise p.BadPayload("agentInfo.agentArn is not an agent of this instance")
    return found.group(2)


def progress(
    event: ContactEvent, successors: tuple[str, ...], person: str | None
) -> SegmentProgressed:
    return SegmentProgressed(
        call_sid=event.initial_id,
        segment_sid=event.contact_id,
        previous_sid=event.previous_id,
        status=event.event_type,
        rank=RANKS[event.event_type],
        ended=event.ended,
        occurred_at=event.occurred_at,
        delivery=Delivery(f"event:{event.event_id}"),
        successors=successors,
        person=person if event.event_type == "CONNECTED_TO_AGENT" else None,
        source="connect",
    )
