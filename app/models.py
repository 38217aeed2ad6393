"""The tables. Times are UTC and named *_at; provider ids end in _sid."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base

SID = String(64)
# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both databases (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: callguard stores UTC-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class PolicyVersion(Base):
    """Each distinct policy content, stored once; decisions name its version."""

    __tablename__ = "policy_versions"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    content_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class PolicyActivation(Base):
    """Append-only: the newest row names the active version for every instance."""

    __tablename__ = "policy_activations"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    version: Mapped[int] = mapped_column(ForeignKey("policy_versions.version"))
    activated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_by: Mapped[str] = mapped_column(String(100))


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('agent', 'supervisor', 'governance', 'admin')", name="role"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Call(Base):
    """A call's facts (inputs of the policy engine), its last decision and the state the
    platform last confirmed. The caller's number is not stored here."""

    __tablename__ = "calls"
    __table_args__ = (Index("ix_calls_active", "ended", "agent"),)

    call_sid: Mapped[str] = mapped_column(SID, primary_key=True)
    dialled_number: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), default="initiated")
    status_sequence: Mapped[int] = mapped_column(Integer, default=-1)
    ivr_step: Mapped[int] = mapped_column(Integer, default=0)
    # facts
    department: Mapped[str | None] = mapped_column(String(64))
    queued: Mapped[bool] = mapped_column(Boolean, default=False)
    payment_in_progress: Mapped[bool] = mapped_column(Boolean, default=False)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    non_recorded_line: Mapped[bool] = mapped_column(Boolean, default=False)
    opt_out_stopped: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    ended: Mapped[bool] = mapped_column(Boolean, default=False)
    agent: Mapped[str | None] = mapped_column(String(100))
    transfer_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # Set when a start's answer was lost: no second start until its callback had time.
    start_pending_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # decision and confirmed state
    desired: Mapped[str] = mapped_column(String(12), default="off")
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    policy_version: Mapped[int | None] = mapped_column(ForeignKey("policy_versions.version"))
    recording: Mapped[str] = mapped_column(String(12), default="off")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Recording(Base):
    """One recording segment; it belongs to exactly one department, so its retention is
    unambiguous (a transfer to another recorded department starts a new one)."""

    __tablename__ = "recordings"

    recording_sid: Mapped[str] = mapped_column(SID, primary_key=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid"), index=True)
    department: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    policy_version: Mapped[int | None] = mapped_column(ForeignKey("policy_versions.version"))
    retention: Mapped[str] = mapped_column(String(32))
    media_url: Mapped[str | None] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    destroy_after: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    destroyed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WebhookReceipt(Base):
    """Dedupe keys of applied webhooks, with the response to replay to a duplicate."""

    __tablename__ = "webhook_receipts"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    idempotency_token: Mapped[str | None] = mapped_column(String(200), unique=True)
    path: Mapped[str] = mapped_column(String(100))
    call_sid: Mapped[str | None] = mapped_column(SID, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    response_body: Mapped[str | None] = mapped_column(Text)


class AuditEvent(Base):
    """Append-only. Refers to calls by sid and never holds a phone number."""

    __tablename__ = "audit_events"
    # Never reuse a sequence number on SQLite, even after the newest row is gone.
    __table_args__ = {"sqlite_autoincrement": True}

    sequence: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    call_sid: Mapped[str | None] = mapped_column(SID, index=True)
    recording_sid: Mapped[str | None] = mapped_column(SID, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reasons: Mapped[list[str]] = mapped_column(JSON, default=list)
    policy_version: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the newest event's sequence and hash. Appends lock it, so the chain
    cannot fork; verification compares it with the table (a cut tail shows)."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
