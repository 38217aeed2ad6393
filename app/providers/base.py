"""What callguard asks of a telephony platform, and the errors it can answer with."""

from __future__ import annotations

from dataclasses import dataclass
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

    `transient` errors (5xx, timeouts, 429/20429, 16114) may succeed if retried;
    permanent ones (bad request, wrong state) will not. `not_found` marks a 404,
    which for a delete means the recording is already gone.
    """

    def __init__(
        self,
        message: str,
        *,
        transient: bool,
        status: int | None = None,
        code: int | None = None,
        not_found: bool = False,
    ) -> None:
        super().__init__(message)
        self.transient = transient
        self.status = status
        self.code = code
        self.not_found = not_found


TRANSIENT_CODES = frozenset({20429, 16114})  # Twilio's "too many requests", "try again"


def error_from_response(status: int, code: int | None, message: str) -> ProviderError:
    """Classify a Twilio error answer (the adapter's, and the simulator's injected ones):
    5xx, 429, 20429 and 16114 may pass if retried; a 404 means not found."""
    transient = status >= 500 or status == 429 or code in TRANSIENT_CODES
    return ProviderError(
        message, transient=transient, status=status, code=code, not_found=status == 404
    )


class Provider(Protocol):
    """The recording and call operations callguard needs. Every method is synchronous and
    either returns the platform's confirmation or raises ProviderError."""

    def start_recording(self, call_sid: str, status_callback: str) -> RecordingInfo:
        """Start a dual-channel recording of the call, with in-progress/completed/absent
        callbacks to `status_callback`."""
        ...

    def pause_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        """Pause with PauseBehavior=skip, so nothing of the pause is in the recording."""
        ...

    def resume_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo: ...

    def stop_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo: ...

    def redirect_call(self, call_sid: str, url: str) -> None:
        """Make the live call fetch new TwiML from `url` (used for transfers)."""
        ...

    def fetch_recording(self, recording_sid: str) -> RecordingInfo:
        """Raises ProviderError(not_found=True) when the recording does not exist."""
        ...

    def delete_recording(self, recording_sid: str) -> None:
        """Raises ProviderError(not_found=True) when it was already gone."""
        ...
