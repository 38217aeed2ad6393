"""What the call-control service asks of a phone platform, in callguard's own words: start,
pause, resume and stop one recording, move a live call, and (for retention) look up and
delete a stored recording; and, where the platform reports no recording's end itself, find
a finished one. Each platform package (app/platforms/<name>/) implements these over its own
API; nothing here names a platform.

A call may be a chain of segments at the platform (each transfer a new one, with its own
id): a recording is started on the call's current segment, and one segment is recorded at
most once. A platform whose call is one thing names no segments (the call is its own)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class RecordingStatus(StrEnum):
    """A recording's state as the platform reports it."""

    IN_PROGRESS = "in-progress"
    PAUSED = "paused"
    STOPPED = "stopped"
    COMPLETED = "completed"
    ABSENT = "absent"
    FAILED = "failed"


@dataclass(frozen=True)
class RecordingInfo:
    """The platform's answer about one recording."""

    sid: str
    call_sid: str
    status: RecordingStatus


class ProviderError(Exception):
    """A platform request failed.

    The platform package classifies its own errors: `transient` ones (5xx, timeouts,
    throttling) may succeed if retried, permanent ones (bad request, wrong state) will
    not; `not_attempted` says the platform certainly did nothing (throttled, busy), so
    even a start may be repeated; `not_found` marks a 404, which for a delete means the
    recording is already gone; `call_over` says the call has ended at the platform.
    `code` is the platform's own error code, kept for the audit log.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        code: int | str | None = None,
        not_found: bool = False,
        not_attempted: bool = False,
        call_over: bool = False,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.code = code
        self.not_found = not_found
        self.not_attempted = not_attempted
        self.call_over = call_over


@dataclass(frozen=True)
class TransferLeg:
    """Where a live call is being moved: `kind` is one of TRANSFER_KINDS, `number` counts
    the call's transfers (each leg is applied once), `department` the department id the
    call goes to (or comes back to, from the payment line), `line` the number dialled for
    the non-recorded or payment line."""

    kind: str
    number: int
    department: str
    line: str = ""


class TransferUnsupported(Exception):
    """The platform cannot make this move for callguard: a person must, as the message
    (a sentence for them) says. Nothing was changed."""


@dataclass(frozen=True)
class FoundRecording:
    """A finished recording as the platform stored it: `media_url` says where its audio
    is (in the platform package's own form), None when it is not yet known."""

    recording_sid: str
    status: str  # one of app/calls/inputs.py's RECORDING_ENDINGS
    media_url: str | None
    duration_seconds: int | None = None
    started_at: datetime | None = None


class RecordingFinder(Protocol):
    """For a platform that sends no callback when a recording is finished: once its
    segment has ended, look it up. None: not written yet (asked again later)."""

    def find_recording(self, call_sid: str, recording_sid: str) -> FoundRecording | None: ...


TRANSFER_KINDS = ("department", "non_recorded", "payment", "payment_return")


class RecordingStore(Protocol):
    """Where finished recordings are kept (retention and media need only this)."""

    def fetch_recording(self, recording_sid: str) -> RecordingInfo:
        """Raises ProviderError(not_found=True) when the recording does not exist."""
        ...

    def delete_recording(self, recording_sid: str) -> None:
        """Raises ProviderError(not_found=True) when it was already gone."""
        ...


class Provider(RecordingStore, Protocol):
    """The recording and call operations callguard needs. Every method is synchronous and
    either returns the platform's confirmation or raises ProviderError."""

    def start_recording(self, call_sid: str, segment_sid: str) -> RecordingInfo:
        """Start recording both parties of the call's segment `segment_sid` (the call's own
        sid where the platform names no segments)."""
        ...

    def pause_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        """Pause so that nothing said meanwhile is kept (a platform that can skip leaves
        nothing of the pause in the file; one that can only suspend leaves silence)."""
        ...

    def resume_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo: ...

    def stop_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo: ...

    def transfer_call(self, call_sid: str, leg: TransferLeg) -> str | None:
        """Move the live call: the platform then reports the leg's arrival. Or, where the
        platform leaves the move itself to a person, return what they must now do (the
        call's facts change all the same); raises TransferUnsupported when neither."""
        ...
