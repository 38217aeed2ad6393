"""A recording's audio as it is streamed through our own short-lived route (R4). Each
platform package provides a `MediaSource` for where its platform keeps the audio.

One byte range may be asked for (an audio player seeks, and Safari probes with
`bytes=0-1` before it plays): a platform that can is asked for the same range and its 206
relayed; one that serves bytes itself cuts them (`cut`). Several ranges, another unit or
a malformed header are ignored and the whole recording is sent, as RFC 9110 allows a
server to.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from app.retention.errors import RangeNotSatisfiable

WAV = "audio/x-wav"
CHUNK = 64 * 1024
_RANGE = re.compile(r"bytes=(\d{0,15})-(\d{0,15})")
# Relayed from the platform's answer; anything else it sends stays with us.
RELAYED = ("content-range", "content-length", "accept-ranges")


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
