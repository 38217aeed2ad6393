"""Recordings on Connect (R1, R3, R4): found with DescribeContact once their contact has
disconnected (asked again until Connect has written them), dated from the department that
owned that contact, streamed from S3's newest version through our short-lived link, and
destroyed by deleting every version and delete marker in S3, proven gone (moto's S3 server,
versioning on); a delete S3 refuses keeps the recording due."""

from __future__ import annotations

import json
import socket
from datetime import timedelta

import pytest

from app.calls.completion import FIND_FOR, Completions
from app.people.users import Role
from app.retention.run import RetentionRun, Summary
from app.storage.db import unit_of_work
from app.storage.models import Recording, utcnow
from tests.connect_fake.callguard import ConnectCallguard, s3_client, wav
from tests.factories import bearer, make_user


def _ended_recorded_call(cg: ConnectCallguard, digits: str = "1") -> tuple[str, str]:
    contact, _ = cg.queue_call(digits=digits)
    location = cg.hang_up(contact)
    assert location is not None
    cg.event(contact, "DISCONNECTED")
    return contact.id, location


def test_a_recording_is_found_after_its_contact_ends_and_dated_by_its_department(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    call_sid, location = _ended_recorded_call(cg, "2")  # revenues-and-benefits
    [recording] = cg.recordings(call_sid)
    assert recording.status == "completed" and recording.completed_at is not None
    assert json.loads(recording.media_url or "") == [location]
    assert recording.destroy_after is not None
    years = recording.destroy_after.year - recording.completed_at.year
    assert years in (2, 3) and recording.retention == "P2Y130D"
    assert "recording.completed" in cg.audit_types(call_sid)
    [describe, *_] = cg.server.requests_for("DescribeContact")
    assert describe.params == {"InstanceId": cg.instance, "ContactId": call_sid}


def test_each_contact_of_a_transferred_call_is_dated_by_its_own_department(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    first, _ = cg.queue_call(digits="2")  # revenues-and-benefits: P2Y130D
    moved = cg.transfer(first, "contact-harlow")  # P130D
    cg.answer(moved)
    cg.hang_up(first)
    cg.event(first, "DISCONNECTED")
    cg.hang_up(moved)
    cg.event(moved, "DISCONNECTED")
    found = {r.recording_sid: r for r in cg.recordings(first.id)}
    assert found[first.id].retention == "P2Y130D" and found[moved.id].retention == "P130D"
    for recording in found.values():
        assert recording.completed_at is not None and recording.destroy_after is not None
    assert found[moved.id].destroy_after < found[first.id].destroy_after


def test_a_recording_connect_has_not_written_yet_is_found_by_the_sweep(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    cg.server.disconnect_contact(cg.instance, contact.id, written=False)
    cg.event(contact, "DISCONNECTED")
    [recording] = cg.recordings(contact.id)
    assert (recording.status, recording.completed_at) == ("stopped", None)
    completions = Completions(cg.services.sessions, cg.connect.contacts, cg.services.calls)
    assert completions.sweep() == 0  # still not written
    location = cg.server.write_recording(cg.instance, contact.id)
    assert completions.sweep() == 1
    [recording] = cg.recordings(contact.id)
    assert recording.status == "completed"
    assert json.loads(recording.media_url or "") == [location]
    assert completions.sweep() == 0


def test_a_recording_never_written_is_absent_after_a_day(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    contact, _ = cg.queue_call(digits="1")
    cg.server.disconnect_contact(cg.instance, contact.id, written=False)
    cg.event(contact, "DISCONNECTED")
    later = Completions(
        cg.services.sessions,
        cg.connect.contacts,
        cg.services.calls,
        clock=lambda: utcnow() + FIND_FOR + timedelta(minutes=1),
    )
    assert later.sweep() == 1
    [recording] = cg.recordings(contact.id)
    assert recording.status == "absent" and recording.destroy_after is not None


def _retention(cg: ConnectCallguard, sid: str, worker: str | None = None) -> Summary:
    with cg.services.sessions() as session:
        recording = session.get(Recording, sid)
        assert recording is not None and recording.destroy_after is not None
        due = recording.destroy_after
    run = RetentionRun(
        cg.services.sessions, cg.services.store, now=due + timedelta(days=1), worker=worker
    )
    return run.run()


def _versions(cg: ConnectCallguard, location: str) -> tuple[int, int]:
    bucket, _, key = location.partition("/")
    listed = cg.s3.list_object_versions(Bucket=bucket, Prefix=key)
    mine = [v for v in listed.get("Versions", []) if v["Key"] == key]
    markers = [m for m in listed.get("DeleteMarkers", []) if m["Key"] == key]
    return len(mine), len(markers)


def test_destruction_deletes_every_version_and_marker_and_proves_it_gone(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    call_sid, location = _ended_recorded_call(cg)
    bucket, _, key = location.partition("/")
    cg.s3.put_object(Bucket=bucket, Key=key, Body=wav(2.0))  # a second version
    cg.s3.delete_object(Bucket=bucket, Key=key)  # and a delete marker on top
    assert _versions(cg, location) == (2, 1)
    summary = _retention(cg, call_sid)
    assert (summary.destroyed, summary.failed) == (1, 0)
    assert _versions(cg, location) == (0, 0)
    with pytest.raises(cg.s3.exceptions.ClientError) as head:
        cg.s3.head_object(Bucket=bucket, Key=key)
    assert head.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    [recording] = cg.recordings(call_sid)
    assert recording.destroyed_at is not None
    assert "recording.destroyed" in cg.audit_types(call_sid)


def test_a_delete_s3_refuses_keeps_the_recording_due(connect_callguard: ConnectCallguard) -> None:
    """A version under an Object Lock legal hold cannot be deleted: never marked destroyed."""
    cg = connect_callguard
    locked = "council-locked-recordings"
    if locked not in {b["Name"] for b in cg.s3.list_buckets()["Buckets"]}:
        cg.s3.create_bucket(
            Bucket=locked,
            CreateBucketConfiguration={"LocationConstraint": cg.server.region},
            ObjectLockEnabledForBucket=True,
        )
    contact, _ = cg.queue_call(digits="1")
    key = f"connect/callguard/CallRecordings/{contact.id}.wav"
    cg.server.disconnect_contact(cg.instance, contact.id, recording_location=f"{locked}/{key}")
    put = cg.s3.put_object(Bucket=locked, Key=key, Body=wav())
    cg.s3.put_object_legal_hold(
        Bucket=locked, Key=key, VersionId=put["VersionId"], LegalHold={"Status": "ON"}
    )
    cg.event(contact, "DISCONNECTED")
    summary = _retention(cg, contact.id)
    assert (summary.destroyed, summary.failed) == (0, 1)
    [recording] = cg.recordings(contact.id)
    assert recording.destroyed_at is None
    assert "recording.destroy_failed" in cg.audit_types(contact.id)
    assert _versions(cg, f"{locked}/{key}") == (1, 0)
    cg.s3.put_object_legal_hold(
        Bucket=locked, Key=key, VersionId=put["VersionId"], LegalHold={"Status": "OFF"}
    )
    summary = _retention(cg, contact.id, worker="another-worker")
    assert summary.destroyed == 1


def test_s3_unreachable_keeps_the_recording_due(connect_callguard: ConnectCallguard) -> None:
    cg = connect_callguard
    call_sid, location = _ended_recorded_call(cg)
    store = cg.services.store
    real = store.s3
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        nowhere = f"http://127.0.0.1:{sock.getsockname()[1]}"
    store.s3 = s3_client(nowhere, cg.server)
    try:
        assert _retention(cg, call_sid).failed == 1
    finally:
        store.s3 = real
    assert cg.recordings(call_sid)[0].destroyed_at is None
    assert _versions(cg, location) == (1, 0)


def test_media_streams_the_newest_version_through_our_link(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    call_sid, location = _ended_recorded_call(cg)
    bucket, _, key = location.partition("/")
    newest = wav(3.0)
    cg.s3.put_object(Bucket=bucket, Key=key, Body=newest, ContentType="audio/wav")
    token = make_user(cg.services, "gill", Role.GOVERNANCE)
    access = cg.client.post(
        f"/api/v1/recordings/{call_sid}/access",
        json={"purpose": "complaint"},
        headers=bearer(token),
    )
    assert access.status_code == 200, access.text
    url = access.json()["media_url"]
    whole = cg.client.get(url)
    assert (whole.status_code, whole.content) == (200, newest)
    part = cg.client.get(url, headers={"Range": "bytes=0-3"})
    assert (part.status_code, part.content) == (206, b"RIFF")
    assert part.headers["content-range"] == f"bytes 0-3/{len(newest)}"
    past = cg.client.get(url, headers={"Range": f"bytes={len(newest)}-"})
    assert past.status_code == 416
    _retention(cg, call_sid)
    again = cg.client.post(
        f"/api/v1/recordings/{call_sid}/access",
        json={"purpose": "complaint"},
        headers=bearer(token),
    )
    assert again.status_code == 410


def test_without_a_stored_location_connect_is_asked_where_the_audio_is(
    connect_callguard: ConnectCallguard,
) -> None:
    cg = connect_callguard
    call_sid, location = _ended_recorded_call(cg)
    with unit_of_work(cg.services.sessions) as session:
        recording = session.get(Recording, call_sid)
        assert recording is not None
        recording.media_url = None
    assert cg.services.store.locations.of(call_sid) == [tuple(location.split("/", 1))]
    assert _retention(cg, call_sid).destroyed == 1
    assert _versions(cg, location) == (0, 0)
