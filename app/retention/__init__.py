"""The governance side (R1-R7): retention and destruction, legal holds and the callers to
be told about them, access for a stated purpose, disclosures."""

from __future__ import annotations

from datetime import datetime


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
