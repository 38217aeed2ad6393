"""The tables. Times are UTC and named *_at; provider ids end in _sid."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    TypeDecorator,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.audit.chain import parse_time
from app.storage.db import Base

SID = String(64)
# SQLite only autoincrements an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC on both databases (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True
    is_utc_time = True  # app/storage/driver.py stores it as this does

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


def table_of(model: type[Base]) -> Table:
    """The model's Core table, for hot paths where the ORM's bulk machinery costs more
    than the statement itself."""
    return cast(Table, model.__table__)


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
    platform last confirmed. The caller's number is only stored sealed (app/numbers.py)."""

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
    # The platform's id of the call's current segment, where a new recording starts (a
    # platform whose call is a chain of segments); None where the call is its own.
    segment_sid: Mapped[str | None] = mapped_column(SID)
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
    # The caller's number (R5, R6, S3): AES-GCM under a per-call data key, that key wrapped
    # under CALLGUARD_NUMBER_KEY (key id: which one), and a keyed hash of the E.164 number
    # for subject access. Erasing the wrapped key and the hash makes the number unrecoverable.
    caller_number_ciphertext: Mapped[bytes | None] = mapped_column(LargeBinary)
    caller_number_wrapped_key: Mapped[bytes | None] = mapped_column(LargeBinary)
    caller_number_key_id: Mapped[str | None] = mapped_column(String(16))
    caller_number_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    number_erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Recording(Base):
    """One recording segment; it belongs to exactly one department, so its retention is
    unambiguous (a transfer to another recorded department starts a new one)."""

    __tablename__ = "recordings"
    # The retention run's selection: not destroyed, destroy_after passed; the fingerprint
    # pass's: not destroyed, not yet fingerprinted; the governance search's pages, newest
    # first, by department, by hold and by completion (app/retention/search.py).
    __table_args__ = (
        Index("ix_recordings_due", "destroyed_at", "destroy_after"),
        Index("ix_recordings_unfingerprinted", "fingerprinted_at", "destroyed_at"),
        Index("ix_recordings_started", "started_at", "recording_sid"),
        Index("ix_recordings_department_started", "department", "started_at", "recording_sid"),
        Index(
            "ix_recordings_held",
            "started_at",
            "recording_sid",
            sqlite_where=text("active_holds > 0"),
            postgresql_where=text("active_holds > 0"),
        ),
        # The overview's held and overdue: without it SQLite walks every overdue row.
        Index(
            "ix_recordings_held_due",
            "destroyed_at",
            "destroy_after",
            sqlite_where=text("active_holds > 0"),
            postgresql_where=text("active_holds > 0"),
        ),
        Index("ix_recordings_completed", "completed_at"),
    )

    recording_sid: Mapped[str] = mapped_column(SID, primary_key=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid"), index=True)
    # The segment of the call it records (None: the whole call); its end ends this.
    segment_sid: Mapped[str | None] = mapped_column(SID, index=True)
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
    # Unreleased legal holds, kept on the row itself so that a retention claim re-checks it
    # under the row lock (a hold placed concurrently is never missed).
    active_holds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A retention worker's lease: no transaction stays open while the provider deletes.
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Its audio's SHA-256 and length, taken once after completion (app/retention/
    # fingerprints.py) under a lease of its own, and re-checked when the whole is served.
    fingerprint_sha256: Mapped[str | None] = mapped_column(String(64))
    fingerprint_bytes: Mapped[int | None] = mapped_column(BigInteger)
    fingerprinted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fingerprint_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    holds: Mapped[list[LegalHold]] = relationship(
        viewonly=True, order_by="LegalHold.id", lazy="select"
    )


class CallSegment(Base):
    """One segment of a call that the platform keeps as a chain (each transfer a new one).
    The call ends when its last known segment has ended (app/calls/segments.py)."""

    __tablename__ = "call_segments"

    segment_sid: Mapped[str] = mapped_column(SID, primary_key=True)
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid"), index=True)
    previous_sid: Mapped[str | None] = mapped_column(SID)
    status: Mapped[str] = mapped_column(String(32))  # the platform's own, from its fixed set
    rank: Mapped[int] = mapped_column(Integer, default=-1)  # never moves backwards
    ended: Mapped[bool] = mapped_column(Boolean, default=False)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
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
    """Append-only. Refers to calls by sid and never holds a phone number. `body` is the
    hashed content (app/audit/chain.py); the other columns are what events are found by,
    and are hashed too."""

    __tablename__ = "audit_events"
    # Never reuse a sequence number on SQLite, even after the newest row is gone. Events
    # of one type, newest first: the last retention run, failed deletions.
    __table_args__ = (
        Index("ix_audit_events_type", "type", "sequence"),
        {"sqlite_autoincrement": True},
    )

    sequence: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    call_sid: Mapped[str | None] = mapped_column(SID, index=True)
    recording_sid: Mapped[str | None] = mapped_column(SID, index=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    body: Mapped[bytes] = mapped_column(LargeBinary)

    @cached_property
    def content(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.body)
        return loaded

    @property
    def actor(self) -> str:
        return str(self.content["actor"])

    @property
    def occurred_at(self) -> datetime:
        return parse_time(self.content["occurred_at"])

    @property
    def received_at(self) -> datetime:
        return parse_time(self.content["received_at"])

    @property
    def reasons(self) -> list[str]:
        return list(self.content["reasons"])

    @property
    def policy_version(self) -> int | None:
        version: int | None = self.content["policy_version"]
        return version

    @property
    def detail(self) -> dict[str, Any]:
        return dict(self.content["detail"])


class AuditHead(Base):
    """One row: the newest event's sequence and hash, and the root of the Merkle tree of
    the `sequence` events (app/audit/merkle.py). Only the sequencer moves it, holding the
    sequencing lock (app/audit/sequencer.py), so the log cannot fork; verification
    compares it with the table (a cut tail shows)."""

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    sequence: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))
    root: Mapped[bytes] = mapped_column(LargeBinary)


class AuditNode(Base):
    """Append-only: the hash of each complete perfect subtree of the audit log's Merkle
    tree; (level, position) covers leaves [position * 2**level, (position + 1) * 2**level).
    Leaf i (level 0) is SHA-256(0x00 || the 32 raw bytes of event i+1's hash). Written with
    the events, in the sequencer's transaction; proofs read only these."""

    __tablename__ = "audit_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    position: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary)


class AuditPending(Base):
    """Events committed by a transaction that did not hold the sequencing lock, waiting
    for the sequencer to give them their place (in `id` order); deleted as they are."""

    __tablename__ = "audit_pending"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime)
    type: Mapped[str] = mapped_column(String(64))
    call_sid: Mapped[str | None] = mapped_column(SID)
    recording_sid: Mapped[str | None] = mapped_column(SID)
    body: Mapped[bytes] = mapped_column(LargeBinary)


class LegalHold(Base):
    """A legal hold (R2): while any hold on a recording is unreleased it is never destroyed."""

    __tablename__ = "legal_holds"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recording_sid: Mapped[str] = mapped_column(ForeignKey("recordings.recording_sid"), index=True)
    case_reference: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    placed_by: Mapped[str] = mapped_column(String(100))
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_by: Mapped[str | None] = mapped_column(String(100))
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """A caller to be told something (R7); closed only with how and when they were told."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    call_sid: Mapped[str] = mapped_column(ForeignKey("calls.call_sid"), index=True)
    recording_sid: Mapped[str | None] = mapped_column(ForeignKey("recordings.recording_sid"))
    hold_id: Mapped[int | None] = mapped_column(ForeignKey("legal_holds.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    done_by: Mapped[str | None] = mapped_column(String(100))
    method: Mapped[str | None] = mapped_column(String(100))
    told_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(Text)


class RecordingAccess(Base):
    """A retrieval for a stated purpose (R4); its media token is stored only as a SHA-256."""

    __tablename__ = "recording_accesses"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recording_sid: Mapped[str] = mapped_column(ForeignKey("recordings.recording_sid"), index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    accessed_by: Mapped[str] = mapped_column(String(100))
    accessed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    # Fetches made with the media link so far (at most MEDIA_FETCH_LIMIT: app/retention/access.py).
    fetches: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Disclosure(Base):
    """A recording shared with another organisation under a data sharing agreement (R4)."""

    __tablename__ = "disclosures"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    recording_sid: Mapped[str] = mapped_column(ForeignKey("recordings.recording_sid"), index=True)
    recipient: Mapped[str] = mapped_column(String(200))
    agreement_reference: Mapped[str] = mapped_column(String(100))
    sensitive: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_reference: Mapped[str | None] = mapped_column(String(100))
    legal_basis: Mapped[str | None] = mapped_column(Text)
    disclosed_by: Mapped[str] = mapped_column(String(100))
    disclosed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
