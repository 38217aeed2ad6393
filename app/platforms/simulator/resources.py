"""Twilio's call-recording API as the simulator speaks it: its constants and error codes,
SIDs and dates in Twilio's formats, and the snapshots of calls, recordings and callbacks
that `SimulatedPlatform` (platform.py) hands out. The sources cited are platform.py's."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from app.calls.provider import RecordingInfo, RecordingStatus

TWILIO_CURRENT = "Twilio.CURRENT"
API_VERSION = "2010-04-01"
DEFAULT_API_BASE_URL = "https://api.twilio.com"

# Twilio error codes the platform answers with.
CODE_NOT_FOUND = 20404  # [20404]
CODE_CONCURRENT_RECORDINGS = 16108  # [16108]
CODE_CALL_NOT_IN_PROGRESS = 21220  # [21220]
# ASSUMED: Twilio's answer to pausing/resuming/stopping a recording that is already
# stopped/completed is not documented; we answer like a realtime operation on an ended
# call (400, 21220), which is what the same request gets once the call has ended.
CODE_RECORDING_NOT_ACTIVE = CODE_CALL_NOT_IN_PROGRESS
# ASSUMED: validation failures use 20001, the code Twilio puts on "Missing required
# parameter X in the post body" (github.com/twilio/twilio-chat-demo-android/issues/147).
CODE_INVALID_PARAMETER = 20001
CODE_RECORDING_TOO_SHORT = 16101  # [rsc]

# The events a RecordingStatusCallbackEvent may name: "Can be: in-progress, completed and
# absent" [spec]; "failed" only exists with recording encryption [rsc].
CALLBACK_EVENTS = frozenset({"in-progress", "completed", "absent", "failed"})
PAUSE_BEHAVIORS = frozenset({"skip", "silence"})  # [spec] description, not its schema
# The statuses a live recording may be moved to [spec] ("Changes the status of the
# recording to paused, stopped, or in-progress"); the schema's enum allows more.
UPDATE_STATUSES = frozenset({"paused", "in-progress", "stopped"})

OPERATIONS = frozenset({"start", "pause", "resume", "stop", "redirect", "fetch", "delete"})

_SID_HEX = r"[0-9a-fA-F]{32}"
CALL_SID = re.compile(rf"^CA{_SID_HEX}$")
RECORDING_SID = re.compile(rf"^RE{_SID_HEX}$")
ACCOUNT_SID = re.compile(rf"^AC{_SID_HEX}$")

LIVE = frozenset({RecordingStatus.IN_PROGRESS, RecordingStatus.PAUSED})


def new_sid(prefix: str) -> str:
    """A SID shaped like Twilio's: two letters and 32 lowercase hex digits."""
    return prefix + secrets.token_hex(16)


def new_call_sid() -> str:
    return new_sid("CA")


def rfc2822(epoch: float) -> str:
    """Twilio's date format in API v2010 and callbacks: 'Fri, 14 Oct 2016 21:56:34 +0000'."""
    return format_datetime(datetime.fromtimestamp(int(epoch), UTC))


@dataclass(frozen=True)
class Callback:
    """One recording status callback, as Twilio would send it to `url`."""

    url: str
    params: dict[str, str]
    method: str = "POST"


@dataclass(frozen=True)
class SimulatedRecording:
    """A recording as the platform reports it at one moment."""

    sid: str
    call_sid: str
    account_sid: str
    status: RecordingStatus
    channels: int
    track: str
    source: str
    date_created: float
    date_updated: float
    start_time: float
    duration: int | None
    error_code: int | None

    def info(self) -> RecordingInfo:
        return RecordingInfo(sid=self.sid, call_sid=self.call_sid, status=self.status)


@dataclass(frozen=True)
class SimulatedCall:
    sid: str
    account_sid: str
    ended: bool
    date_created: float
    date_updated: float
    end_time: float | None
    url: str | None
    method: str | None


@dataclass
class CallState:
    sid: str
    created: float
    ended_at: float | None = None
    updated: float = 0.0
    url: str | None = None
    method: str | None = None


@dataclass
class RecordingState:
    sid: str
    call_sid: str
    status: RecordingStatus
    channels: int
    track: str
    callback_url: str | None
    callback_method: str
    callback_events: frozenset[str]
    created: float
    updated: float
    # Recorded seconds so far, plus the start of the segment being recorded now (None
    # while paused with PauseBehavior=skip, whose pause is left out of the recording).
    recorded: float = 0.0
    segment_start: float | None = None
    duration: int | None = None
    error_code: int | None = None
    absent_code: int | None = None
