"""Amazon Connect's side of a call, played to a callguard: the ContactFlowEvent the flow's
Lambda forwards and the contact events EventBridge delivers, in Connect's own shapes, sent
with the shared token. For `callguard simulate` (against a running service and a Connect
stand-in) and the tests (against the app in-process): `post` is anything with httpx's
`post` (an httpx.Client, FastAPI's TestClient)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

FLOW_PATH = "/webhooks/connect/flow"
EVENTS_PATH = "/webhooks/connect/events"


class Poster(Protocol):
    def post(self, url: str, *, json: Any, headers: Mapping[str, str]) -> Any: ...


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class Contact:
    """One contact of a caller's chain, as Connect describes it."""

    id: str
    initial_id: str
    method: str = "INBOUND"
    previous_id: str | None = None
    dialled: str | None = None
    caller: str | None = None
    queue_name: str | None = None
    queue_arn: str | None = None


@dataclass
class Emulator:
    instance_arn: str
    token: str
    http: Poster
    base_url: str = ""

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Callguard-Token": self.token}

    # -- the flow's Lambda ---------------------------------------------------------------

    def flow_event(
        self, contact: Contact, step: str, digits: str | None = None, menu_step: str = ""
    ) -> dict[str, Any]:
        parameters = {"step": step}
        if step == "digits":
            parameters["digits"] = digits or ""
            if menu_step:
                parameters["menu_step"] = menu_step
        queue = (
            {"Name": contact.queue_name, "ARN": contact.queue_arn} if contact.queue_name else None
        )
        return {
            "Name": "ContactFlowEvent",
            "Details": {
                "ContactData": {
                    "Attributes": {},
                    "Channel": "VOICE",
                    "ContactId": contact.id,
                    "CustomerEndpoint": _endpoint(contact.caller),
                    "InitialContactId": contact.initial_id,
                    "InitiationMethod": contact.method,
                    "InstanceARN": self.instance_arn,
                    "PreviousContactId": contact.previous_id or contact.id,
                    "Queue": queue,
                    "SystemEndpoint": _endpoint(contact.dialled),
                    "MediaStreams": {"Customer": {"Audio": None}},
                },
                "Parameters": parameters,
            },
        }

    def flow(
        self, contact: Contact, step: str, digits: str | None = None, menu_step: str = ""
    ) -> Any:
        """POST the flow's call; the response as it came."""
        body = self.flow_event(contact, step, digits, menu_step)
        return self.http.post(self.base_url + FLOW_PATH, json=body, headers=self.headers)

    # -- EventBridge -----------------------------------------------------------------------

    def contact_event(
        self,
        contact: Contact,
        event_type: str,
        *,
        agent_arn: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        when = now_iso()
        detail: dict[str, Any] = {
            "eventType": event_type,
            "contactId": contact.id,
            "initialContactId": contact.initial_id,
            "channel": "VOICE",
            "instanceArn": self.instance_arn,
            "initiationMethod": contact.method,
            "initiationTimestamp": when,
            "tags": {},
        }
        if contact.previous_id:
            detail["previousContactId"] = contact.previous_id
        if contact.queue_arn:
            detail["queueInfo"] = {"queueArn": contact.queue_arn, "queueType": "STANDARD"}
        if agent_arn:
            detail["agentInfo"] = {"agentArn": agent_arn, "connectedToAgentTimestamp": when}
        if event_type == "DISCONNECTED":
            detail["disconnectTimestamp"] = when
        region, account = self.instance_arn.split(":")[3:5]
        return {
            "version": "0",
            "id": event_id or str(uuid.uuid4()),
            "detail-type": "Amazon Connect Contact Event",
            "source": "aws.connect",
            "account": account,
            "time": when,
            "region": region,
            "resources": [self.instance_arn],
            "detail": detail,
        }

    def deliver(self, event: dict[str, Any]) -> Any:
        """POST one contact event as EventBridge's API destination does."""
        return self.http.post(self.base_url + EVENTS_PATH, json=event, headers=self.headers)

    def event(self, contact: Contact, event_type: str, **kwargs: Any) -> Any:
        return self.deliver(self.contact_event(contact, event_type, **kwargs))


def _endpoint(number: str | None) -> dict[str, str] | None:
    return {"Address": number, "Type": "TELEPHONE_NUMBER"} if number else None
