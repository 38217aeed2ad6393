"""With CALLGUARD_PROVIDER=simulator the service hosts a small telephony platform: the
simulator provider answers the REST side, and this sends its status callbacks to our own
webhooks, signed like Twilio's, as the real platform would."""

from __future__ import annotations

import queue
import threading
from email.utils import format_datetime

import httpx
import structlog

from app.platforms.simulator.provider import SimulatorProvider
from app.platforms.simulator.resources import Callback
from app.platforms.twilio.signature import sign
from app.storage.models import utcnow

log = structlog.get_logger(__name__)


def call_completed(account_sid: str, call_sid: str, url: str, sequence: int) -> Callback:
    return Callback(
        url=url,
        params={
            "AccountSid": account_sid,
            "CallSid": call_sid,
            "CallStatus": "completed",
            "SequenceNumber": str(sequence),
            "Timestamp": format_datetime(utcnow()),
            "CallbackSource": "call-progress-events",
        },
    )


class CallbackDispatcher:
    """Delivers the simulator's outbox in order, on one background thread."""

    def __init__(self, provider: SimulatorProvider, token: str) -> None:
        self.provider = provider
        self.token = token
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="simulator-callbacks", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        with httpx.Client(timeout=15) as client:
            while not self._stop.is_set():
                try:
                    callback = self.provider.outbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                self._deliver(client, callback)

    def _deliver(self, client: httpx.Client, callback: Callback) -> None:
        # Like Twilio, retry a failed delivery a few times; duplicates are harmless.
        for attempt in range(3):
            try:
                response = client.post(
                    callback.url,
                    data=callback.params,
                    headers={"X-Twilio-Signature": sign(self.token, callback.url, callback.params)},
                )
                if response.status_code < 500:
                    return
            except httpx.HTTPError as exc:
                log.warning(
                    "simulator_callback_failed", url=callback.url, error=str(exc), attempt=attempt
                )
            self._stop.wait(0.5 * (attempt + 1))
