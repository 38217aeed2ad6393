"""The audit log's Merkle tree as stored: its head, roots of earlier sizes, and proofs, all
from audit_nodes (app/audit/merkle.py plans them; app/audit/sequencer.py writes the
nodes). Event `sequence` s is leaf s - 1, whose entry is the 32 raw bytes of the event's
hash: the leaf hash is SHA-256(0x00 || bytes.fromhex(hash))."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import merkle
from app.audit.placing import NodeTable
from app.errors import BadRequest
from app.storage.models import AuditHead


@dataclass(frozen=True)
class Head:
    size: int  # events in the log: the newest event's sequence
    hash: str  # the newest event's chain hash (64 zeros when empty)
    root: bytes  # MTH of the `size` events


def head(session: Session) -> Head:
    row = session.execute(select(AuditHead.sequence, AuditHead.hash, AuditHead.root)).one()
    return Head(row.sequence, row.hash, bytes(row.root))


def leaf(event_hash: str) -> bytes:
    return merkle.leaf_hash(bytes.fromhex(event_hash))


def _within(session: Session, size: int) -> None:
    current = head(session).size
    if not 0 <= size <= current:
        raise BadRequest(f"the log holds {current} events: no tree of {size}")


def root_at(session: Session, size: int) -> bytes:
    _within(session, size)
    return merkle.root(NodeTable(session.connection()), size)


def inclusion(session: Session, sequence: int, size: int) -> list[bytes]:
    """The proof that event `sequence` is in the tree of `size` events."""
    _within(session, size)
    if not 1 <= sequence <= size:
        raise BadRequest(f"no event {sequence} in a tree of {size}")
    return merkle.inclusion_proof(NodeTable(session.connection()), sequence - 1, size)


def consistency(session: Session, first: int, second: int) -> list[bytes]:
    """The proof that the tree of `second` events extends the tree of `first`."""
    _within(session, second)
    if not 0 <= first <= second:
        raise BadRequest(f"a tree of {first} events cannot be a prefix of one of {second}")
    return merkle.consistency_proof(NodeTable(session.connection()), first, second)
