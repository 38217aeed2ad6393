"""An in-process telephony platform that behaves like Twilio's call-recording API.

`SimulatedPlatform` holds real state per call and per recording and raises the
`ProviderError` Twilio would answer with; `SimulatorProvider` wraps it as a `Provider`.
The Twilio-compatible fake HTTP server of the tests reuses `SimulatedPlatform`, so the
simulator and the fake cannot drift apart.

Where a behaviour comes from:

* [spec]   Twilio's OpenAPI description of API v2010 (twilio_api_v2010.json).
* [16108]  https://www.twilio.com/docs/api/errors/16108 - "more than one active
           recording for the provided Call SID" when Twilio.CURRENT is used.
* [21220]  https://www.twilio.com/docs/api/errors/21220 - "realtime operation on a Call
           that was not in-progress. Calls that have completed cannot be recorded or
           redirected"; HTTP 400 "Call is not in-progress. Cannot redirect." as quoted in
           github.com/bmlt-enabled/yap/issues/570.
* [20404]  https://www.twilio.com/docs/api/errors/20404 - unknown or deleted SID, 404.
* [rsc]    Recording status callback parameters: twilio.com/docs/voice/twiml/recording and
           twilio.com/docs/voice/api/recording#recordingstatuscallback; absent codes 16101
           (too short) / 16102 (silent) from help.twilio.com "Getting Started with Recording
           Status Callbacks".
* ASSUMED  marks behaviour no public source confirmed; each sits behind a named constant.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable

from app.calls.provider import ProviderError, RecordingInfo, RecordingStatus
from app.platforms.simulator.resources import (
    ACCOUNT_SID,
    API_VERSION,
    CALL_SID,
    CALLBACK_EVENTS,
    CODE_CALL_NOT_IN_PROGRESS,
    CODE_CONCURRENT_RECORDINGS,
    CODE_INVALID_PARAMETER,
    CODE_NOT_FOUND,
    CODE_RECORDING_NOT_ACTIVE,
    CODE_RECORDING_TOO_SHORT,
    DEFAULT_API_BASE_URL,
    LIVE,
    PAUSE_BEHAVIORS,
    TWILIO_CURRENT,
    UPDATE_STATUSES,
    Callback,
    CallState,
    RecordingState,
    SimulatedCall,
    SimulatedRecording,
    new_call_sid,
    new_sid,
    rfc2822,
)
from app.platforms.twilio.errors import error_from_response


def _error(status: int, code: int, message: str) -> ProviderError:
    # Classified as Twilio's own answers are (all of these are 4xx: permanent).
    return error_from_response(status, code, message)


class SimulatedPlatform:
    """Calls and recordings of one account, with Twilio's state machine and callbacks.

    Thread-safe: every public method holds `lock`. Calls are learned lazily (an unknown
    call SID is a live call) unless `auto_register_calls=False`, when `add_call` is
    required and unknown calls get Twilio's 404. Finished recordings put a `Callback`
    into `outbox` for each event they subscribed to; pause/resume send none (Twilio sends
    callbacks for in-progress, completed, absent and failed only [rsc]).
    """

    def __init__(
        self,
        account_sid: str | None = None,
        *,
        auto_register_calls: bool = True,
        clock: Callable[[], float] = time.time,
        api_base_url: str = DEFAULT_API_BASE_URL,
    ) -> None:
        self.account_sid = account_sid or new_sid("AC")
        if not ACCOUNT_SID.match(self.account_sid):
            raise ValueError(f"not an account SID: {self.account_sid!r}")
        self.auto_register_calls = auto_register_calls
        self.api_base_url = api_base_url.rstrip("/")
        self.outbox: queue.Queue[Callback] = queue.Queue()
        self.lock = threading.RLock()
        self._clock = clock
        self._calls: dict[str, CallState] = {}
        self._recordings: dict[str, RecordingState] = {}

    # -- calls ------------------------------------------------------------------------

    def add_call(self, call_sid: str | None = None) -> str:
        """Register a live call (a new SID when none is given) and return its SID."""
        sid = call_sid or new_call_sid()
        if not CALL_SID.match(sid):
            raise ValueError(f"not a call SID: {sid!r}")
        with self.lock:
            now = self._clock()
            self._calls.setdefault(sid, CallState(sid=sid, created=now, updated=now))
        return sid

    def hangup(self, call_sid: str) -> None:
        """End the call; every unfinished recording completes (or is absent), as on Twilio."""
        with self.lock:
            call = self._call(call_sid)
            if call.ended_at is not None:
                return
            now = self._clock()
            call.ended_at = call.updated = now
            for rec in self._recordings.values():
                if rec.call_sid == call_sid and rec.status in LIVE:
                    self._finish(rec, now)

    def call(self, call_sid: str) -> SimulatedCall:
        with self.lock:
            return self._call_snapshot(self._call(call_sid))

    def redirect_call(self, call_sid: str, url: str, method: str = "POST") -> SimulatedCall:
        with self.lock:
            call = self._call(call_sid)
            if call.ended_at is not None:
                # [21220] wording quoted from a real 400 answer.
                raise _error(
                    400, CODE_CALL_NOT_IN_PROGRESS, "Call is not in-progress. Cannot redirect."
                )
            call.url, call.method, call.updated = url, method, self._clock()
            return self._call_snapshot(call)

    # -- recordings -------------------------------------------------------------------

    def create_recording(
        self,
        call_sid: str,
        *,
        status_callback: str | None = None,
        status_callback_method: str = "POST",
        callback_events: Iterable[str] = ("completed",),
        channels: str = "mono",
        track: str = "both",
    ) -> SimulatedRecording:
        """Start recording a live call. Twilio's defaults [spec]: mono, both, POST, and
        only the `completed` event."""
        events = frozenset(callback_events)
        if unknown := events - CALLBACK_EVENTS:
            raise _error(
                400,
                CODE_INVALID_PARAMETER,
                f"Invalid RecordingStatusCallbackEvent: {sorted(unknown)}",
            )
        if channels not in ("mono", "dual"):
            raise _error(400, CODE_INVALID_PARAMETER, f"Invalid RecordingChannels: {channels}")
        if track not in ("inbound", "outbound", "both"):
            raise _error(400, CODE_INVALID_PARAMETER, f"Invalid RecordingTrack: {track}")
        with self.lock:
            call = self._call(call_sid)
            if call.ended_at is not None:
                raise _error(
                    400,
                    CODE_CALL_NOT_IN_PROGRESS,
                    "Call is not in-progress. Cannot create recording.",
                )
            now = self._clock()
            rec = RecordingState(
                sid=new_sid("RE"),
                call_sid=call_sid,
                status=RecordingStatus.IN_PROGRESS,
                channels=2 if channels == "dual" else 1,
                track=track,
                callback_url=status_callback,
                callback_method=status_callback_method,
                callback_events=events,
                created=now,
                updated=now,
                segment_start=now,
            )
            self._recordings[rec.sid] = rec
            self._notify(rec, "in-progress")
            return self._snapshot(rec)

    def update_recording(
        self,
        call_sid: str,
        recording_sid: str,
        status: str,
        *,
        pause_behavior: str | None = None,
    ) -> SimulatedRecording:
        """Pause, resume or stop a live recording; `recording_sid` may be Twilio.CURRENT.

        The answer to a stop says `stopped`; the recording then completes at once (Twilio
        processes it first, which the simulator does instantly) and sends `completed`.
        """
        with self.lock:
            call = self._call(call_sid)
            rec = self._resolve(call, recording_sid)
            if rec.status not in LIVE:
                # ASSUMED, see CODE_RECORDING_NOT_ACTIVE.
                raise _error(
                    400,
                    CODE_RECORDING_NOT_ACTIVE,
                    f"Recording {rec.sid} is {rec.status.value} and cannot be updated.",
                )
            if status not in UPDATE_STATUSES:
                raise _error(
                    400, CODE_INVALID_PARAMETER, f"Invalid Status for a live recording: {status}"
                )
            if pause_behavior is not None and pause_behavior not in PAUSE_BEHAVIORS:
                raise _error(
                    400, CODE_INVALID_PARAMETER, f"Invalid PauseBehavior: {pause_behavior}"
                )
            now = self._clock()
            rec.updated = now
            # ASSUMED: asking for the state a recording is already in succeeds unchanged.
            if status == "paused" and rec.status is RecordingStatus.IN_PROGRESS:
                rec.status = RecordingStatus.PAUSED
                # PauseBehavior defaults to silence [spec]: silence still counts as audio.
                if (pause_behavior or "silence") == "skip":
                    self._close_segment(rec, now)
            elif status == "in-progress" and rec.status is RecordingStatus.PAUSED:
                rec.status = RecordingStatus.IN_PROGRESS
                if rec.segment_start is None:
                    rec.segment_start = now
            elif status == "stopped":
                self._finish(rec, now)
                return self._snapshot(rec, status=RecordingStatus.STOPPED)
            return self._snapshot(rec)

    def fetch_recording(self, recording_sid: str) -> SimulatedRecording:
        with self.lock:
            return self._snapshot(
                self._recording(recording_sid, self._account_recording_uri(recording_sid))
            )

    def fetch_call_recording(self, call_sid: str, recording_sid: str) -> SimulatedRecording:
        with self.lock:
            rec = self._resolve(self._call(call_sid), recording_sid)
            return self._snapshot(rec)

    def list_call_recordings(self, call_sid: str) -> list[SimulatedRecording]:
        with self.lock:
            self._call(call_sid)
            return [self._snapshot(r) for r in self._recordings.values() if r.call_sid == call_sid]

    def delete_recording(self, recording_sid: str) -> None:
        """Remove the recording; a second delete is Twilio's 404.

        ASSUMED: deleting a live recording is allowed and simply drops it, with no callback.
        """
        with self.lock:
            self._recording(recording_sid, self._account_recording_uri(recording_sid))
            del self._recordings[recording_sid]

    def recordings(self, call_sid: str) -> list[RecordingInfo]:
        """The call's recordings, oldest first (no error for an unknown call)."""
        with self.lock:
            return [
                self._snapshot(r).info()
                for r in self._recordings.values()
                if r.call_sid == call_sid
            ]

    def mark_absent(self, recording_sid: str, error_code: int = CODE_RECORDING_TOO_SHORT) -> None:
        """Make the recording end `absent` (16101 too short, 16102 silent [rsc]) instead of
        `completed` when it finishes."""
        with self.lock:
            self._recording(
                recording_sid, self._account_recording_uri(recording_sid)
            ).absent_code = error_code

    # -- internals (callers hold the lock) ---------------------------------------------

    def _call(self, call_sid: str) -> CallState:
        call = self._calls.get(call_sid)
        if call is not None:
            return call
        if self.auto_register_calls and CALL_SID.match(call_sid):
            now = self._clock()
            call = self._calls[call_sid] = CallState(sid=call_sid, created=now, updated=now)
            return call
        uri = f"{self._account_uri()}/Calls/{call_sid}.json"
        raise _error(404, CODE_NOT_FOUND, f"The requested resource {uri} was not found")

    def _recording(self, recording_sid: str, uri: str) -> RecordingState:
        rec = self._recordings.get(recording_sid)
        if rec is None:
            raise _error(404, CODE_NOT_FOUND, f"The requested resource {uri} was not found")
        return rec

    def _account_uri(self) -> str:
        return f"/{API_VERSION}/Accounts/{self.account_sid}"

    def _account_recording_uri(self, recording_sid: str) -> str:
        return f"{self._account_uri()}/Recordings/{recording_sid}.json"

    def _resolve(self, call: CallState, recording_sid: str) -> RecordingState:
        uri = f"{self._account_uri()}/Calls/{call.sid}/Recordings/{recording_sid}.json"
        if recording_sid == TWILIO_CURRENT:
            live = [
                r for r in self._recordings.values() if r.call_sid == call.sid and r.status in LIVE
            ]
            if len(live) > 1:
                raise _error(
                    400,
                    CODE_CONCURRENT_RECORDINGS,
                    "Request failed due to concurrent recordings: more than one active "
                    f"recording for call {call.sid}",
                )
            if not live:
                # ASSUMED: no active recording to refer to is a plain 404.
                raise _error(404, CODE_NOT_FOUND, f"The requested resource {uri} was not found")
            return live[0]
        rec = self._recordings.get(recording_sid)
        if rec is None or rec.call_sid != call.sid:
            raise _error(404, CODE_NOT_FOUND, f"The requested resource {uri} was not found")
        return rec

    def _close_segment(self, rec: RecordingState, now: float) -> None:
        if rec.segment_start is not None:
            rec.recorded += max(0.0, now - rec.segment_start)
            rec.segment_start = None

    def _finish(self, rec: RecordingState, now: float) -> None:
        self._close_segment(rec, now)
        rec.updated = now
        rec.duration = round(rec.recorded)
        if rec.absent_code is not None:
            rec.status, rec.error_code = RecordingStatus.ABSENT, rec.absent_code
            self._notify(rec, "absent")
        else:
            rec.status = RecordingStatus.COMPLETED
            self._notify(rec, "completed")

    def _notify(self, rec: RecordingState, event: str) -> None:
        if rec.callback_url is None or event not in rec.callback_events:
            return
        params = {
            "AccountSid": self.account_sid,
            "CallSid": rec.call_sid,
            "RecordingSid": rec.sid,
            "RecordingUrl": f"{self.api_base_url}{self._account_uri()}/Recordings/{rec.sid}",
            "RecordingStatus": event,
            "RecordingChannels": str(rec.channels),
            "RecordingStartTime": rfc2822(rec.created),
            "RecordingSource": "StartCallRecordingAPI",
            "RecordingTrack": rec.track,
            "ErrorCode": str(rec.error_code or 0),
        }
        if rec.duration is not None:
            params["RecordingDuration"] = str(rec.duration)
        self.outbox.put(Callback(url=rec.callback_url, params=params, method=rec.callback_method))

    def _snapshot(
        self, rec: RecordingState, status: RecordingStatus | None = None
    ) -> SimulatedRecording:
        return SimulatedRecording(
            sid=rec.sid,
            call_sid=rec.call_sid,
            account_sid=self.account_sid,
            status=status or rec.status,
            channels=rec.channels,
            track=rec.track,
            source="StartCallRecordingAPI",
            date_created=rec.created,
            date_updated=rec.updated,
            start_time=rec.created,
            duration=rec.duration,
            error_code=rec.error_code,
        )

    def _call_snapshot(self, call: CallState) -> SimulatedCall:
        return SimulatedCall(
            sid=call.sid,
            account_sid=self.account_sid,
            ended=call.ended_at is not None,
            date_created=call.created,
            date_updated=call.updated,
            end_time=call.ended_at,
            url=call.url,
            method=call.method,
        )
