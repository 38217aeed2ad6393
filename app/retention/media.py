"""Where a recording's audio comes from, streamed through our own route (R4).

Twilio: `GET {api}/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.wav` with
the account's credentials (Twilio's documented media URL; it may redirect to its storage,
and httpx drops the credentials on a redirect to another host). The URL is built from the
settings, never from a stored RecordingUrl, so credentials only go to the configured API.
The simulator: a short silent WAV for a recording it still holds.
"""

from __future__ import annotations

import io
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

import httpx

from app.config import Settings
from app.providers.base import Provider, ProviderError
from app.retention.errors import Gone, MediaUnavailable

WAV = "audio/x-wav"
CHUNK = 64 * 1024


@dataclass(frozen=True)
class Media:
    chunks: Iterator[bytes]
    media_type: str
    close: Callable[[], None]


class MediaSource(Protocol):
    def open(self, recording_sid: str) -> Media:
        """Raises Gone when the provider no longer has it, MediaUnavailable otherwise."""
        ...


class TwilioMedia:
    def __init__(
        self, api_base_url: str, account_sid: str, auth_token: str, timeout: float = 30.0
    ) -> None:
        self.api_base_url = api_base_url.rstrip("/")
        self.account_sid = account_sid
        self._auth = (account_sid, auth_token)
        self.timeout = timeout

    def url(self, recording_sid: str) -> str:
        return (
            f"{self.api_base_url}/2010-04-01/Accounts/{self.account_sid}"
            f"/Recordings/{recording_sid}.wav"
        )

    def open(self, recording_sid: str) -> Media:
        client = httpx.Client(timeout=self.timeout, follow_redirects=True, auth=self._auth)
        try:
            response = client.send(
                client.build_request("GET", self.url(recording_sid)), stream=True
            )
        except httpx.HTTPError as exc:
            client.close()
            raise MediaUnavailable(
                f"the provider could not be reached: {type(exc).__name__}"
            ) from exc

        def close() -> None:
            response.close()
            client.close()

        if response.status_code == 404:
            close()
            raise Gone(f"the provider no longer has recording {recording_sid}")
        if response.status_code >= 400:
            close()
            raise MediaUnavailable(f"the provider answered {response.status_code}")
        return Media(response.iter_bytes(CHUNK), response.headers.get("content-type", WAV), close)


def silent_wav(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """Dual-channel 16-bit silence, shaped like a Twilio dual recording."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0" * (4 * int(seconds * rate)))
    return buffer.getvalue()


class SimulatedMedia:
    def __init__(self, provider: Provider) -> None:
        self.provider = provider

    def open(self, recording_sid: str) -> Media:
        try:
            self.provider.fetch_recording(recording_sid)
        except ProviderError as exc:
            if exc.not_found:
                raise Gone(f"the provider no longer has recording {recording_sid}") from exc
            raise MediaUnavailable(f"the provider failed: {exc}") from exc
        return Media(iter([silent_wav()]), WAV, lambda: None)


def media_source(settings: Settings, provider: Provider) -> MediaSource:
    if settings.provider == "twilio":
        # Settings refuse the twilio provider without both.
        assert settings.twilio_account_sid is not None
        assert settings.twilio_auth_token is not None
        return TwilioMedia(
            settings.twilio_api_base_url, settings.twilio_account_sid, settings.twilio_auth_token
        )
    return SimulatedMedia(provider)
