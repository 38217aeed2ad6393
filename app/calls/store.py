"""Row access for calls, recordings and webhook receipts. Never commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, bindparam, or_, select
from sqlalchemy.orm import Session

from app.storage.driver import NewRow, Sql, stored_time
from app.storage.models import (
    Call,
    CallSegment,
    Recording,
    WebhookReceipt,
    table_of,
    utcnow,
)

ACTIVE_RECORDING = ("in-progress", "paused")
TERMINAL_RECORDING = ("stopped", "completed", "absent", "failed")


# Statements built once: they are on every webhook's path.
_LOCK_CALL = (
    select(Call)
    .where(Call.call_sid == bindparam("sid"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
# Every webhook claims a receipt and keeps its answer: plain values, sent to the driver
# (app/storage/driver.py). A duplicate's key or token conflicts: no row, so None.
_CLAIM_RECEIPT = Sql(
    "INSERT INTO webhook_receipts (dedupe_key, idempotency_token, path, call_sid, received_at)"
    " VALUES (:dedupe_key, :idempotency_token, :path, :call_sid, :received_at)"
    " ON CONFLICT DO NOTHING RETURNING id"
)
_KEEP_RESPONSE = Sql("UPDATE webhook_receipts SET response_body = :body WHERE id = :receipt")


# The call row, created if new: INSERT … ON CONFLICT DO NOTHING with the model's defaults,
# sent to the driver (app/storage/driver.py).
_NEW_CALL = NewRow(table_of(Call), "call_sid")


def insert_call(connection: Connection, row: dict[str, Any]) -> bool:
    """Insert the call `row` (its other columns the model's defaults) unless the call
    exists; whether it was inserted."""
    return _NEW_CALL.run(connection, row)


def lock_call(session: Session, call_sid: str, **defaults: Any) -> Call:
    """The call row, created if new, locked for the rest of the transaction so that
    changes to one call are serialised across processes (SQLite: BEGIN IMMEDIATE already
    holds the database's single write lock)."""
    insert_call(session.connection(), {"call_sid": call_sid, **defaults})
    return session.scalars(_LOCK_CALL, {"sid": call_sid}).one()


def find_call(session: Session, call_sid: str, *, lock: bool = False) -> Call | None:
    query = select(Call).where(Call.call_sid == call_sid)
    if lock:
        query = query.with_for_update()
    return session.scalars(query).one_or_none()


def live(session: Session, call: Call) -> bool:
    """Whether the call's current segment can still be recorded: not known to have ended
    (a call without segments is its own)."""
    if call.segment_sid is None:
        return True
    segment = session.get(CallSegment, call.segment_sid)
    return segment is None or not segment.ended


def segment_of(
    session: Session, call: Call, segment_sid: str, previous_sid: str | None, status: str
) -> CallSegment:
    """The call's segment, created (with `status`, unranked) when first heard of."""
    segment = session.get(CallSegment, segment_sid)
    if segment is None:
        segment = CallSegment(
            segment_sid=segment_sid,
            call_sid=call.call_sid,
            previous_sid=previous_sid,
            status=status,
            rank=-1,
            ended=False,
        )
        session.add(segment)
    elif segment.previous_sid is None:
        segment.previous_sid = previous_sid
    return segment


def recordings_of(session: Session, call_sid: str) -> list[Recording]:
    return list(
        session.scalars(
            select(Recording).where(Recording.call_sid == call_sid).order_by(Recording.started_at)
        )
    )


def claim_receipt(
    session: Session, key: str, token: str | None, path: str, call_sid: str | None
) -> int | None:
    """Record a webhook delivery; returns the receipt's id. None when this key (or
    the platform's idempotency token) was already applied: the caller then replays the stored
    response instead. A concurrent duplicate waits on the unique index until the first
    commits, then gets None."""
    connection = session.connection()
    claimed = _CLAIM_RECEIPT.run(
        connection,
        {
            "dedupe_key": key,
            "idempotency_token": token,
            "path": path,
            "call_sid": call_sid,
            "received_at": stored_time(connection, utcnow()),
        },
    ).fetchall()  # stepped to its end: SQLite commits no statement still running
    return claimed[0][0] if claimed else None


def keep_response(session: Session, receipt: int, body: str) -> None:
    """Store the answer, so that a duplicate delivery gets the same one."""
    _KEEP_RESPONSE.run(session.connection(), {"receipt": receipt, "body": body})


def stored_response(session: Session, key: str, token: str | None) -> str | None:
    conditions = [WebhookReceipt.dedupe_key == key]
    if token:
        conditions.append(WebhookReceipt.idempotency_token == token)
    receipt = session.scalars(select(WebhookReceipt).where(or_(*conditions)).limit(1)).first()
    return receipt.response_body if receipt else None
