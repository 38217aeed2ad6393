"""The Amazon Connect stand-in serves Connect's recording operations and enforces the rules
the model leaves in prose; faults arrive as boto3's ClientError; its own answers are held to
the output shapes. Input and signature refusals: test_connect_fake_checks.py.
"""

from __future__ import annotations

import base64
import functools
import time
import uuid
from datetime import datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from tests.connect_fake import answers
from tests.connect_fake.journal import OFF_MODEL
from tests.connect_fake.server import FakeConnectServer
from tests.connect_fake.state import ConnectError, ConnectState, RecordingState
from tests.connect_fake.testing import ALL, World, refused, send


@pytest.fixture
def world(connect_server: FakeConnectServer) -> World:
    return World.build(connect_server)


# -- serving ---------------------------------------------------------------------------


def test_recording_lifecycle_and_describe(world: World) -> None:
    server, client = world.server, world.client
    world.start()
    client.suspend_contact_recording(**world.ids())
    assert world.state() is RecordingState.SUSPENDED
    client.resume_contact_recording(**world.ids())
    assert world.state() is RecordingState.RECORDING
    client.stop_contact_recording(**world.ids())
    assert world.state() is RecordingState.STOPPED
    rec = server.contact(world.instance, world.contact).recording
    assert rec is not None
    assert [op for op, _ in rec.history] == [
        "StartContactRecording",
        "SuspendContactRecording",
        "ResumeContactRecording",
        "StopContactRecording",
    ]
    live = client.describe_contact(InstanceId=world.instance, ContactId=world.contact)["Contact"]
    assert "DisconnectTimestamp" not in live and "Recordings" not in live
    location = server.disconnect_contact(world.instance, world.contact)
    assert location is not None and location.startswith(f"{server.recording_bucket}/connect/")
    contact = client.describe_contact(InstanceId=world.instance, ContactId=world.contact)["Contact"]
    assert contact["Id"] == contact["InitialContactId"] == world.contact
    assert contact["InitiationMethod"] == "INBOUND" and contact["Channel"] == "VOICE"
    queue = server.connect.instances[world.instance].queues
    assert contact["QueueInfo"]["Id"] in queue
    assert isinstance(contact["DisconnectTimestamp"], datetime)
    [recording] = contact["Recordings"]
    assert recording["MediaStreamType"] == "AUDIO" and recording["StorageType"] == "S3"
    assert recording["Location"] == location and recording["Status"] == "AVAILABLE"
    started = server.requests_for("StartContactRecording")[0]
    assert started.params["VoiceRecordingConfiguration"] == ALL and started.status == 200


def test_recording_changes_answer_an_empty_body(world: World) -> None:
    body = {**world.ids(), "VoiceRecordingConfiguration": ALL}
    resp = send(world.server, "POST", "/contact/start-recording", body)
    assert (resp.status_code, resp.content) == (200, b"")
    assert resp.headers["x-amzn-RequestId"]


def test_recording_is_listed_only_once_written(world: World) -> None:
    world.start()
    given = "my-bucket/connect/x/CallRecordings/a.wav"
    server = world.server
    assert (
        server.disconnect_contact(
            world.instance, world.contact, recording_location=given, written=False
        )
        == given
    )
    describe = {"InstanceId": world.instance, "ContactId": world.contact}
    assert "Recordings" not in world.client.describe_contact(**describe)["Contact"]
    server.write_recording(world.instance, world.contact)
    [rec] = world.client.describe_contact(**describe)["Contact"]["Recordings"]
    assert rec["Location"] == given


def test_transfer_contact_carries_the_initial_contact(world: World) -> None:
    server = world.server
    server.add_queue(world.instance, "Housing")
    moved = server.add_contact(
        world.instance,
        initiation_method="TRANSFER",
        previous_contact_id=world.contact,
        queue="Housing",
    )
    world.start(moved.id)  # with the call's InitialContactId, not the transfer's own id
    contact = world.client.describe_contact(InstanceId=world.instance, ContactId=moved.id)
    body = contact["Contact"]
    assert body["InitiationMethod"] == "TRANSFER"
    assert body["PreviousContactId"] == world.contact
    assert body["InitialContactId"] == world.contact != body["Id"]


def test_list_queues_pages_and_filters(world: World) -> None:
    server = world.server
    for n in range(4):
        server.add_queue(world.instance, f"Dept {n}")
    server.add_queue(world.instance, None, queue_type="AGENT")
    pages = world.client.get_paginator("list_queues").paginate(
        InstanceId=world.instance, QueueTypes=["STANDARD"], MaxResults=2
    )
    summaries = [q for page in pages for q in page["QueueSummaryList"]]
    assert [q["Name"] for q in summaries] == ["Payments", "Dept 0", "Dept 1", "Dept 2", "Dept 3"]
    assert all(q["QueueType"] == "STANDARD" and q["Arn"].endswith(q["Id"]) for q in summaries)
    calls = server.requests_for("ListQueues")
    assert len(calls) == 3 and calls[0].params["QueueTypes"] == ["STANDARD"]
    every = world.client.list_queues(InstanceId=world.instance)["QueueSummaryList"]
    assert len(every) == 6 and "AGENT" in {q["QueueType"] for q in every}
    first = world.client.list_queues(InstanceId=world.instance, MaxResults=5)
    assert "NextToken" in first and len(first["QueueSummaryList"]) == 5


def test_list_queues_refuses_a_token_it_never_gave(world: World) -> None:
    forged = base64.urlsafe_b64encode(b"00000000:1").decode()  # offset 1, another key
    refused(
        lambda: world.client.list_queues(InstanceId=world.instance, NextToken=forged),
        world.server,
        "InvalidParameterException",
        400,
        "NextToken",
    )


# -- rules the model leaves in prose ----------------------------------------------------


def test_start_is_one_time(world: World) -> None:
    world.start()
    refused(world.start, world.server, "InvalidRequestException", 400, "one-time")
    world.client.stop_contact_recording(**world.ids())
    refused(world.start, world.server, "InvalidRequestException", 400, "one-time")
    assert world.state() is RecordingState.STOPPED


@pytest.mark.parametrize("operation", ["suspend", "resume", "stop"])
def test_changes_need_a_started_recording(world: World, operation: str) -> None:
    call = getattr(world.client, f"{operation}_contact_recording")
    refused(
        lambda: call(**world.ids()),
        world.server,
        "InvalidRequestException",
        400,
        "no recording started",
    )


@pytest.mark.parametrize("operation", ["suspend", "resume", "stop"])
def test_nothing_follows_a_stop(world: World, operation: str) -> None:
    world.start()
    world.client.stop_contact_recording(**world.ids())
    call = getattr(world.client, f"{operation}_contact_recording")
    refused(
        lambda: call(**world.ids()), world.server, "InvalidRequestException", 400, "was stopped"
    )


def test_repeated_suspend_or_resume_is_refused_unless_lenient(world: World) -> None:
    world.start()
    refused(
        lambda: world.client.resume_contact_recording(**world.ids()),
        world.server,
        "InvalidRequestException",
        400,
        "already RECORDING",
    )
    world.client.suspend_contact_recording(**world.ids())
    refused(
        lambda: world.client.suspend_contact_recording(**world.ids()),
        world.server,
        "InvalidRequestException",
        400,
        "already SUSPENDED",
    )
    world.server.lenient_repeats = True
    world.client.suspend_contact_recording(**world.ids())
    assert world.state() is RecordingState.SUSPENDED


def test_start_needs_a_track_to_record(world: World) -> None:
    refused(
        lambda: world.client.start_contact_recording(**world.ids(), VoiceRecordingConfiguration={}),
        world.server,
        "InvalidParameterException",
        400,
        "names no track",
    )


def test_recording_types_name_recordings_the_contact_has(world: World) -> None:
    world.start()  # a voice (agent) recording, no IVR and no screen recording
    for kind in ("IVR", "SCREEN"):
        refused(
            functools.partial(
                world.client.suspend_contact_recording, **world.ids(), ContactRecordingType=kind
            ),
            world.server,
            "InvalidRequestException",
            400,
            f"no {kind} recording",
        )
    world.client.suspend_contact_recording(**world.ids(), ContactRecordingType="AGENT")
    ivr = world.server.add_contact(world.instance)
    config = {"IvrRecordingTrack": "ALL"}
    world.client.start_contact_recording(**world.ids(ivr.id), VoiceRecordingConfiguration=config)
    world.client.suspend_contact_recording(**world.ids(ivr.id), ContactRecordingType="IVR")


def test_refuses_a_wrong_initial_contact(world: World) -> None:
    ids = world.ids(initial=str(uuid.uuid4()))
    refused(
        lambda: world.client.start_contact_recording(**ids, VoiceRecordingConfiguration=ALL),
        world.server,
        "InvalidRequestException",
        400,
        "is not the initial contact",
    )


def test_refuses_recording_a_contact_that_is_not_voice(world: World) -> None:
    chat = world.server.add_contact(world.instance, channel="CHAT")
    refused(lambda: world.start(chat.id), world.server, "InvalidRequestException", 400, "voice")


def test_refuses_recording_an_ended_contact(world: World) -> None:
    world.server.disconnect_contact(world.instance, world.contact)
    refused(world.start, world.server, "InvalidRequestException", 400, "not active")


def test_unknown_contact_is_not_found(world: World) -> None:
    ghost = str(uuid.uuid4())
    ids = {"InstanceId": world.instance, "ContactId": ghost, "InitialContactId": ghost}
    refused(
        lambda: world.client.start_contact_recording(**ids, VoiceRecordingConfiguration=ALL),
        world.server,
        "ResourceNotFoundException",
        404,
        "Contact not found",
    )
    refused(
        lambda: world.client.describe_contact(InstanceId=world.instance, ContactId=ghost),
        world.server,
        "ResourceNotFoundException",
        404,
        "Contact not found",
    )


def test_unknown_instance_is_not_found(world: World) -> None:
    ghost = str(uuid.uuid4())
    refused(
        lambda: world.client.list_queues(InstanceId=ghost),
        world.server,
        "ResourceNotFoundException",
        404,
        "Instance not found",
    )
    refused(
        lambda: world.client.describe_contact(InstanceId=ghost, ContactId=world.contact),
        world.server,
        "ResourceNotFoundException",
        404,
        "Instance not found",
    )


# -- injected faults ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "status"), [("ThrottlingException", 429), ("InternalServiceException", 500)]
)
def test_injected_faults_arrive_as_client_errors(world: World, code: str, status: int) -> None:
    world.server.inject("StartContactRecording", code)
    with pytest.raises(ClientError) as info:
        world.start()
    assert info.value.response["Error"]["Code"] == code
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert world.state() is None
    assert world.server.violations == []  # a fault is Connect's, not the caller's
    world.start()  # the fault did not count as the one-time start


def test_injected_faults_last_for_the_next_n_calls(world: World) -> None:
    world.server.inject("DescribeContact", "ThrottlingException", times=2)
    client = world.server.client(attempts=3)
    client.describe_contact(InstanceId=world.instance, ContactId=world.contact)
    statuses = [r.status for r in world.server.requests_for("DescribeContact")]
    assert statuses == [429, 429, 200]


def test_injected_delay_times_out_while_the_change_happens(world: World) -> None:
    world.server.inject("SuspendContactRecording", None, delay=1.0)
    world.start()
    hasty = world.server.client(read_timeout=0.3, connect_timeout=1)
    with pytest.raises(ReadTimeoutError):
        hasty.suspend_contact_recording(**world.ids())
    deadline = time.monotonic() + 5
    while world.state() is not RecordingState.SUSPENDED:  # the stand-in acts after its delay
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_inject_accepts_only_errors_the_operation_can_answer(
    connect_server: FakeConnectServer,
) -> None:
    with pytest.raises(ValueError, match="cannot answer DuplicateResourceException"):
        connect_server.inject("StartContactRecording", "DuplicateResourceException")
    with pytest.raises(ValueError, match="serves"):
        connect_server.inject("CreateQueue", "ThrottlingException")


# -- the stand-in's own answers ------------------------------------------------------------


def test_an_answer_off_the_output_shape_is_never_sent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def drifted(contact: Any, region: str) -> dict[str, Any]:
        body = original(contact, region)
        body["Channel"] = "PIGEON"  # not a Channel
        body["Mood"] = "calm"  # not a member of Contact
        return body

    original = answers.contact_json
    monkeypatch.setattr(answers, "contact_json", drifted)
    with pytest.raises(ClientError) as info:
        world.client.describe_contact(InstanceId=world.instance, ContactId=world.contact)
    assert info.value.response["Error"]["Code"] == "InternalServiceException"
    [violation] = world.server.unexpected_violations()
    assert violation.code == OFF_MODEL
    assert (
        "'PIGEON' is not one of" in violation.message
        and "Mood: unknown member" in violation.message
    )
    world.server.expect_violations(OFF_MODEL)
    assert world.server.unexpected_violations() == [violation]  # cannot be waved through
    world.server.take_violations()


def test_a_refusal_the_operation_cannot_give_is_never_sent(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def off_model(self: ConnectState, params: dict[str, Any]) -> None:
        raise ConnectError("DuplicateResourceException", "not a Suspend error")

    monkeypatch.setattr(ConnectState, "suspend_recording", off_model)
    with pytest.raises(ClientError) as info:
        world.client.suspend_contact_recording(**world.ids())
    assert info.value.response["Error"]["Code"] == "InternalServiceException"
    [violation] = world.server.take_violations()
    assert violation.code == OFF_MODEL and "cannot answer DuplicateResourceException" in (
        violation.message
    )


def test_a_queue_name_the_model_forbids_is_caught_on_the_way_out(world: World) -> None:
    world.server.add_queue(world.instance, "Q" * 257)  # QueueName is at most 256
    with pytest.raises(ClientError) as info:
        world.client.list_queues(InstanceId=world.instance)
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    [violation] = world.server.take_violations()
    assert violation.code == OFF_MODEL and "above the maximum 256" in violation.message


def test_declared_violations_pass_and_others_do_not(world: World) -> None:
    with pytest.raises(ClientError):
        world.client.stop_contact_recording(**world.ids())  # nothing started: refused
    assert [v.code for v in world.server.unexpected_violations()] == ["InvalidRequestException"]
    world.server.expect_violations("InvalidRequestException")
    assert world.server.unexpected_violations() == []
