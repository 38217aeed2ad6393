"""Walk the whole chain, streaming (constant memory), and name the first broken link."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS
from app.models import AuditHead

Problem = Literal["content_changed", "link_broken", "gap"]
BATCH = 2000


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int
    sequence: int | None = None
    problem: Problem | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "events": self.events}
        return {"ok": False, "sequence": self.sequence, "problem": self.problem}


# The hashed message (app/audit/chain.py) assembled by the database from the stored
# columns, so that the walk only hashes, on a plain DB-API cursor (no per-row objects of
# the ORM's).
_FIELDS = (
    "prev_hash || NL || CAST(sequence AS TEXT) || NL || type || NL"
    " || coalesce(call_sid, '') || NL || coalesce(recording_sid, '') || NL"
)
WALK = {
    "sqlite": "SELECT hash, CAST("  # noqa: S608  (constant text, no input)
    + _FIELDS.replace("NL", "char(10)")
    + " || CAST(body AS TEXT) AS BLOB) FROM audit_events ORDER BY sequence",
    "postgresql": "SELECT hash, convert_to("  # noqa: S608
    + _FIELDS.replace("NL", "chr(10)")
    + ", 'UTF8') || body FROM audit_events ORDER BY sequence",
}


def _batches(session: Session) -> Iterator[Sequence[Any]]:
    """(hash, message) of every event in order, a batch at a time; on PostgreSQL through
    a server-side cursor, so memory stays constant however long the chain."""
    raw = session.connection().connection
    dialect = session.get_bind().dialect.name
    # PostgreSQL: binary results, so the bytea arrives as bytes rather than hex text.
    cursor = raw.cursor(name="audit_walk", binary=True) if dialect == "postgresql" else raw.cursor()
    try:
        cursor.execute(WALK[dialect])
        while batch := cursor.fetchmany(BATCH):
            yield batch
    finally:
        cursor.close()


def _sequence(message: bytes) -> int:
    return int(bytes(message[65 : message.index(b"\n", 65)]))


def _broken(count: int, previous: bytes, stored: str, message: bytes) -> Verdict:
    """Name what is wrong with the event after the `count` good ones."""
    expected, sequence = count + 1, _sequence(message)
    if sequence != expected:
        return Verdict(False, count, expected, "gap")
    if not message.startswith(previous):
        return Verdict(False, count, sequence, "link_broken")
    return Verdict(False, count, sequence, "content_changed")


def verify_chain(session: Session) -> Verdict:
    """`gap`: a sequence number is missing (reported: the first missing one, including a
    cut tail the head row still remembers); `content_changed`: the row no longer hashes to
    its stored hash; `link_broken`: its prev_hash is not the previous event's hash (a row
    rewritten with a fresh hash breaks the next link)."""
    sha256 = hashlib.sha256
    previous, count = GENESIS.encode(), 0
    for batch in _batches(session):
        # The hot loop: one prefix test, one SHA-256, one comparison per event. The
        # message starts with the event's prev_hash, then its sequence.
        for stored, message in batch:
            if not message.startswith(previous) or sha256(message).hexdigest() != stored:
                return _broken(count, previous, stored, message)
            previous = stored.encode()
            count += 1
    expected = count + 1
    head = session.execute(select(AuditHead.sequence, AuditHead.hash)).one()
    if head.sequence >= expected:
        return Verdict(False, count, expected, "gap")
    if head.sequence == count and head.hash.encode() != previous:
        return Verdict(False, count, head.sequence, "link_broken")
    return Verdict(True, count)
