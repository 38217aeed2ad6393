"""A subject-access bundle (R5) a caller can receive: one ZIP of every recording's audio
that still exists, summary.html in plain words (app/callers/sar_summary.py) and
subject-access.json, the export exactly as `sar export` prints it.

The archive is written entry by entry to a file the caller gives (the CLI's output, the
API's spooled temporary file) and each recording is copied chunk by chunk from the
platform's media source, so memory stays bounded however many recordings there are.
Audio that is gone (destroyed, or the platform no longer has it) is listed in the summary,
never a failure; a platform that fails otherwise fails the bundle (MediaUnavailable),
since a subject-access answer must not silently lack a recording that exists.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.callers.numbers import NumberVault
from app.callers.sar_summary import Audio, when, write_summary
from app.callers.subject_access import gather
from app.retention.errors import Gone, MediaUnavailable
from app.retention.media import MediaSource
from app.storage.db import unit_of_work
from app.storage.policy_versions import active_policy, policy_version

SUMMARY = "summary.html"
EXPORT = "subject-access.json"
_EXTENSIONS = {"audio/x-wav": "wav", "audio/wav": "wav", "audio/mpeg": "mp3"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Contents:
    """What a bundle holds, counted for its audit event."""

    audio: int  # recordings whose audio is in it
    destroyed: int  # destroyed by us (listed, no audio)
    gone: int  # the platform no longer had them (listed, no audio)
    unfinished: int  # not complete yet: no audio to give

    def detail(self) -> dict[str, int]:
        return {
            "audio": self.audio,
            "destroyed": self.destroyed,
            "gone": self.gone,
            "unfinished": self.unfinished,
        }


def _safe(text: str | None) -> str:
    return _UNSAFE.sub("-", text or "").strip("-.") or "unknown"


def audio_name(recording: dict[str, Any], media_type: str) -> str:
    """recordings/<date>_<department>_<recording id>.<ext>"""
    moment = recording["started_at"] or recording["completed_at"] or ""
    ext = _EXTENSIONS.get(media_type.split(";")[0].strip().lower(), "audio")
    return (
        f"recordings/{_safe(moment[:10])}_{_safe(recording['department'])}_"
        f"{_safe(recording['recording_sid'])}.{ext}"
    )


def _copy_audio(archive: zipfile.ZipFile, recording: dict[str, Any], media: MediaSource) -> Audio:
    sid = recording["recording_sid"]
    stream = media.open(sid)  # Gone / MediaUnavailable go to the caller
    try:
        name = audio_name(recording, stream.media_type)
        # Stored, not deflated: audio compresses little and the server's CPU is shared.
        info = zipfile.ZipInfo(name, date_time=_zip_time(recording))
        info.compress_type = zipfile.ZIP_STORED
        with archive.open(info, "w", force_zip64=True) as entry:
            try:
                for chunk in stream.chunks:
                    entry.write(chunk)
            except Exception as exc:  # the platform's transport failed mid-way
                raise MediaUnavailable(f"the provider failed sending {sid}: {exc}") from exc
    finally:
        stream.close()
    return Audio(file=name)


def _zip_time(recording: dict[str, Any]) -> tuple[int, int, int, int, int, int]:
    moment = recording["started_at"] or recording["completed_at"]
    if not moment:
        return (1980, 1, 1, 0, 0, 0)
    parsed = datetime.fromisoformat(moment)
    return (parsed.year, parsed.month, parsed.day, parsed.hour, parsed.minute, parsed.second)


def department_names(session: Session, export: dict[str, Any]) -> dict[str, str]:
    """Each department's name as the policy its calls were decided under gives it (the
    active policy for one that named none): "Planning", not "planning"."""
    names: dict[str, str] = {}
    active = active_policy(session)
    for call in export["calls"]:
        version = call["policy_version"]
        policy = policy_version(session, version) if version is not None else None
        for id in {call["department"], *(r["department"] for r in call["recordings"])} - {None}:
            for source in (policy, active.policy if active else None):
                found = source.department(id) if source else None
                if found is not None and id not in names:
                    names[id] = found.name
    return names


def write_bundle(
    target: IO[bytes],
    export: dict[str, Any],
    media: MediaSource,
    names: dict[str, str] | None = None,
) -> Contents:
    """Write the ZIP to `target` (seekable or not); the audio first, then what lists it.
    `names`: departments' names for the summary (their ids otherwise)."""
    audio: dict[str, Audio] = {}
    kinds: Counter[str] = Counter()
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for call in export["calls"]:
            for recording in call["recordings"]:
                sid = recording["recording_sid"]
                if recording["destroyed_at"]:
                    kinds["destroyed"] += 1
                    audio[sid] = Audio(
                        None, f"No longer exists: destroyed on {when(recording['destroyed_at'])}."
                    )
                elif recording["status"] != "completed":
                    kinds["unfinished"] += 1
                    audio[sid] = Audio(None, "Not available: the recording had not finished.")
                else:
                    try:
                        audio[sid] = _copy_audio(archive, recording, media)
                        kinds["audio"] += 1
                    except Gone:
                        kinds["gone"] += 1
                        audio[sid] = Audio(
                            None,
                            "No longer exists: the phone platform no longer holds it.",
                            gone=True,
                        )
        with archive.open(SUMMARY, "w") as entry, _text(entry) as text:
            write_summary(text, export, audio, names or {})
        with archive.open(EXPORT, "w") as entry, _text(entry) as text:
            json.dump(export, text, indent=2)  # written piecewise, as `sar export` prints it
            text.write("\n")
    return Contents(kinds["audio"], kinds["destroyed"], kinds["gone"], kinds["unfinished"])


def _text(entry: IO[bytes]) -> io.TextIOWrapper:
    return io.TextIOWrapper(entry, encoding="utf-8", newline="\n", write_through=False)


def bundle(
    sessions: sessionmaker[Session],
    vault: NumberVault,
    media: MediaSource,
    phone: str,
    region: str,
    actor: str,
    target: IO[bytes],
) -> Contents:
    """Gather (a read: no write lock is held while the platform sends audio), write the
    archive, then log `subject_access.exported` with what it holds."""
    with sessions() as session:
        export, detail = gather(session, vault, phone, region)
        names = department_names(session, export)
    contents = write_bundle(target, export, media, names)
    with unit_of_work(sessions) as session:
        audit.append(
            session,
            audit.EventType.SUBJECT_ACCESS_EXPORTED,
            actor=actor,
            detail={**detail, "bundle": contents.detail()},
        )
    return contents
