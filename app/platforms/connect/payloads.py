"""What every Connect payload is checked against before anything is stored: Connect's ids
(UUIDs), its fixed sets (initiation methods and channels, as botocore's Connect model
names them: tests/providers/test_connect_payloads.py compares), ARNs of this instance,
numbers and lengths. A value off these is a 400 that changes nothing; fields callguard
does not use are not read (Connect adds fields without notice)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from app.errors import BadRequest
from app.platforms.connect.settings import UUID

UUID_PATTERN = re.compile(UUID)
# botocore's Connect model: shapes ContactInitiationMethod and Channel.
INITIATION_METHODS = frozenset(
    {
        "INBOUND",
        "OUTBOUND",
        "TRANSFER",
        "QUEUE_TRANSFER",
        "CALLBACK",
        "API",
        "DISCONNECT",
        "MONITOR",
        "EXTERNAL_OUTBOUND",
        "WEBRTC_API",
        "AGENT_REPLY",
        "FLOW",
    }
)
CHANNELS = frozenset({"VOICE", "CHAT", "TASK", "EMAIL"})
# A contact that continues a chain: the next segment of the call.
SUCCESSORS = frozenset({"TRANSFER", "QUEUE_TRANSFER"})
# A supervisor listening in: not a segment of the caller's call.
IGNORED_METHODS = frozenset({"MONITOR"})
E164 = re.compile(r"\+[1-9][0-9]{1,14}")
DEPARTMENT = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")  # a policy's department id
PERSON = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")  # a callguard user name
_ARN = r"arn:aws[a-z-]*:connect:[a-z0-9-]{1,32}:\d{12}:instance/"
EARLIEST = datetime(2017, 1, 1, tzinfo=UTC)  # before Amazon Connect


class BadPayload(BadRequest):
    """A Connect payload without a field it must have, or with one no Connect sends."""


def obj(value: object, name: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise BadPayload(f"{name} is not a JSON object")
    return value


def optional_obj(value: object, name: str) -> Mapping[str, Any]:
    return {} if value is None else obj(value, name)


def text(value: object, name: str, *, max_length: int = 256) -> str:
    if not isinstance(value, str):
        raise BadPayload(f"{name} is not a string")
    if len(value) > max_length:
        raise BadPayload(f"{name} is longer than {max_length} characters")
    return value


def uuid(value: object, name: str) -> str:
    if not isinstance(value, str) or not UUID_PATTERN.fullmatch(value):
        raise BadPayload(f"{name} is not a Connect id (a lowercase UUID)")
    return value


def optional_uuid(value: object, name: str) -> str | None:
    return None if value in (None, "") else uuid(value, name)


def one_of(value: object, allowed: frozenset[str], name: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise BadPayload(f"{name} is not one Amazon Connect sends")
    return value


def instance_of(value: object, name: str, instance_id: str) -> None:
    """An instance ARN (or an ARN of something in it) must be this callguard's instance."""
    found = re.match(_ARN + f"({UUID})", text(value, name, max_length=2048))
    if found is None:
        raise BadPayload(f"{name} is not an Amazon Connect instance ARN")
    if found.group(1) != instance_id:
        raise BadPayload(f"{name} names another Amazon Connect instance than this callguard's")


def queue_arn(value: object, instance_id: str) -> str | None:
    """A standard queue's ARN in this instance, else None (never copied into an answer)."""
    if not isinstance(value, str):
        return None
    pattern = _ARN + re.escape(instance_id) + f"/queue/{UUID}"
    return value if re.fullmatch(pattern, value) else None


def number(endpoint: object) -> str | None:
    """An endpoint's address when it is an E.164 number (a SIP address or junk: none)."""
    if not isinstance(endpoint, Mapping):
        return None
    address = endpoint.get("Address")
    return address if isinstance(address, str) and E164.fullmatch(address) else None


def department(value: object) -> str | None:
    """The department id a queue's name names (Connect queues are named by department
    id); None for a name no department could have."""
    if isinstance(value, str) and len(value) <= 64 and DEPARTMENT.fullmatch(value):
        return value
    return None


def moment(value: object) -> datetime | None:
    """An ISO-8601 time as Connect and EventBridge write them; None for one no real event
    has (unreadable, no zone, before Connect or more than a day ahead)."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None or not EARLIEST <= parsed <= datetime.now(UTC) + timedelta(days=1):
        return None
    return parsed
