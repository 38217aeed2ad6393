"""The audit log's hash chain.

Each event's hash is SHA-256 over a canonical encoding of its content, which includes the
previous event's hash, so changing, removing or reordering any event breaks every link
after it. The encoding is fixed here and documented in the README so that an auditor can
re-verify with a script of their own:

    canonical = JSON of {"sequence", "type", "call_sid", "recording_sid", "actor",
                         "occurred_at", "received_at", "reasons", "policy_version",
                         "detail", "prev_hash"}
                with keys sorted, separators "," and ":", UTF-8 (no ASCII escaping),
                times as UTC "YYYY-MM-DDTHH:MM:SS.ffffffZ", no floats anywhere
    hash      = lowercase hex SHA-256 of canonical
    prev_hash of the first event = 64 zeros
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64
HASHED_FIELDS = (
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


def timestamp(moment: datetime) -> str:
    """One format for every time: UTC with microseconds and a Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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


def canonical(row: Mapping[Any, Any]) -> bytes:
    content = {name: row[name] for name in HASHED_FIELDS}
    content["occurred_at"] = timestamp(content["occurred_at"])
    content["received_at"] = timestamp(content["received_at"])
    content["reasons"] = list(content["reasons"] or [])
    content["detail"] = plain(content["detail"] or {})
    return json.dumps(
        content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def event_hash(row: Mapping[Any, Any]) -> str:
    return hashlib.sha256(canonical(row)).hexdigest()
