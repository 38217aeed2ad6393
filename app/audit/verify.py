"""Walk the whole chain, streaming (constant memory), and name the first broken link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS, HASHED_FIELDS, event_hash
from app.models import AuditEvent, AuditHead

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


_COLUMNS = [getattr(AuditEvent, name) for name in (*HASHED_FIELDS, "hash")]


def verify_chain(session: Session) -> Verdict:
    """`gap`: a sequence number is missing (reported: the first missing one, including a
    cut tail the head row still remembers); `content_changed`: the row no longer hashes to
    its stored hash; `link_broken`: its prev_hash is not the previous event's hash (a row
    rewritten with a fresh hash breaks the next link)."""
    expected, previous, count = 1, GENESIS, 0
    rows = session.execute(
        select(*_COLUMNS)
        .order_by(AuditEvent.sequence)
        .execution_options(stream_results=True, yield_per=BATCH)
    ).mappings()
    for row in rows:
        if row["sequence"] != expected:
            return Verdict(False, count, expected, "gap")
        if row["prev_hash"] != previous:
            return Verdict(False, count, row["sequence"], "link_broken")
        if event_hash(row) != row["hash"]:
            return Verdict(False, count, row["sequence"], "content_changed")
        previous, expected, count = row["hash"], expected + 1, count + 1
    head = session.execute(select(AuditHead.sequence, AuditHead.hash)).one()
    if head.sequence >= expected:
        return Verdict(False, count, expected, "gap")
    if head.sequence == count and head.hash != previous:
        return Verdict(False, count, head.sequence, "link_broken")
    return Verdict(True, count)
