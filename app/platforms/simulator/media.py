"""The simulator's recordings' audio: a short silent WAV for a recording it still holds."""

from __future__ import annotations

import io
import wave

from app.calls.provider import ProviderError, RecordingStore
from app.retention.errors import Gone, MediaUnavailable
from app.retention.media import WAV, Media, cut


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
    def __init__(self, provider: RecordingStore) -> None:
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
