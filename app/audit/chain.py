"""The audit log's hash chain.

Each event is stored as the exact bytes that were hashed (`body`) plus the columns it is
found by. Its hash covers both and the previous event's hash, so changing, removing or
reordering any event, or any of its columns, breaks the chain. The encoding (format 2) is
fixed here and documented in the README so that an auditor can re-verify with a script of
their own:

    message = prev_hash "\\n" sequence "\\n" type "\\n" call_sid "\\n" recording_sid "\\n" body
              (an absent sid is empty)
    body    = UTF-8 JSON of {"actor", "occurred_at", "received_at", "reasons",
              "policy_version", "detail"}, keys sorted, separators "," and ":", no ASCII
              escaping, times as UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ", no floats anywhere
    hash    = lowercase hex SHA-256 of message
    prev_hash of the first event = 64 zeros

Storing the hashed bytes means verification never re-encodes (fast, and immune to how a
JSON library formats things), and nothing but `body` holds an event's content. The header
needs no escaping: a type or sid holding a newline is refused (`seal`), and JSON has none,
so every message has exactly five newlines before its body and splits one way only; no
other column values can give the same bytes.

Format 1 (until migration 0005) hashed one JSON of every field; it is kept here for the
migrations that convert to and from it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
BODY_FIELDS = ("actor", "occurred_at", "received_at", "reasons", "policy_version", "detail")
COLUMNS = ("sequence", "type", "call_sid", "recording_sid", "prev_hash", "hash", "body")


def timestamp(moment: datetime) -> str:
    """One format for every time: UTC with microseconds and a Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment.year < 1000:  # strftime's %Y does not pad them on every platform
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as that strftime, in a third of its time (every event has two).
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def plain(value: Any) -> Any:
    """Detail values as JSON without floats (their text form varies between libraries):
    times become timestamps, floats are refused."""
    if isinstance(value, float):
        raise TypeError("audit details hold no floats: store an int or a string")
    if isinstance(value, datetime):
        return timestamp(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _json(content: Mapping[str, Any]) -> bytes:
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def body_of(event: Mapping[str, Any]) -> bytes:
    """The content an event's columns do not hold, as the bytes that are hashed."""
    return _json(
        {
            "actor": event["actor"],
            "occurred_at": timestamp(event["occurred_at"]),
            "received_at": timestamp(event["received_at"]),
            "reasons": list(event["reasons"] or []),
            "policy_version": event["policy_version"],
            "detail": plain(event["detail"] or {}),
        }
    )


def message(row: Mapping[str, Any]) -> bytes:
    """What is hashed: the header of columns, then the body."""
    header = (
        f"{row['prev_hash']}\n{row['sequence']}\n{row['type']}\n"
        f"{row['call_sid'] or ''}\n{row['recording_sid'] or ''}\n"
    )
    return header.encode("utf-8") + bytes(row["body"])


def unsequenced(event: Mapping[str, Any]) -> dict[str, Any]:
    """An event as it waits for its place: the header columns, checked, and its body."""
    for name in ("type", "call_sid", "recording_sid"):
        if "\n" in (event[name] or ""):
            raise ValueError(f"an audit event's {name} holds a newline: refused")
    return {
        "type": event["type"],
        "call_sid": event["call_sid"],
        "recording_sid": event["recording_sid"],
        "body": body_of(event),
    }


def place(waiting: Mapping[str, Any], sequence: int, prev_hash: str) -> dict[str, Any]:
    """The row to insert for an unsequenced event placed after `prev_hash` at `sequence`."""
    row = {
        "sequence": sequence,
        "type": waiting["type"],
        "call_sid": waiting["call_sid"],
        "recording_sid": waiting["recording_sid"],
        "prev_hash": prev_hash,
        "body": bytes(waiting["body"]),
    }
    row["hash"] = hashlib.sha256(message(row)).hexdigest()
    return row


def seal(event: Mapping[str, Any], sequence: int, prev_hash: str) -> dict[str, Any]:
    """The row to insert for an event placed after `prev_hash` at `sequence`."""
    return place(unsequenced(event), sequence, prev_hash)


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


# -- format 1 (migrations only) ----------------------------------------------------------

V1_FIELDS = (
    "sequence",
    "type",
    "call_sid",
    "recording_sid",
    "actor",
    "occurred_at",
    "received_at",
    "reasons",
    "policy_version",
    "detail",
    "prev_hash",
)


def v1_event_hash(row: Mapping[Any, Any]) -> str:
    content = {name: row[name] for name in V1_FIELDS}
    content["occurred_at"] = timestamp(content["occurred_at"])
    content["received_at"] = timestamp(content["received_at"])
    content["reasons"] = list(content["reasons"] or [])
    content["detail"] = plain(content["detail"] or {})
    return hashlib.sha256(_json(content)).hexdigest()
