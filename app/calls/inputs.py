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
    """A new inbound call reached us (its first webhook)."""

    call_sid: str
    dialled: str
    caller: str | None
    delivery: Delivery
    direction: str = "inbound"  # one of the platform's own fixed set


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
    """A recording started (`in-progress`) or ended (`completed`, `absent`, `failed`)."""

    call_sid: str
    recording_sid: str
    status: str
    duration_seconds: int | None
    started_at: datetime | None
    media_url: str | None
    error_code: int | None
    delivery: Delivery


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
