"""The governance officer's recording search (GET /api/v1/recordings): filters, keyset
paging with an opaque cursor, and each row's days until destruction."""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, literal_column, or_, select
from sqlalchemy.orm import Session, selectinload

from app.calls import views
from app.errors import BadRequest
from app.storage.models import Call, Recording, utcnow

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Filters:
    caller_hash: str | None = None
    department: str | None = None
    held: bool | None = None
    completed_from: datetime | None = None  # inclusive
    completed_before: datetime | None = None  # exclusive


def parse_bound(name: str, value: str | None, *, upper: bool) -> datetime | None:
    """An ISO-8601 date or time; a time without an offset is UTC. A date as `to` means
    the whole of that day (so from=to=2026-12-01 is that one day)."""
    if value is None:
        return None
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime.combine(day, time.min, tzinfo=UTC)
            return start + DAY if upper else start
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"{name} must be an ISO-8601 date (2026-12-01) or time (2026-12-01T09:30:00Z)",
            parameter=name,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    # A time as `to` is inclusive: the exclusive bound is the next microsecond.
    return moment.astimezone(UTC) + (timedelta(microseconds=1) if upper else timedelta())


def encode_cursor(recording: Recording) -> str:
    raw = json.dumps([recording.started_at.isoformat(), recording.recording_sid])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        started, sid = json.loads(raw)
        started_at = datetime.fromisoformat(started)
        if not isinstance(sid, str) or started_at.tzinfo is None:
            raise ValueError(token)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not one this API gave", parameter="cursor") from None
    return started_at, sid


def held_clause(held: bool) -> ColumnElement[bool]:
    """With the 0 written into the SQL, not bound: only then can the planners prove the
    partial index ix_recordings_held (active_holds > 0) applies."""
    zero: ColumnElement[int] = literal_column("0")
    return Recording.active_holds > zero if held else Recording.active_holds == zero


def _query(filters: Filters) -> Select[Recording]:
    query = select(Recording)
    if filters.caller_hash is not None:
        query = query.join(Call, Call.call_sid == Recording.call_sid).where(
            Call.caller_number_hash == filters.caller_hash
        )
    if filters.department is not None:
        query = query.where(Recording.department == filters.department)
    if filters.held is not None:
        query = query.where(held_clause(filters.held))
    if filters.completed_from is not None:
        query = query.where(Recording.completed_at >= filters.completed_from)
    if filters.completed_before is not None:
        # A recording starts before it completes: the same bound on started_at is implied,
        # and lets the (started_at, recording_sid) index start at the right place.
        query = query.where(
            Recording.completed_at < filters.completed_before,
            Recording.started_at < filters.completed_before,
        )
    return query


def search(session: Session, filters: Filters, limit: int, cursor: str | None) -> dict[str, Any]:
    """Newest first by (started_at, recording_sid), both descending. The cursor is the
    last row's key, so rows inserted meanwhile never shift a page (keyset paging)."""
    low, high = filters.completed_from, filters.completed_before
    if low is not None and high is not None and low >= high:
        raise BadRequest("from must be before to", parameter="from")
    query = _query(filters)
    if cursor is not None:
        started_at, sid = decode_cursor(cursor)
        query = query.where(
            Recording.started_at <= started_at,
            or_(
                Recording.started_at < started_at,
                and_(Recording.started_at == started_at, Recording.recording_sid < sid),
            ),
        )
    rows = list(
        session.scalars(
            query.options(selectinload(Recording.holds))
            .order_by(Recording.started_at.desc(), Recording.recording_sid.desc())
            .limit(limit + 1)
        )
    )
    page, more = rows[:limit], len(rows) > limit
    now = utcnow()
    return {
        "items": [search_object(r, now) for r in page],
        "next": encode_cursor(page[-1]) if more else None,
    }


def destroy_in_days(recording: Recording, now: datetime) -> int | None:
    """Whole days until destroy_after, rounded down: negative once it has passed."""
    if recording.destroyed_at is not None or recording.destroy_after is None:
        return None
    return math.floor((recording.destroy_after - now) / DAY)


def search_object(recording: Recording, now: datetime) -> dict[str, Any]:
    return {**views.recording_object(recording), "destroy_in_days": destroy_in_days(recording, now)}
