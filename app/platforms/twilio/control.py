"""callguard's `Provider` over Twilio's REST API: what is Twilio's own in a recording
command (the recording-status callback URL a start names, the TwiML URL a transfer
redirects the call to) is added here, so the call-control service never builds a URL.

`TwilioApi` is the shape of Twilio's REST side that both the real adapter
(app/platforms/twilio/rest.py) and the simulator (app/platforms/simulator/provider.py)
offer; `TwilioCalls` wraps either."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlencode

from app.calls.provider import RecordingInfo, TransferLeg

RECORDING_STATUS_PATH = "/webhooks/twilio/recording-status"
TRANSFER_PATH = "/webhooks/twilio/transfer"


class TwilioApi(Protocol):
    def start_recording(self, call_sid: str, status_callback: str) -> RecordingInfo:
        """A dual-channel recording with in-progress/completed/absent callbacks."""
        ...

    def pause_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        """With PauseBehavior=skip: nothing of the pause is in the file."""
        ...

    def resume_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo: ...

    def stop_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo: ...

    def redirect_call(self, call_sid: str, url: str) -> None:
        """Make the live call fetch new TwiML from `url`."""
        ...

    def fetch_recording(self, recording_sid: str) -> RecordingInfo: ...

    def delete_recording(self, recording_sid: str) -> None: ...


def webhook_url(public_base_url: str, path: str, **query: object) -> str:
    """A URL of ours as Twilio will call it (and sign it)."""
    base = f"{public_base_url}{path}"
    return f"{base}?{urlencode(query)}" if query else base


def transfer_url(public_base_url: str, leg: TransferLeg) -> str:
    return webhook_url(
        public_base_url,
        TRANSFER_PATH,
        kind=leg.kind,
        transfer=leg.number,
        department=leg.department,
    )


class TwilioCalls:
    """`Provider` for a Twilio-shaped API whose webhooks reach `public_base_url`."""

    def __init__(self, api: TwilioApi, public_base_url: str) -> None:
        self.api = api
        self.public_base_url = public_base_url

    def start_recording(self, call_sid: str, segment_sid: str) -> RecordingInfo:
        # A Twilio call is one segment: its own sid.
        callback = webhook_url(self.public_base_url, RECORDING_STATUS_PATH)
        return self.api.start_recording(call_sid, callback)

    def pause_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self.api.pause_recording(call_sid, recording_sid)

    def resume_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self.api.resume_recording(call_sid, recording_sid)

    def stop_recording(self, call_sid: str, recording_sid: str) -> RecordingInfo:
        return self.api.stop_recording(call_sid, recording_sid)

    def transfer_call(self, call_sid: str, leg: TransferLeg) -> None:
        # Twilio moves the call itself: nothing for a person to do.
        self.api.redirect_call(call_sid, transfer_url(self.public_base_url, leg))

    def fetch_recording(self, recording_sid: str) -> RecordingInfo:
        return self.api.fetch_recording(recording_sid)

    def delete_recording(self, recording_sid: str) -> None:
        self.api.delete_recording(recording_sid)
