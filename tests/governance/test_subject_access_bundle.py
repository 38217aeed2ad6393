"""Issue 15 item 6: a subject-access bundle a caller can receive (one ZIP of the audio that
still exists, summary.html in plain words, subject-access.json), by API and CLI; gone
audio listed, not fatal; governance only; logged with what it holds; bounded memory."""

from __future__ import annotations

import io
import json
import re
import tempfile
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from html import escape

import pytest
from fastapi.testclient import TestClient

from app.callers.numbers import vault
from app.callers.sar_bundle import bundle, write_bundle
from app.callers.sar_summary import when
from app.callers.subject_access import gather
from app.platforms.simulator.media import silent_wav
from app.recording_policy.engine import Reason
from app.retention.errors import MediaUnavailable
from app.retention.media import Media
from app.storage.db import unit_of_work
from app.storage.models import Recording, utcnow
from tests.factories import DEFAULT_CALLER, Platform
from tests.governance.conftest import (
    People,
    completed_call,
    events,
    queue_call_from,
    recording,
    seed_due,
)
from tests.governance.test_holds import place

BUNDLE = "/api/v1/subject-access/bundle"
PLANNING = "+441632960070"  # a department that is never recorded


def _zip(content: bytes) -> zipfile.ZipFile:
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None
    return archive


def _history(client: TestClient, services, platform: Platform, people: People) -> dict:
    """A caller with a kept recording (held, shared), one destroyed, one the platform lost,
    and a call to a department that is not recorded; and somebody else's call."""
    kept_call, kept = completed_call(platform)
    _, destroyed = completed_call(platform, caller="07700 900123")
    _, lost = completed_call(platform)
    planning = queue_call_from(platform, PLANNING, DEFAULT_CALLER)
    platform.hangup(planning)
    completed_call(platform, caller="+447700900999")
    hold = place(client, people, kept)
    shared = client.post(
        f"/api/v1/recordings/{kept}/disclosures",
        json={"recipient": "Housing Ombudsman", "agreement_reference": "DSA-7"},
        headers=people.governance,
    )
    assert shared.status_code == 201, shared.text
    with unit_of_work(services.sessions) as session:
        gone = session.get(Recording, destroyed)
        assert gone is not None
        gone.destroyed_at = utcnow() - timedelta(days=1)
    platform.simulator.delete_recording(lost)  # the platform no longer has it
    return {
        "kept": kept,
        "kept_call": kept_call,
        "destroyed": destroyed,
        "lost": lost,
        "planning": planning,
        "hold": hold,
    }


def test_bundle_holds_the_audio_that_exists_a_plain_summary_and_the_export(
    client: TestClient, services, platform: Platform, people: People
) -> None:
    made = _history(client, services, platform, people)
    response = client.get(BUNDLE, params={"phone": "07700 900123"}, headers=people.governance)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["cache-control"] == "no-store"
    assert "attachment" in response.headers["content-disposition"]
    assert int(response.headers["content-length"]) == len(response.content)
    archive = _zip(response.content)
    kept = recording(services, made["kept"])
    audio = f"recordings/{kept.started_at:%Y-%m-%d}_contact-harlow_{made['kept']}.wav"
    assert sorted(archive.namelist()) == sorted([audio, "summary.html", "subject-access.json"])
    assert archive.read(audio) == silent_wav()

    exported = json.loads(archive.read("subject-access.json"))
    today = client.get(
        "/api/v1/subject-access", params={"phone": DEFAULT_CALLER}, headers=people.governance
    ).json()
    assert {**exported, "generated_at": None} == {**today, "generated_at": None}
    assert len(exported["calls"]) == 4

    summary = archive.read("summary.html").decode()
    assert summary.startswith("<!DOCTYPE html>") and "<style>" in summary
    assert "<script" not in summary.lower()
    for code in Reason:  # plain words only
        assert code.value not in summary, code
    assert "calls to this department are recorded" in summary.lower()
    assert "calls to this department are not recorded" in summary.lower()
    assert "<dt>Department</dt><dd>Planning</dd>" in summary  # the policy's name, not its id
    assert f"In this bundle as <code>{audio}</code>" in summary
    assert "destroyed on" in summary.lower()
    assert "the phone platform no longer holds it" in summary
    assert "The audio no longer exists; it was due to be destroyed on or after" in summary
    assert "To be destroyed on or after" in summary
    assert "legal hold" in summary and made["hold"]["case_reference"] in summary
    assert "Shared with Housing Ombudsman" in summary and "DSA-7" in summary
    assert "+447700900999" not in summary  # somebody else's call is not there
    for sid in (made["kept"], made["destroyed"], made["lost"]):
        assert f"Recording {sid}" in summary
    # Every call is named, one heading each in the export's order, the call to a department
    # that is not recorded included (with no recording under it).
    headings = re.findall(r"<h2>(.*?)</h2>", summary)
    assert headings == [f"Call on {escape(when(c['started_at']))}" for c in exported["calls"]]
    [planning] = [c for c in exported["calls"] if c["call_sid"] == made["planning"]]
    assert planning["recordings"] == []
    sections = summary.split("<section>")[1:]
    assert len(sections) == len(exported["calls"])
    planning_section = sections[exported["calls"].index(planning)]
    assert "<dt>Recorded</dt><dd>No</dd>" in planning_section
    assert "<dt>Department</dt><dd>Planning</dd>" in planning_section
    assert "<h3>" not in planning_section

    # Logged once, with what the bundle holds, never the number.
    event, _json_export = events(services, "subject_access.exported")
    assert event.actor == "governance-1"
    assert event.detail["bundle"] == {"audio": 1, "destroyed": 1, "gone": 1, "unfinished": 0}
    assert len(event.detail["calls"]) == 4
    assert "7700900123" not in json.dumps(event.detail)


def test_refused_like_the_json_export(
    client: TestClient, services, platform: Platform, people: People
) -> None:
    completed_call(platform)
    for withheld in ("anonymous", "Restricted", "+", "not a number"):
        response = client.get(BUNDLE, params={"phone": withheld}, headers=people.governance)
        assert response.status_code == 422, response.text
        assert "withheld" in response.json()["detail"]
    for who in (people.agent, people.supervisor, people.admin):
        assert client.get(BUNDLE, params={"phone": DEFAULT_CALLER}, headers=who).status_code == 403
    assert client.get(BUNDLE, params={"phone": DEFAULT_CALLER}).status_code == 401
    assert client.get(BUNDLE, headers=people.governance).status_code == 422
    assert events(services, "subject_access.exported") == []


def test_a_failing_platform_fails_the_bundle_and_logs_nothing(
    client: TestClient, services, platform: Platform, people: People, monkeypatch
) -> None:
    completed_call(platform)

    def broken(recording_sid: str, byte_range: str | None = None) -> Media:
        raise MediaUnavailable("the provider answered 500")

    monkeypatch.setattr(services.media, "open", broken)
    response = client.get(BUNDLE, params={"phone": DEFAULT_CALLER}, headers=people.governance)
    assert response.status_code == 502, response.text
    assert events(services, "subject_access.exported") == []


def test_a_bundle_of_nobody_is_a_summary_saying_so(
    client: TestClient, services, people: People
) -> None:
    response = client.get(BUNDLE, params={"phone": "+447700900555"}, headers=people.governance)
    archive = _zip(response.content)
    assert sorted(archive.namelist()) == ["subject-access.json", "summary.html"]
    assert "We hold no calls from this number" in archive.read("summary.html").decode()


def test_sar_export_bundle_from_the_cli(
    run_cli, services, platform: Platform, tmp_path, monkeypatch
) -> None:
    _, recording_sid = completed_call(platform)
    _, lost = completed_call(platform)
    platform.simulator.delete_recording(lost)
    monkeypatch.setattr("app.cli.governance.build_media", lambda settings: services.media)
    target = tmp_path / "for-the-caller.zip"
    result = run_cli("sar", "export", "07700 900123", "--bundle", str(target), "--by", "jo")
    assert result.exit_code == 0, result.output
    assert "audio of 1 recording(s)" in result.stdout and "1 gone" in result.stdout
    archive = zipfile.ZipFile(target)
    [audio] = [n for n in archive.namelist() if n.startswith("recordings/")]
    assert audio.endswith(f"_contact-harlow_{recording_sid}.wav")
    assert json.loads(archive.read("subject-access.json"))["phone"] == DEFAULT_CALLER
    [event] = events(services, "subject_access.exported")
    assert event.actor == "jo"
    assert event.detail["bundle"]["audio"] == 1 and event.detail["bundle"]["gone"] == 1
    assert list(tmp_path.glob(".*partial")) == []

    refused = tmp_path / "refused.zip"
    withheld = run_cli("sar", "export", "anonymous", "--bundle", str(refused))
    assert withheld.exit_code == 2
    assert "withheld" in withheld.output
    assert not refused.exists() and list(tmp_path.glob(".*partial")) == []
    plain = run_cli("sar", "export", DEFAULT_CALLER)  # without --bundle: JSON as before
    assert json.loads(plain.stdout)["phone"] == DEFAULT_CALLER


class LargeAudio:
    """A platform whose every recording is `size` bytes, sent in 64 KiB chunks made fresh
    (as a network read makes them)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        def chunks() -> Iterator[bytes]:
            for _ in range(self.size // 65536):
                yield bytes(65536)

        return Media(chunks(), "audio/x-wav", lambda: None)


@pytest.mark.parametrize("count", [20, 200])
def test_bundle_memory_is_bounded_by_a_chunk_not_the_archive(
    services, simulator, count: int
) -> None:
    """Recordings of 1 MiB each (200 MiB of audio for 200): the writer's peak stays below one
    recording's size whatever the count, so no recording, let alone the archive, is ever held
    whole (measured: see the printed figure)."""
    seed_due(
        services,
        simulator.platform,
        count,
        destroy_after=utcnow() + timedelta(days=30),
        caller=DEFAULT_CALLER,
    )
    settings = services.settings
    numbers = vault(settings.number_key)
    with services.sessions() as session:
        export, _ = gather(session, numbers, DEFAULT_CALLER, settings.default_region)
    media = LargeAudio(2**20)
    with tempfile.TemporaryFile() as target:
        tracemalloc.start()
        try:
            contents = write_bundle(target, export, media)
            _, writer_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            target.seek(0)
            target.truncate()
            bundle(
                services.sessions,
                numbers,
                media,
                DEFAULT_CALLER,
                settings.default_region,
                "bench",
                target,
            )
            _, whole_peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        size = target.tell()
    assert contents.audio == count
    assert size > count * 2**20
    print(
        f"\n{count} recordings, {size / 2**20:.1f} MiB ZIP: writer peak "
        f"{writer_peak / 2**20:.2f} MiB, gather+write+audit peak {whole_peak / 2**20:.2f} MiB"
    )
    assert writer_peak < 2**20


def test_the_api_spools_a_large_bundle_to_disk_and_streams_it(services, simulator) -> None:
    """The route's own memory, from gathering to the last chunk sent: 200 recordings of
    1 MiB (a 200 MiB answer) never come near memory (a BytesIO would hold all of it)."""
    import anyio

    from app.api.governance import subject_access_bundle
    from app.people.users import Role
    from app.storage.models import User

    count = 200
    seed_due(
        services,
        simulator.platform,
        count,
        destroy_after=utcnow() + timedelta(days=30),
        caller=DEFAULT_CALLER,
    )
    services.media = LargeAudio(2**20)
    officer = User(name="governance-1", role=Role.GOVERNANCE)
    sent = 0

    async def drain(response) -> None:  # as Starlette sends it, chunk by chunk
        nonlocal sent
        async for chunk in response.body_iterator:
            sent += len(chunk)
        await response.background()

    tracemalloc.start()
    try:
        response = subject_access_bundle(DEFAULT_CALLER, officer, services)
        anyio.run(drain, response)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sent == int(response.headers["content-length"]) > count * 2**20
    print(f"\nAPI: {count} recordings, {sent / 2**20:.1f} MiB sent, peak {peak / 2**20:.2f} MiB")
    assert peak < 4 * 2**20
    [event] = events(services, "subject_access.exported")
    assert event.detail["bundle"]["audio"] == count
