"""What a phone platform tells the call-control service, in callguard's own words.

A platform package (app/platforms/<name>/) checks each webhook at its edge, translates it
into one of these and hands it over: the service never sees a platform's field names. Ids,
dedupe keys and ordering ranks come from the platform, which alone knows their formats and
its own order of events. A `Delivery` names one delivery for exactly-once application: the
same key (or the platform's idempotency token) is applied once, and a caller-facing
delivery repeated gets the answer stored for the first."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Delivery:
    key: str
    token: str | None = None


@dataclass(frozen=True)
class CallArrived:
    """A new inbound call reached us (its first webhook). `segment_sid`: its first segment,
    where the platform keeps a call as a chain of them (None: the call is its own)."""

    call_sid: str
    dialled: str
    caller: str | None
    delivery: Delivery
    direction: str = "inbound"  # one of the platform's own fixed set
    segment_sid: str | None = None


@dataclass(frozen=True)
class MenuAnswered:
    """The caller answered menu step `step`: the digits pressed, or None on a timeout."""

    call_sid: str
    step: int
    digits: str | None
    delivery: Delivery


@dataclass(frozen=True)
class CallProgressed:
    """The call moved on at the platform. `status` is one of the platform's own fixed set;
    `rank` orders statuses (a lower rank than the call's is stale), `sequence` orders
    reports of the same rank; `ended` says the call is over. `ranks` is the platform's
    whole order (the call's current status is ranked by it)."""

    call_sid: str
    status: str
    rank: int
    ranks: Mapping[str, int]
    sequence: int
    ended: bool
    occurred_at: datetime | None
    dialled: str | None
    delivery: Delivery


RECORDING_STARTED = "in-progress"
RECORDING_ENDINGS = ("completed", "absent", "failed")


@dataclass(frozen=True)
class RecordingReported:
    """A recording started (`in-progress`) or ended (`completed`, `absent`, `failed`);
    `segment_sid`: the segment it records, where the platform names segments."""

    call_sid: str
    recording_sid: str
    status: str
    duration_seconds: int | None
    started_at: datetime | None
    media_url: str | None
    error_code: int | None
    delivery: Delivery
    segment_sid: str | None = None


@dataclass(frozen=True)
class TransferLegArrived:
    """A call we moved (app/calls/transfers.py) reached the platform's new leg."""

    call_sid: str
    kind: str
    number: int
    department: str
    delivery: Delivery


@dataclass(frozen=True)
class AssignmentOffered:
    """The platform offers the call to a person (`person`: their callguard user name, as
    the platform's worker record names them; None when it does not)."""

    call_sid: str | None
    person: str | None
    delivery: Delivery
    source: str  # what offered it (the audit's `source`), e.g. the platform's router


@dataclass(frozen=True)
class SegmentArrived:
    """A new segment of a call reached callguard's routing: a transfer made at the
    platform (by a person there), into the queue of `department` (the id its queue
    names; None when it names none)."""

    call_sid: str
    segment_sid: str
    previous_sid: str | None
    department: str | None
    delivery: Delivery


@dataclass(frozen=True)
class SegmentProgressed:
    """One segment of a call moved on at the platform. `rank` orders its statuses (one
    not above the segment's current rank is stale); `ended`: the segment is over;
    `successors`: segments the platform says follow it; `person`: the callguard user name
    of the person it was just put through to, when known."""

    call_sid: str
    segment_sid: str
    previous_sid: str | None
    status: str
    rank: int
    ended: bool
    occurred_at: datetime | None
    delivery: Delivery
    successors: tuple[str, ...] = ()
    person: str | None = None
    source: str = "platform"  # the audit's `source` of an assignment it makes
