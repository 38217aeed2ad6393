"""The contact flow's Lambda call (Connect's ContactFlowEvent, forwarded as it is) checked
and translated into callguard's inputs:

* step `arrive` of a new contact: the call arrived (`CallArrived`; the call is the chain's
  InitialContactId, its first segment this contact), routed by the dialled number;
* step `arrive` of a TRANSFER or QUEUE_TRANSFER contact: the next segment of its chain
  (`SegmentArrived`), decided for the department its queue's name names;
* step `digits`: the caller answered menu step `menu_step` (the number callguard's last
  answer gave the flow; a flow that does not pass it back answers the call's current step).

Dedupe keys name the contact and the step, never the digits pressed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.calls.inputs import CallArrived, Delivery, MenuAnswered, SegmentArrived
from app.platforms.connect import payloads as p

STEPS = frozenset({"arrive", "digits"})
DIGITS = frozenset("0123456789*#")
MAX_DIGITS = 32
MAX_MENU_STEP = 1000


@dataclass(frozen=True)
class FlowCall:
    contact_id: str
    initial_id: str
    previous_id: str | None
    method: str
    dialled: str | None
    caller: str | None
    department: str | None  # what the contact's queue names
    queue_name: str | None
    queue_arn: str | None
    step: str
    digits: str | None
    menu_step: int | None

    @property
    def successor(self) -> bool:
        return self.method in p.SUCCESSORS

    def arrive_key(self) -> str:
        return f"flow:{self.contact_id}:arrive"

    def menu_key(self, step: int) -> str:
        return f"flow:{self.contact_id}:menu:{step}"


def parse(payload: object, instance_id: str) -> FlowCall:
    body = p.obj(payload, "the body")
    if body.get("Name") != "ContactFlowEvent":
        raise p.BadPayload("Name is not ContactFlowEvent")
    details = p.obj(body.get("Details"), "Details")
    data = p.obj(details.get("ContactData"), "Details.ContactData")
    parameters = p.optional_obj(details.get("Parameters"), "Details.Parameters")
    p.instance_of(data.get("InstanceARN"), "ContactData.InstanceARN", instance_id)
    p.one_of(data.get("Channel"), p.CHANNELS, "ContactData.Channel")
    if data.get("Channel") != "VOICE":
        raise p.BadPayload("callguard decides voice contacts only (ContactData.Channel)")
    method = p.one_of(data.get("InitiationMethod"), p.INITIATION_METHODS, "InitiationMethod")
    if method in p.IGNORED_METHODS:
        raise p.BadPayload(f"a {method} contact is not routed by callguard")
    contact = p.uuid(data.get("ContactId"), "ContactData.ContactId")
    queue = p.optional_obj(data.get("Queue"), "ContactData.Queue")
    queue_name = p.text(queue["Name"], "Queue.Name") if queue.get("Name") else None
    return FlowCall(
        contact_id=contact,
        initial_id=p.optional_uuid(data.get("InitialContactId"), "InitialContactId") or contact,
        previous_id=p.optional_uuid(data.get("PreviousContactId"), "PreviousContactId"),
        method=method,
        dialled=p.number(data.get("SystemEndpoint")),
        caller=p.number(data.get("CustomerEndpoint")),
        department=p.department(queue_name),
        queue_name=queue_name,
        queue_arn=p.queue_arn(queue.get("ARN"), instance_id),
        step=p.one_of(parameters.get("step"), STEPS, "Parameters.step"),
        digits=_digits(parameters.get("digits")),
        menu_step=_menu_step(parameters.get("menu_step")),
    )


def _digits(value: object) -> str | None:
    """The key pressed; None for nothing (the flow sends an empty string on a timeout)."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > MAX_DIGITS or not set(value) <= DIGITS:
        raise p.BadPayload("Parameters.digits holds something no keypad sends")
    return value


def _menu_step(value: object) -> int | None:
    if value is None or value == "":
        return None
    if not (isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 4):
        raise p.BadPayload("Parameters.menu_step is not a menu step")
    step = int(value)
    if not 1 <= step <= MAX_MENU_STEP:
        raise p.BadPayload("Parameters.menu_step is not a menu step")
    return step


def arrival(flow: FlowCall) -> CallArrived | SegmentArrived:
    delivery = Delivery(flow.arrive_key())
    if flow.successor:
        return SegmentArrived(
            call_sid=flow.initial_id,
            segment_sid=flow.contact_id,
            previous_sid=flow.previous_id,
            department=flow.department,
            delivery=delivery,
        )
    return CallArrived(
        call_sid=flow.initial_id,
        dialled=flow.dialled or "",
        caller=flow.caller,
        delivery=delivery,
        direction=flow.method.lower(),
        segment_sid=flow.contact_id,
    )


def menu_answer(flow: FlowCall, step: int) -> MenuAnswered:
    return MenuAnswered(
        call_sid=flow.initial_id,
        step=step,
        digits=flow.digits,
        delivery=Delivery(flow.menu_key(step)),
    )


def journal_form(payload: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept of a flow call while the database is down: the event as it came."""
    return {"flow": dict(payload)}
