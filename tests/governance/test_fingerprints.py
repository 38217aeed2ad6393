"""Issue 16 item 3: recording fingerprints. A completed recording's audio is hashed by the
background pass (never on the webhook's path), once, even with passes racing; audio the
platform says is gone, or fails to serve, is retried and never faked; a whole recording
served through the media route is re-checked, a mismatch being an alert event, a metric
and an error log."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import update

from app.calls.provider import ProviderError
from app.main import create_app
from app.platforms.simulator.media import silent_wav
from app.retention.errors import Gone
from app.retention.fingerprints import Fingerprinter
from app.retention.media import WAV as WAV_TYPE
from app.retention.media import Media, MediaSource
from app.runtime.services import Services
from app.storage.db import unit_of_work
from app.storage.models import Recording, utcnow
from tests.factories import DEFAULT_CALLER, Platform, captured_logs
from tests.governance.conftest import (
    CONTACT_HARLOW,
    People,
    completed_call,
    events,
    queue_call_from,
    recording,
    seed_due,
    years_later,
)
from tests.governance.test_media_link import link

AUDIO = silent_wav()
SHA = hashlib.sha256(AUDIO).hexdigest()
FINGERPRINTED = "recording.fingerprinted"
MISMATCH = "recording.fingerprint_mismatch"
MISMATCH_METRIC = "callguard_fingerprint_mismatches_total"


def mismatches_counted() -> float:
    return REGISTRY.get_sample_value(MISMATCH_METRIC) or 0.0


class CountingMedia:
    """The real media source, each open counted and slowed, so racing passes overlap."""

    def __init__(self, inner: MediaSource, delay: float = 0.05) -> None:
        self.inner = inner
        self.delay = delay
        self.opened: Counter[str] = Counter()
        self._lock = threading.Lock()

    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        with self._lock:
            self.opened[recording_sid] += 1
        time.sleep(self.delay)
        return self.inner.open(recording_sid, byte_range)


class OtherBytes:
    """A platform whose stored audio changed after it was fingerprinted."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        return Media(iter([self.data]), WAV_TYPE, lambda: None, 200, {})


class BrokenStream:
    """Serves the first bytes, then the connection breaks."""

    def __init__(self) -> None:
        self.closed = 0

    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        def chunks() -> Iterator[bytes]:
            yield AUDIO[:100]
            raise ConnectionError("the platform hung up mid-stream")

        def close() -> None:
            self.closed += 1

        return Media(chunks(), WAV_TYPE, close, 200, {})


def test_the_pass_fingerprints_after_completion_not_before(
    platform: Platform, services: Services
) -> None:
    call_sid = queue_call_from(platform, CONTACT_HARLOW, DEFAULT_CALLER)
    sid = platform.simulator.recordings(call_sid)[0].sid
    fingerprints = Fingerprinter(services.sessions, services.media)
    assert fingerprints.run_once() == 0  # still recording: nothing to fingerprint yet
    platform.hangup(call_sid)  # the completion webhook: answered without fetching audio
    assert events(services, "recording.completed", recording_sid=sid)
    assert events(services, FINGERPRINTED) == []
    assert recording(services, sid).fingerprint_sha256 is None

    assert fingerprints.run_once() == 1
    (event,) = events(services, FINGERPRINTED, recording_sid=sid)
    assert event.detail == {"sha256": SHA, "bytes": len(AUDIO)}
    assert (event.call_sid, event.actor) == (call_sid, "system")
    row = recording(services, sid)
    assert (row.fingerprint_sha256, row.fingerprint_bytes) == (SHA, len(AUDIO))
    assert row.fingerprinted_at is not None and row.fingerprint_claimed_until is None
    assert fingerprints.run_once() == 0  # fetched once: never again
    assert len(events(services, FINGERPRINTED, recording_sid=sid)) == 1


def test_a_bounded_batch_per_pass_and_never_a_destroyed_recording(
    services: Services, simulator
) -> None:
    destroyed, *sids = seed_due(services, simulator.platform, 5, destroy_after=years_later())
    with unit_of_work(services.sessions) as session:
        session.execute(
            update(Recording)
            .where(Recording.recording_sid == destroyed)
            .values(destroyed_at=utcnow())
        )
    fingerprints = Fingerprinter(services.sessions, services.media, batch_size=3)
    assert [fingerprints.run_once() for _ in range(3)] == [3, 1, 0]
    assert sorted(e.recording_sid for e in events(services, FINGERPRINTED)) == sorted(sids)


def test_a_drain_takes_batches_until_the_backlog_is_gone(services: Services, simulator) -> None:
    # What `callguard serve` runs each period: a backlog larger than one batch is
    # fingerprinted in one pass, and a pass still ends when its batches run out.
    sids = seed_due(services, simulator.platform, 7, destroy_after=years_later())
    assert Fingerprinter(services.sessions, services.media, batch_size=3).drain(max_batches=2) == 6
    assert Fingerprinter(services.sessions, services.media, batch_size=3).drain() == 1
    assert sorted(e.recording_sid for e in events(services, FINGERPRINTED)) == sorted(sids)


def test_two_racing_passes_fingerprint_each_recording_once(services: Services, simulator) -> None:
    sids = seed_due(services, simulator.platform, 8, destroy_after=years_later())
    media = CountingMedia(services.media)
    start = threading.Barrier(2)
    done: list[int] = []

    def one_pass() -> None:
        start.wait()
        done.append(Fingerprinter(services.sessions, media, batch_size=5).run_once())

    threads = [threading.Thread(target=one_pass) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(done) == [3, 5]  # disjoint claims: one took a batch, the other the rest
    assert media.opened == Counter({sid: 1 for sid in sids})  # each fetched once
    per_recording = Counter(e.recording_sid for e in events(services, FINGERPRINTED))
    assert per_recording == Counter({sid: 1 for sid in sids})


def test_gone_or_failing_audio_is_retried_next_pass_never_faked(
    platform: Platform, services: Services
) -> None:
    _call, sid = completed_call(platform)
    simulator = platform.simulator
    gone = ProviderError("not found", transient=False, status=404, not_found=True)
    simulator.inject_fault("fetch", gone, times=1)
    fingerprints = Fingerprinter(services.sessions, services.media)
    with captured_logs(logging.WARNING) as logs:
        assert fingerprints.run_once() == 0
    (line,) = [json.loads(x) for x in logs.getvalue().splitlines()]
    assert (line["event"], line["error"], line["recording_sid"]) == (
        "fingerprint_failed",
        Gone.__name__,
        sid,
    )
    simulator.inject_fault("fetch", ProviderError("timeout", transient=True), times=1)
    assert fingerprints.run_once() == 0  # the platform failing: retried again
    broken = BrokenStream()
    assert Fingerprinter(services.sessions, broken).run_once() == 0  # a stream cut short
    assert broken.closed == 1
    assert events(services, FINGERPRINTED) == []
    row = recording(services, sid)
    assert row.fingerprint_sha256 is None and row.fingerprint_bytes is None

    assert fingerprints.run_once() == 1  # the audio back: the next pass fingerprints it
    (event,) = events(services, FINGERPRINTED, recording_sid=sid)
    assert event.detail == {"sha256": SHA, "bytes": len(AUDIO)}


def test_whole_fetch_of_changed_audio_is_an_alert_event_metric_and_error_log(
    client: TestClient,
    services: Services,
    people: People,
    completed: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    call_sid, sid = completed
    assert Fingerprinter(services.sessions, services.media).run_once() == 1
    changed = AUDIO[:-1] + b"\x01"
    monkeypatch.setattr(services, "media", OtherBytes(changed))
    url = link(client, sid, people)
    before = mismatches_counted()

    ranged = client.get(url, headers={"Range": "bytes=0-"})  # a range cannot be checked
    assert ranged.status_code == 200  # the other source ignores ranges: still not checked
    assert events(services, MISMATCH) == [] and mismatches_counted() == before

    with captured_logs(logging.ERROR) as logs:
        whole = client.get(url)
    assert (whole.status_code, whole.content) == (200, changed)  # served, and told loudly
    (event,) = events(services, MISMATCH, recording_sid=sid)
    actual = {"sha256": hashlib.sha256(changed).hexdigest(), "bytes": len(changed)}
    assert event.detail["expected"] == {"sha256": SHA, "bytes": len(AUDIO)}
    assert event.detail["actual"] == actual
    assert event.call_sid == call_sid
    assert mismatches_counted() == before + 1
    (line,) = [json.loads(x) for x in logs.getvalue().splitlines()]
    assert (line["event"], line["level"], line["recording_sid"]) == (
        "fingerprint_mismatch",
        "error",
        sid,
    )
    assert MISMATCH_METRIC in client.get("/metrics").text


def test_whole_fetch_matching_its_fingerprint_raises_no_alert(
    client: TestClient, services: Services, people: People, completed: tuple[str, str]
) -> None:
    _call, sid = completed
    url = link(client, sid, people)
    assert client.get(url).content == AUDIO  # not fingerprinted yet: nothing to compare
    assert Fingerprinter(services.sessions, services.media).run_once() == 1
    before = mismatches_counted()
    with captured_logs(logging.INFO) as logs:
        whole = client.get(url)
    assert (whole.status_code, whole.content) == (200, AUDIO)
    checked = [json.loads(x) for x in logs.getvalue().splitlines()]
    assert {"event": "fingerprint_checked", "recording_sid": sid, "match": True}.items() <= next(
        line for line in checked if line["event"] == "fingerprint_checked"
    ).items()
    assert events(services, MISMATCH) == [] and mismatches_counted() == before


def test_serve_mode_runs_the_pass(
    settings, services: Services, simulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("app.main.FINGERPRINT_SECONDS", 0.05)
    (sid,) = seed_due(services, simulator.platform, 1, destroy_after=years_later())
    with TestClient(create_app(settings, services, background=True)):
        deadline = time.monotonic() + 10
        while not events(services, FINGERPRINTED) and time.monotonic() < deadline:
            time.sleep(0.05)
    (event,) = events(services, FINGERPRINTED)
    assert event.recording_sid == sid


def test_a_lease_outlived_still_gives_one_event(services: Services, simulator) -> None:
    """A pass slower than its lease (another instance claims the row again and finishes
    first) stores nothing twice: only the first result is kept and logged."""
    (sid,) = seed_due(services, simulator.platform, 1, destroy_after=years_later())
    entered, release = threading.Event(), threading.Event()

    class Slow:
        def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
            entered.set()
            assert release.wait(timeout=30)
            return services.media.open(recording_sid, byte_range)

    done: list[int] = []
    slow = Fingerprinter(services.sessions, Slow(), lease=timedelta(0))
    thread = threading.Thread(target=lambda: done.append(slow.run_once()))
    thread.start()
    assert entered.wait(timeout=30)  # claimed, fetching, its lease already over
    assert Fingerprinter(services.sessions, services.media).run_once() == 1
    release.set()
    thread.join(timeout=30)
    assert done == [0]
    assert len(events(services, FINGERPRINTED, recording_sid=sid)) == 1
