"""Walk the whole log, streaming (constant memory): the chain, naming the first broken link,
then the Merkle tree, whose root must be the one every proof is checked against."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS
from app.audit.merkle import MissingNode, root, root_of
from app.audit.placing import NodeTable
from app.storage.models import AuditHead

Problem = Literal["content_changed", "link_broken", "gap", "tree_mismatch"]
STREAM_CHUNK = 100  # rows per chunk of the PostgreSQL stream: measured fastest


@dataclass(frozen=True)
class Verdict:
    ok: bool
    events: int
    sequence: int | None = None
    problem: Problem | None = None
    last_hash: str | None = None  # of the newest event, when the chain verifies

    def as_dict(self) -> dict[str, Any]:
        if self.ok:
            return {"ok": True, "events": self.events}
        return {"ok": False, "sequence": self.sequence, "problem": self.problem}


# The hashed message (app/audit/chain.py) assembled by the database from the stored
# columns, so that the walk only hashes, on a plain DB-API cursor (no per-row objects of
# the ORM's). SQLite: printf builds the header in one call (cheaper than five `||`).
WALK = {
    "sqlite": "SELECT hash, CAST(printf('%s' || char(10) || '%d' || char(10) || '%s' || char(10)"
    " || '%s' || char(10) || '%s' || char(10), prev_hash, sequence, type, coalesce(call_sid, ''),"
    " coalesce(recording_sid, '')) || CAST(body AS TEXT) AS BLOB)"
    " FROM audit_events ORDER BY sequence",
    "postgresql": "SELECT hash, convert_to(prev_hash || chr(10) || CAST(sequence AS TEXT)"
    " || chr(10) || type || chr(10) || coalesce(call_sid, '') || chr(10)"
    " || coalesce(recording_sid, '') || chr(10), 'UTF8') || body"
    " FROM audit_events ORDER BY sequence",
}


def _chunk() -> int:
    """Chunked rows need libpq 17 (psycopg's binary wheels bundle it); an older libpq
    streams a row at a time, slower but the same."""
    import psycopg

    return STREAM_CHUNK if psycopg.capabilities.has_stream_chunked() else 1


@contextmanager
def _rows(session: Session, walk: dict[str, str] = WALK) -> Iterator[Iterator[Any]]:
    """(hash, message) of every event in order, in constant memory however long the chain.
    PostgreSQL streams the result (the server builds rows while this process hashes; binary
    results, so the bytea arrives as bytes); SQLite's cursor steps through it a row at a
    time. Both are iterated directly: no Python frame per row."""
    raw: Any = session.connection().connection.driver_connection
    postgres = session.get_bind().dialect.name == "postgresql"
    with closing(raw.cursor(binary=True) if postgres else raw.cursor()) as cursor:
        if not postgres:
            yield cursor.execute(walk["sqlite"])
            return
        # A walk that stops early cancels the rest of the stream, which aborts the
        # transaction: the savepoint keeps the session usable afterwards.
        cursor.execute("SAVEPOINT audit_walk")
        try:
            with closing(cursor.stream(walk["postgresql"], size=_chunk())) as stream:
                yield stream
        finally:
            cursor.execute("ROLLBACK TO SAVEPOINT audit_walk")
            cursor.execute("RELEASE SAVEPOINT audit_walk")


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
    # The hot loop: one prefix test, one SHA-256, one comparison per event. The message
    # starts with the event's prev_hash, then its sequence.
    with _rows(session) as rows:
        for stored, message in rows:
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
    return Verdict(True, count, last_hash=previous.decode())


HASHES = dict.fromkeys(("sqlite", "postgresql"), "SELECT hash FROM audit_events ORDER BY sequence")


def _leaves(rows: Iterable[tuple[str]]) -> Iterator[bytes]:
    sha256 = hashlib.sha256
    for (digest,) in rows:
        yield sha256(b"\x00" + bytes.fromhex(digest)).digest()  # merkle.leaf_hash, inlined


def verify_tree(session: Session, chain: Verdict) -> Verdict:
    """After a chain that verifies: the tree recomputed from every event's hash must have
    the root audit_head holds and the root its stored nodes give (what proofs are built
    from). A stored inner node that is wrong cannot prove anything false: a proof through
    it fails against the signed root."""
    if not chain.ok:
        return chain
    with _rows(session, HASHES) as rows:
        size, computed = root_of(_leaves(rows))
    head = session.execute(select(AuditHead.sequence, AuditHead.root)).one()
    try:
        stored = root(NodeTable(session.connection()), size)
    except MissingNode:
        stored = None
    if size != chain.events or computed != bytes(head.root) or computed != stored:
        return Verdict(False, chain.events, None, "tree_mismatch")
    return chain


def verify_log(session: Session) -> Verdict:
    """The chain, then the tree: what `callguard audit verify` and the API report."""
    return verify_tree(session, verify_chain(session))
