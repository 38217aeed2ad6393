"""What DescribeContact tells callguard about a contact once it has ended:

* its successors: the contacts its quick-connect transfers made (`NextContacts`), which
  keep the call alive (CONTRACT.md's end rule);
* its audio recording, found once Connect has written it: the entries of
  `Contact.Recordings[]` with `MediaStreamType` AUDIO and `StorageType` S3 (and not
  DELETED), whose `Location` is `bucket/key` (the `RecordingFinder` of app/calls/completion.py).

A recording's locations are kept as the recording's `media_url`, a JSON list of
`bucket/key` (what the S3 store deletes and streams)."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from app.calls.provider import FoundRecording
from app.platforms.connect.aws import provider_error
from app.platforms.connect.settings import UUID

# An S3 bucket's name (3-63 of lowercase letters, digits, dots, hyphens), then the key.
_LOCATION = re.compile(r"([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([^\x00-\x1f\x7f]{1,1024})")
MEDIA_URL_LENGTH = 500  # recordings.media_url
_ID = re.compile(UUID)


def locations_json(locations: list[str]) -> str | None:
    """The locations as stored; None when they would not fit (they are then read again from
    DescribeContact when needed)."""
    encoded = json.dumps(locations, separators=(",", ":"), ensure_ascii=False)
    return encoded if len(encoded) <= MEDIA_URL_LENGTH else None


def parse_locations(media_url: str | None) -> list[tuple[str, str]] | None:
    """(bucket, key) pairs of a stored media_url; None when none is stored."""
    if not media_url:
        return None
    try:
        values = json.loads(media_url)
    except ValueError:
        return None
    if not isinstance(values, list):
        return None
    return [split(v) for v in values if isinstance(v, str) and _LOCATION.fullmatch(v)]


def split(location: str) -> tuple[str, str]:
    bucket, _, key = location.partition("/")
    return bucket, key


class Contacts:
    def __init__(self, connect: Any, instance_id: str) -> None:
        self.connect = connect
        self.instance_id = instance_id

    def describe(self, contact_id: str) -> dict[str, Any] | None:
        """Connect's record of the contact; None when Connect has none."""
        try:
            contact: dict[str, Any] = self.connect.describe_contact(
                InstanceId=self.instance_id, ContactId=contact_id
            )["Contact"]
        except (ClientError, BotoCoreError) as exc:
            error = provider_error("describe contact", exc)
            if error.not_found:
                return None
            raise error from exc
        return contact

    def successors(self, contact_id: str) -> tuple[str, ...]:
        contact = self.describe(contact_id) or {}
        found = []
        for entry in contact.get("NextContacts") or ():
            data = (entry.get("NextContactMetadata") or {}).get("QuickConnectContactData") or {}
            next_id = data.get("ContactId")
            if isinstance(next_id, str) and _ID.fullmatch(next_id):
                found.append(next_id)
        return tuple(found)

    def audio_locations(self, contact: dict[str, Any]) -> list[str]:
        return [
            entry["Location"]
            for entry in contact.get("Recordings") or ()
            if entry.get("MediaStreamType") == "AUDIO"
            and entry.get("StorageType") == "S3"
            and entry.get("Status", "AVAILABLE") != "DELETED"
            and isinstance(entry.get("Location"), str)
            and _LOCATION.fullmatch(entry["Location"])
        ]

    def find_recording(self, call_sid: str, recording_sid: str) -> FoundRecording | None:
        contact = self.describe(recording_sid)
        if contact is None:
            # Connect has no such contact: there is nothing of it to find, ever.
            return FoundRecording(recording_sid, "absent", None)
        locations = self.audio_locations(contact)
        if not locations:
            return None  # not written yet
        audio = next(
            entry for entry in contact["Recordings"] if entry.get("Location") == locations[0]
        )
        started, stopped = audio.get("StartTimestamp"), audio.get("StopTimestamp")
        duration = None
        if isinstance(started, datetime) and isinstance(stopped, datetime) and stopped >= started:
            duration = int((stopped - started).total_seconds())
        return FoundRecording(
            recording_sid,
            "completed",
            locations_json(locations),
            duration,
            started if isinstance(started, datetime) else None,
        )

    def locations(self, recording_sid: str) -> list[tuple[str, str]]:
        """Where a recording's audio is, from Connect itself (the stored list is preferred:
        Connect describes contacts for 24 months only)."""
        contact = self.describe(recording_sid)
        return [split(v) for v in self.audio_locations(contact)] if contact else []
