"""The simulator's REST side, in Twilio's shape (app/platforms/twilio/control.py makes it
callguard's `Provider`, as it does the real Twilio adapter): `SimulatedPlatform`
in-process, with a request log and fault injection for tests and demonstrations."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.calls.provider import ProviderError, RecordingInfo
from app.platforms.simulator.platform import SimulatedPlatform
from app.platforms.simulator.resources import OPERATIONS


@dataclass
class _Fault:
    error: ProviderError
    remaining: int


class SimulatorProvider:
    """The default `Provider`: `SimulatedPlatform` in-process, with a request log and
    fault injection for tests. Callbacks land in `outbox` exactly as Twilio would send
    them; delivering them to callguard's webhook is the caller's business.
    """

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auto_register_calls: bool = True,
        platform: SimulatedPlatform | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.platform = platform or SimulatedPlatform(
            account_sid, auto_register_calls=auto_register_calls, clock=clock
        )
        self.account_sid = self.platform.account_sid
        self.outbox = self.platform.outbox
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._faults: dict[str, list[_Fault]] = {}
        self._lock = threading.Lock()

    # -- test and driver controls ------------------------------------------------------

    def add_call(self, call_sid: str | None = None) -> str:
        return self.platform.add_call(call_sid)

    def hangup(self, call_sid: str) -> None:
        self.platform.hangup(call_sid)

    def recordings(self, call_sid: str) -> list[RecordingInfo]:
        return self.platform.recordings(call_sid)

    def inject_fault(self, operation: str, error: ProviderError, times: int = 1) -> None:
        """Make the next `times` calls of `operation` raise `error` without touching state."""
        if operation not in OPERATIONS:
            raise ValueError(
                f"unknown operation {operation!r}; expected one of {sorted(OPERATIONS)}"
            )
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._faults.setdefault(operation, []).append(_Fault(error, times))

    # -- Provider ----------------------------------------------------------------------

    def start_recording(self, call_sid: str, status_callback: str) -> RecordingInfo:
        self._enter("start", call_sid=call_sid, status_callback=status_callback)
        rec = self.platform.create_recording(
            call_sid,
            status_callback=status_callback,
            status_callback_method="POST",
            callback_events=("in-progress", "completed", "absent"),
            channels="dual",
            track="both",
        )
        return rec.info()

    def pause_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        self._enter("pause", call_sid=call_sid, recording_sid=recording_sid)
        return self.platform.update_recording(
            call_sid, recording_sid, "paused", pause_behavior="skip"
        ).info()

    def resume_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        self._enter("resume", call_sid=call_sid, recording_sid=recording_sid)
        return self.platform.update_recording(call_sid, recording_sid, "in-progress").info()

    def stop_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        self._enter("stop", call_sid=call_sid, recording_sid=recording_sid)
        return self.platform.update_recording(call_sid, recording_sid, "stopped").info()

    def redirect_call(self, call_sid: str, url: str) -> None:
        self._enter("redirect", call_sid=call_sid, url=url)
        self.platform.redirect_call(call_sid, url, "POST")

    def fetch_recording(self, recording_sid: str) -> RecordingInfo:
        self._enter("fetch", recording_sid=recording_sid)
        return self.platform.fetch_recording(recording_sid).info()

    def delete_recording(self, recording_sid: str) -> None:
        self._enter("delete", recording_sid=recording_sid)
        self.platform.delete_recording(recording_sid)

    def _enter(self, operation: str, **args: str) -> None:
        """Log the request, then raise an injected fault if one is pending."""
        with self._lock:
            self.requests.append((operation, args))
            pending = self._faults.get(operation)
            if not pending:
                return
            fault = pending[0]
            fault.remaining -= 1
            if fault.remaining == 0:
                pending.pop(0)
        raise fault.error
