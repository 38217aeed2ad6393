"""Signed checkpoints (signed tree heads): the log's head at a moment — its size, the
newest event's chain hash and the Merkle tree's root — signed with Ed25519.

The chain alone cannot show a history rewritten wholesale: someone able to write the
database can change an event and re-hash every later one and the head, and the chain
verifies again. A checkpoint exported and kept elsewhere (by an auditor, in a ticket, on
paper) pins the hash the chain had at its sequence; checking it later finds such a
rewrite. The signature shows the checkpoint came from whoever holds
CALLGUARD_AUDIT_SIGNING_KEY, and is checked against a public key the checker trusts.

The tree root makes a checkpoint a signed tree head in RFC 9162's sense: an inclusion
proof shows one event is among its `sequence` events, and a consistency proof that a
later head extends it (app/audit/tree.py), with no database in the checker's hands.

Document (format 2): {"format", "sequence", "hash", "root", "created_at", "public_key",
"signature"}: `sequence` is the tree size, `root` the tree's root in lowercase hex; the
signature is over the UTF-8 JSON of the six other fields, keys sorted, separators ","
and ":"; the key and the signature are base64 of their raw bytes. Format 1 (before the
tree) has no `root`, and is still checked.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
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

from app.audit import tree
from app.audit.chain import timestamp
from app.audit.verify import Verdict, verify_log
from app.storage.models import AuditEvent

FORMAT = "callguard-audit-checkpoint-2"
FORMAT_1 = "callguard-audit-checkpoint-1"
SIGNED_FIELDS = ("format", "sequence", "hash", "root", "created_at", "public_key")
SIGNED_FIELDS_1 = ("format", "sequence", "hash", "created_at", "public_key")
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
    fields = SIGNED_FIELDS_1 if document["format"] == FORMAT_1 else SIGNED_FIELDS
    content = {name: document[name] for name in fields}
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode("utf-8")


def signed_head(head: tree.Head, key: Ed25519PrivateKey, now: datetime) -> dict[str, Any]:
    """The signed document of a head as it stands."""
    document: dict[str, Any] = {
        "format": FORMAT,
        "sequence": head.size,
        "hash": head.hash,
        "root": head.root.hex(),
        "created_at": timestamp(now.astimezone(UTC)),
        "public_key": public_key_text(key),
    }
    document["signature"] = _b64(key.sign(_signed_bytes(document)))
    return document


def make_checkpoint(session: Session, key: Ed25519PrivateKey, now: datetime) -> dict[str, Any]:
    """The signed head of a log that verifies (a broken log gets no checkpoint). The
    session should be a read-only snapshot, so that the walk and the head agree."""
    verdict = verify_log(session)
    if not verdict.ok:
        raise CheckpointError(f"the chain is broken at {verdict.sequence}: {verdict.problem}")
    if verdict.events == 0:
        raise CheckpointError("the chain is empty: nothing to pin")
    return signed_head(tree.head(session), key, now)


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
    if document.get("format") not in (FORMAT, FORMAT_1):
        raise CheckpointError(f"format {document.get('format')!r} is not {FORMAT!r}")
    fields = SIGNED_FIELDS_1 if document["format"] == FORMAT_1 else SIGNED_FIELDS
    types = {"sequence": int, "signature": str} | {
        name: str for name in fields if name != "sequence"
    }
    for name, kind in types.items():
        value = document.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise CheckpointError(f"field {name!r} missing or not a {kind.__name__}")
    if document["sequence"] < 0:
        raise CheckpointError("field 'sequence' is negative")
    if "root" in fields and not re.fullmatch(r"[0-9a-f]{64}", document["root"]):
        raise CheckpointError("field 'root' is not 64 lowercase hex digits")
    return document


def signature_outcome(
    document: Mapping[str, Any], trusted: str
) -> Literal["ok", "untrusted_key", "bad_signature"]:
    """Whether a parsed document is signed by `trusted` (base64), never its own key."""
    if document["public_key"] != trusted:
        return "untrusted_key"
    public = Ed25519PublicKey.from_public_bytes(_unb64(trusted, "public key", 32))
    try:
        public.verify(_unb64(document["signature"], "signature", 64), _signed_bytes(document))
    except (InvalidSignature, CheckpointError):  # a signature that is not even 64 bytes
        return "bad_signature"
    return "ok"


def check_checkpoint(session: Session, document: Mapping[str, Any], trusted: str) -> Check:
    """Whether the chain still holds the checkpoint's hash at its sequence, and verifies.
    `trusted` is the public key (base64) the checker trusts, never the document's own."""
    sequence = int(document["sequence"])
    signature = signature_outcome(document, trusted)
    if signature != "ok":
        return Check(signature, sequence)
    verdict = verify_log(session)
    if not verdict.ok:
        return Check("chain_broken", sequence, verdict)
    stored = session.scalar(select(AuditEvent.hash).where(AuditEvent.sequence == sequence))
    if stored is None:
        return Check("missing", sequence, verdict)
    if stored != document["hash"]:
        return Check("rewritten", sequence, verdict)
    if "root" in document and tree.root_at(session, sequence).hex() != document["root"]:
        return Check("rewritten", sequence, verdict)
    return Check("ok", sequence, verdict)
