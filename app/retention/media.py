"""Where a recording's audio comes from, streamed through our own route (R4).

Twilio: `GET {api}/2010-04-01/Accounts/{AccountSid}/Recordings/{RecordingSid}.wav` with
the account's credentials (Twilio's documented media URL; it may redirect to its storage,
and httpx drops the credentials on a redirect to another host). The URL is built from the
settings, never from a stored RecordingUrl, so credentials only go to the configured API.
The simulator: a short silent WAV for a recording it still holds.

One byte range may be asked for (an audio player seeks, and Safari probes with
`bytes=0-1` before it plays): Twilio is asked for the same range and its 206 relayed; the
simulator cuts its WAV. Several ranges, another unit or a malformed header are ignored and
the whole recording is sent, as RFC 9110 allows a server to.
"""

from __future__ import annotations

import io
import re
import wave
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from app.config import Settings
from app.providers.base import Provider, ProviderError
from app.retention.errors import Gone, MediaUnavailable, RangeNotSatisfiable

WAV = "audio/x-wav"
CHUNK = 64 * 1024
_RANGE = re.compile(r"bytes=(\d{0,15})-(\d{0,15})")
# Relayed from the provider's answer; anything else it sends stays with us.
_RELAYED = ("content-range", "content-length", "accept-ranges")


@dataclass(frozen=True)
class Media:
    chunks: Iterator[bytes]
    media_type: str
    close: Callable[[], None]
    status: int = 200  # 206 for a byte range
    headers: dict[str, str] = field(default_factory=dict)


class MediaSource(Protocol):
    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        """`byte_range` from single_range(). Raises Gone when the provider no longer has
        it, RangeNotSatisfiable for a range past its end, MediaUnavailable otherwise."""
        ...


def single_range(header: str | None) -> str | None:
    """The Range header in canonical form when it asks for one byte range (`bytes=0-`,
    `bytes=100-199`, `bytes=-500`), else None: the whole recording is sent."""
    found = _RANGE.fullmatch((header or "").strip().replace(" ", ""))
    if found is None:
        return None
    first, last = found.groups()
    if not first and not last:
        return None
    if first and last and int(last) < int(first):
        return None  # invalid: ignored, as RFC 9110 says
    return f"bytes={int(first) if first else ''}-{int(last) if last else ''}"


def cut(data: bytes, byte_range: str | None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body for `byte_range` of `data` (RFC 9110 §14)."""
    size = len(data)
    whole = {"Accept-Ranges": "bytes", "Content-Length": str(size)}
    if byte_range is None:
        return 200, whole, data
    first_text, last_text = byte_range.removeprefix("bytes=").split("-")
    if not first_text:  # the last N bytes (none: nothing to send)
        first, last = (max(0, size - int(last_text)) if int(last_text) else size), size - 1
    else:
        first, last = int(first_text), min(int(last_text or size - 1), size - 1)
    if first >= size:
        raise RangeNotSatisfiable(size)
    body = data[first : last + 1]
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Range": f"bytes {first}-{last}/{size}",
        "Content-Length": str(len(body)),
    }
    return 206, headers, body


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

    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        client = httpx.Client(timeout=self.timeout, follow_redirects=True, auth=self._auth)
        # identity: the bytes relayed are the bytes Content-Length and Content-Range count.
        headers = {"Accept-Encoding": "identity", **({"Range": byte_range} if byte_range else {})}
        try:
            response = client.send(
                client.build_request("GET", self.url(recording_sid), headers=headers),
                stream=True,
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
        if response.status_code == 416:
            close()
            total = response.headers.get("content-range", "").rpartition("/")[2]
            raise RangeNotSatisfiable(int(total) if total.isdecimal() else None)
        if response.status_code >= 400:
            close()
            raise MediaUnavailable(f"the provider answered {response.status_code}")
        relayed = {k: v for k, v in response.headers.items() if k.lower() in _RELAYED}
        if response.status_code != 206:
            relayed.pop("content-range", None)
        chunks = response.iter_raw(CHUNK)
        if response.headers.get("content-encoding", "identity") != "identity":
            relayed.pop("content-length", None)  # encoded anyway: decoded, so the length is off
            chunks = response.iter_bytes(CHUNK)
        return Media(
            chunks,
            response.headers.get("content-type", WAV),
            close,
            206 if response.status_code == 206 else 200,
            relayed,
        )


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

    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        try:
            self.provider.fetch_recording(recording_sid)
        except ProviderError as exc:
            if exc.not_found:
                raise Gone(f"the provider no longer has recording {recording_sid}") from exc
            raise MediaUnavailable(f"the provider failed: {exc}") from exc
        status, headers, body = cut(silent_wav(), byte_range)
        return Media(iter([body]), WAV, lambda: None, status, headers)


def media_source(settings: Settings, provider: Provider) -> MediaSource:
    if settings.provider == "twilio":
        # Settings refuse the twilio provider without both.
        assert settings.twilio_account_sid is not None
        assert settings.twilio_auth_token is not None
        return TwilioMedia(
            settings.twilio_api_base_url, settings.twilio_account_sid, settings.twilio_auth_token
        )
    return SimulatedMedia(provider)
