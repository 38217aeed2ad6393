"""statement.txt of an evidence pack: what the recording is, who has had it and how to check
the pack, in plain words, for a reader who will never run a command (app/evidence/pack.py).
Everything in it comes from the pack's own proven events and recording.json."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

# How each custody event reads: (what was done, from the event's detail).
_CUSTODY: dict[str, Callable[[dict[str, Any]], str]] = {
    "recording.fingerprinted": lambda d: (
        f"fingerprinted the audio: SHA-256 {d.get('sha256')}, {d.get('bytes')} bytes"
    ),
    "recording.fingerprint_mismatch": lambda d: (
        "ALERT: audio served did not match the fingerprint "
        f"(expected {d.get('expected')}, found {d.get('actual')})"
    ),
    "recording.accessed": lambda d: f"was given access to listen, for {_purpose(d)}",
    "recording.media_fetched": lambda d: "fetched the audio through that access",
    "disclosure.recorded": lambda d: (
        f"disclosed it to {d.get('recipient')} under data sharing agreement "
        f"{d.get('agreement_reference')}"
    ),
    "hold.placed": lambda d: f"placed a legal hold for case {d.get('case_reference')}",
    "hold.released": lambda d: f"released legal hold {d.get('hold_id')}",
    "evidence.exported": lambda d: f"exported an evidence pack for case {d.get('case_reference')}",
    "recording.destroyed": lambda d: "destroyed the recording at the platform",
}


def _purpose(detail: dict[str, Any]) -> str:
    return str(detail.get("purpose", "an unstated purpose")).replace("_", " ")


def _length(seconds: int | None) -> str:
    if seconds is None:
        return "."
    return f"; {seconds} second{'' if seconds == 1 else 's'} long."


def key_fingerprint(public_key: str) -> str:
    """SHA-256 of the raw public key, in hex: what a reader compares with the council's
    published key without reading base64."""
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()


def write_statement(
    recording: dict[str, Any], events: Sequence[dict[str, Any]], tree_head: dict[str, Any]
) -> str:
    sid = recording["recording_sid"]
    lines = [
        f"EVIDENCE PACK: recording {sid}",
        f"Case reference: {recording['case_reference']}",
        f"Exported by {recording['exported_by']} at {recording['exported_at']} (UTC).",
        "",
        "WHAT THIS IS",
        f"A recording of call {recording['call_sid']}, made for the "
        f"{recording['department_name']} department ({recording['department']}).",
        f"Started {recording['started_at']}; completed {recording['completed_at'] or '-'}"
        + _length(recording["duration_seconds"]),
        f"The audio is {recording['audio']} ({recording['media_type']}).",
        f"Its SHA-256 is {recording['fingerprint']['sha256']} and it is "
        f"{recording['fingerprint']['bytes']} bytes long: the fingerprint callguard took "
        "when the recording completed, itself recorded in the audit log.",
        "",
        "WHO HAS HAD IT (chain of custody, from the audit log)",
    ]
    custody = [e for e in events if e["type"] in _CUSTODY and e["recording_sid"] == sid]
    for event in custody:
        body = json.loads(event["body"])
        what = _CUSTODY[event["type"]](body.get("detail") or {})
        lines.append(
            f"  {body['occurred_at']}  {body['actor']}: {what}  [event {event['sequence']}]"
        )
    if not custody:
        lines.append("  (nothing)")
    lines += [
        "",
        "THE CALL'S HISTORY",
        f"events.json holds all {len(events)} audit events of the call, in order, each with "
        "the exact bytes the log hashed.",
        "",
        "HOW TO CHECK THIS PACK WITHOUT TRUSTING CALLGUARD",
        f"tree-head.json is callguard's signed audit log head: {tree_head['sequence']} events, "
        f"Merkle root {tree_head['root']}, signed at {tree_head['created_at']} with the "
        "Ed25519 key whose SHA-256 fingerprint is "
        f"{key_fingerprint(tree_head['public_key'])}.",
        "Every event in events.json carries a proof (RFC 9162) that it is in that log, and the",
        "log holds the audio's fingerprint. To check all of it, with the council's published",
        "public key and no access to callguard:",
        "    python3 offline.py THIS-FILE.zip --public-key PUBLIC-KEY",
        "(offline.py is one file of callguard's source, app/evidence/offline.py; its README",
        "documents every byte format, so you may write your own checker instead).",
        "",
    ]
    return "\n".join(lines)
