"""Connect's recordings in S3: retention's `RecordingStore` and the `MediaSource` of our
short-lived media links.

A recording's objects are where DescribeContact said (`media_url`, a JSON list of
`bucket/key`, read from callguard's own database; Connect's answer when none is stored).

* delete: every version and every delete marker of each object, by version id (a plain
  DeleteObject on a versioned bucket only hides the audio behind a marker);
* fetch (retention's proof): still present while any version or delete marker of an
  object is listed, or HeadObject finds it; gone (not_found) only when none is listed and
  HeadObject answers 404. Anything else S3 answers keeps the recording due;
* open: the newest version of the first object, one byte range relayed as S3 gives it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy import select

from app.calls.provider import ProviderError, RecordingInfo, RecordingStatus
from app.platforms.connect.aws import provider_error
from app.platforms.connect.contacts import Contacts, parse_locations
from app.retention.errors import Gone, MediaUnavailable, RangeNotSatisfiable
from app.retention.media import CHUNK, WAV, Media
from app.storage.db import make_engine, read_only_session
from app.storage.models import Recording


class Locations:
    """Where a recording's audio is: its stored media_url, else Connect's answer."""

    def __init__(self, database_url: str, contacts: Contacts) -> None:
        self.database_url = database_url
        self.contacts = contacts
        self._engine: Any = None

    def of(self, recording_sid: str) -> list[tuple[str, str]]:
        if self._engine is None:
            # Retention and media only: a small pool of its own.
            self._engine = make_engine(self.database_url, pool_size=1, max_overflow=3)
        with read_only_session(self._engine) as session:
            stored = session.scalar(
                select(Recording.media_url).where(Recording.recording_sid == recording_sid)
            )
        found = parse_locations(stored)
        return found if found is not None else self.contacts.locations(recording_sid)


class S3Recordings:
    def __init__(self, s3: Any, locations: Locations) -> None:
        self.s3 = s3
        self.locations = locations

    # -- RecordingStore ----------------------------------------------------------------

    def delete_recording(self, recording_sid: str) -> None:
        for bucket, key in self.locations.of(recording_sid):
            for version in self._versions(bucket, key):
                try:
                    self.s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
                except (ClientError, BotoCoreError) as exc:
                    raise provider_error(f"delete s3://{bucket}/{key} version", exc) from exc

    def fetch_recording(self, recording_sid: str) -> RecordingInfo:
        left = []
        for bucket, key in self.locations.of(recording_sid):
            versions = self._versions(bucket, key)
            if versions or self._head(bucket, key):
                left.append(f"s3://{bucket}/{key} ({len(versions)} versions or markers)")
        if left:
            return RecordingInfo(recording_sid, "", RecordingStatus.COMPLETED)
        raise ProviderError(
            "no version or delete marker left, HeadObject 404",
            transient=False,
            status=404,
            code="NoSuchKey",
            not_found=True,
        )

    # -- MediaSource ---------------------------------------------------------------------

    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        try:
            places = self.locations.of(recording_sid)
        except ProviderError as exc:
            raise MediaUnavailable(f"Amazon Connect could not be asked: {exc}") from exc
        if not places:
            raise Gone(f"no audio is stored for recording {recording_sid}")
        bucket, key = places[0]
        extra = {"Range": byte_range} if byte_range else {}
        try:
            answer = self.s3.get_object(Bucket=bucket, Key=key, **extra)
        except ClientError as exc:
            error = provider_error("get object", exc)
            if error.not_found:
                raise Gone(f"S3 no longer has recording {recording_sid}") from exc
            if error.status == 416 or error.code == "InvalidRange":
                raise RangeNotSatisfiable(self._size(bucket, key)) from exc
            raise MediaUnavailable(f"S3 answered {error.status} {error.code}") from exc
        except BotoCoreError as exc:
            raise MediaUnavailable(f"S3 could not be reached: {type(exc).__name__}") from exc
        body = answer["Body"]
        headers = {"Accept-Ranges": "bytes", "Content-Length": str(answer["ContentLength"])}
        if answer.get("ContentRange"):
            headers["Content-Range"] = answer["ContentRange"]

        def chunks() -> Iterator[bytes]:
            yield from body.iter_chunks(CHUNK)

        return Media(
            chunks(),
            answer.get("ContentType") or WAV,
            body.close,
            206 if answer.get("ContentRange") else 200,
            headers,
        )

    # -- S3 --------------------------------------------------------------------------------

    def _versions(self, bucket: str, key: str) -> list[str]:
        """Every version id and delete-marker id of exactly this key."""
        found: list[str] = []
        try:
            pages = self.s3.get_paginator("list_object_versions").paginate(
                Bucket=bucket, Prefix=key
            )
            for page in pages:
                for entry in (*page.get("Versions", ()), *page.get("DeleteMarkers", ())):
                    if entry.get("Key") == key:
                        found.append(entry.get("VersionId") or "null")
        except (ClientError, BotoCoreError) as exc:
            raise provider_error(f"list versions of s3://{bucket}/{key}", exc) from exc
        return found

    def _head(self, bucket: str, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            error = provider_error(f"head s3://{bucket}/{key}", exc)
            if error.not_found:
                return False
            raise error from exc
        except BotoCoreError as exc:
            raise provider_error(f"head s3://{bucket}/{key}", exc) from exc
        return True

    def _size(self, bucket: str, key: str) -> int | None:
        try:
            size = self.s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
        except (ClientError, BotoCoreError):
            return None
        return int(size)
