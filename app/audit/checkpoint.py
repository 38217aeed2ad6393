"""Signed checkpoints: the chain's head (sequence + hash) at a moment, signed with Ed25519.

The chain alone cannot show a history rewritten wholesale: someone able to write the
database can change an event and re-hash every later one and the head, and the chain
verifies again. A checkpoint exported and kept elsewhere (by an auditor, in a ticket, on
paper) pins the hash the chain had at its sequence; checking it later finds such a
rewrite. The signature shows the checkpoint came from whoever holds
CALLGUARD_AUDIT_SIGNING_KEY, and is checked against a public key the checker trusts.

Document: {"format", "sequence", "hash", "created_at", "public_key", "signature"}; the
signature is over the UTF-8 JSON of the five other fields, keys sorted, separators ","
and ":"; the key and the signature are base64 of their raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.chain import timestamp
from app.audit.verify import Verdict, verify_chain
from app.storage.models import AuditEvent

FORMAT = "callguard-audit-checkpoint-1"
SIGNED_FIELDS = ("format", "sequence", "hash", "created_at", "public_key")
Outcome = Literal["ok", "bad_signature", "untrusted_key", "chain_broken", "missing", "rewritten"]


class CheckpointError(ValueError):
    """A key or a document that cannot be used; the message says which and why."""


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: str, what: str, length: int) -> bytes:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise CheckpointError(f"{what}: not base64") from None
    if len(raw) != length:
        raise CheckpointError(f"{what}: {length} bytes expected, got {len(raw)}")
    return raw


def signing_key(text: str) -> Ed25519PrivateKey:
    """CALLGUARD_AUDIT_SIGNING_KEY: base64 of a 32-byte Ed25519 private key."""
    seed = _unb64(text, "CALLGUARD_AUDIT_SIGNING_KEY", 32)
    return Ed25519PrivateKey.from_private_bytes(seed)


def new_signing_key() -> str:
    """A fresh key, as CALLGUARD_AUDIT_SIGNING_KEY takes it."""
    key = Ed25519PrivateKey.generate()
    return _b64(key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))


def public_key_text(key: Ed25519PrivateKey) -> str:
    return _b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def _signed_bytes(document: Mapping[str, Any]) -> bytes:
    content = {name: document[name] for name in SIGNED_FIELDS}
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")


def make_checkpoint(session: Session, key: Ed25519PrivateKey, now: datetime) -> dict[str, Any]:
    """The signed head of a chain that verifies (a broken chain gets no checkpoint). The
    session should be a read-only snapshot, so that the walk and the head agree."""
    verdict = verify_chain(session)
    if not verdict.ok:
        raise CheckpointError(f"the chain is broken at {verdict.sequence}: {verdict.problem}")
    if verdict.events == 0:
        raise CheckpointError("the chain is empty: nothing to pin")
    document: dict[str, Any] = {
        "format": FORMAT,
        "sequence": verdict.events,
        "hash": verdict.last_hash,
        "created_at": timestamp(now.astimezone(UTC)),
        "public_key": public_key_text(key),
    }
    document["signature"] = _b64(key.sign(_signed_bytes(document)))
    return document


@dataclass(frozen=True)
class Check:
    outcome: Outcome
    sequence: int
    verdict: Verdict | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


def parse(text: str) -> dict[str, Any]:
    """A checkpoint document, with every field present and of its type."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise CheckpointError(f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise CheckpointError("not a JSON object")
    types = {"sequence": int, "signature": str} | {
        name: str for name in SIGNED_FIELDS if name != "sequence"
    }
    for name, kind in types.items():
        value = document.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointError(f"field {name!r} missing or not a {kind.__name__}")
    if document["format"] != FORMAT:
        raise CheckpointError(f"format {document['format']!r} is not {FORMAT!r}")
    return document


def check_checkpoint(session: Session, document: Mapping[str, Any], trusted: str) -> Check:
    """Whether the chain still holds the checkpoint's hash at its sequence, and verifies.
    `trusted` is the public key (base64) the checker trusts, never the document's own."""
    sequence = int(document["sequence"])
    if document["public_key"] != trusted:
        return Check("untrusted_key", sequence)
    public = Ed25519PublicKey.from_public_bytes(_unb64(trusted, "public key", 32))
    try:
        public.verify(_unb64(document["signature"], "signature", 64), _signed_bytes(document))
    except InvalidSignature:
        return Check("bad_signature", sequence)
    verdict = verify_chain(session)
    if not verdict.ok:
        return Check("chain_broken", sequence, verdict)
    stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.sequence == sequence))
    if stored is None:
        return Check("missing", sequence, verdict)
    if stored != document["hash"]:
        return Check("rewritten", sequence, verdict)
    return Check("ok", sequence, verdict)
