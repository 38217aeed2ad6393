"""An outside monitor of a callguard audit log (`callguard audit monitor URL`): it keeps the
last signed tree head it saw in a file of its own, and each time it runs fetches the
newest and the consistency proof between them, so a history rewritten or cut after the
monitor saw it cannot go unnoticed (RFC 9162 section 2.1.4; Certificate Transparency's
gossip). It needs only the log's public key and HTTP: no token, no database."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from app.audit.checkpoint import CheckpointError, parse, signature_outcome
from app.audit.merkle import verify_consistency

Outcome = Literal["first", "unchanged", "extended", "forked", "shrunk", "bad_signature"]


@dataclass(frozen=True)
class Seen:
    outcome: Outcome
    before: int | None  # the size the monitor had seen, if any
    now: int

    @property
    def ok(self) -> bool:
        return self.outcome in ("first", "unchanged", "extended")


class MonitorError(Exception):
    """The log could not be asked, or its answer or the state file is unusable (exit 2)."""


def _get(client: httpx.Client, path: str, **params: int) -> Any:
    try:
        response = client.get(path, params=params)
    except httpx.HTTPError as exc:
        raise MonitorError(f"{path}: {exc}") from None
    if response.status_code != 200:
        raise MonitorError(f"{path}: HTTP {response.status_code} {response.text[:200]}")
    try:
        return response.json()
    except ValueError:
        raise MonitorError(f"{path}: not JSON") from None


def _root(document: dict[str, Any]) -> bytes:
    return bytes.fromhex(document["root"])


def check(client: httpx.Client, trusted: str, state: Path) -> Seen:
    """Fetch the newest tree head, check it against the one kept in `state`, and keep it
    there if it is consistent (an inconsistent one is never kept: the evidence stays)."""
    try:
        newest = parse(json.dumps(_get(client, "/api/v1/audit/tree-head")))
    except CheckpointError as exc:
        raise MonitorError(f"the tree head is unusable: {exc}") from None
    if "root" not in newest:
        raise MonitorError("the tree head has no root (format 1)")
    if signature_outcome(newest, trusted) != "ok":
        return Seen("bad_signature", None, newest["sequence"])
    before = _load(state)
    size = newest["sequence"]
    if before is None:
        seen = Seen("first", None, size)
    else:
        old = before["sequence"]
        if size < old:
            return Seen("shrunk", old, size)
        if size == old:
            if before["root"] != newest["root"] or before["hash"] != newest["hash"]:
                return Seen("forked", old, size)
            seen = Seen("unchanged", old, size)
        else:
            answer = _get(client, "/api/v1/audit/consistency", **{"from": old, "to": size})
            try:
                proof = [bytes.fromhex(p) for p in answer["proof"]]
            except (KeyError, TypeError, ValueError):
                raise MonitorError("the consistency proof is unusable") from None
            if not verify_consistency(old, size, _root(before), _root(newest), proof):
                return Seen("forked", old, size)
            seen = Seen("extended", old, size)
    _keep(state, newest)
    return seen


def _load(state: Path) -> dict[str, Any] | None:
    try:
        text = state.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MonitorError(f"cannot read {state}: {exc.strerror}") from None
    try:
        return parse(text)
    except CheckpointError as exc:
        raise MonitorError(f"{state} is not a tree head: {exc}") from None


def _keep(state: Path, document: dict[str, Any]) -> None:
    """Written beside the file and renamed over it: never half a tree head."""
    partial = state.with_name(f".{state.name}.partial")
    try:
        partial.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(partial, state)
    except OSError as exc:
        raise MonitorError(f"cannot write {state}: {exc.strerror}") from None
