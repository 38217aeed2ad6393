"""A recording's audio as it is streamed through our own short-lived route (R4). Each
platform package provides a `MediaSource` for where its platform keeps the audio."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

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
