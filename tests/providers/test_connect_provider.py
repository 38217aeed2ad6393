"""The Connect `Provider` (app/platforms/connect/provider.py) against the Connect stand-in:
the exact operations and members it sends, the state Connect is left in, and how AWS's
errors are classified for the reconciler's retries and the sweep."""

from __future__ import annotations

import socket
import time
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from app.calls.provider import ProviderError, RecordingStatus, TransferLeg, TransferUnsupported
from app.platforms.connect.aws import AwsClients, provider_error
from app.platforms.connect.provider import ConnectCalls
from tests.connect_fake.server import FakeConnectServer
from tests.connect_fake.state import RecordingState
from tests.connect_fake.testing import ALL, World


class NoStore:
    def fetch_recording(self, recording_sid: str) -> Any:
        raise AssertionError("not used here")

    def delete_recording(self, recording_sid: str) -> None:
        raise AssertionError("not used here")


@pytest.fixture
def world(connect_server: FakeConnectServer) -> World:
    return World.build(connect_server)


def calls_for(world: World, **config: Any) -> ConnectCalls:
    client = world.server.client(**config)
    return ConnectCalls(AwsClients(connect=client, s3=None), world.instance, NoStore())


def test_each_command_is_its_connect_operation(world: World) -> None:
    calls = calls_for(world)
    info = calls.start_recording(world.contact, world.contact)
    assert (info.sid, info.call_sid, info.status) == (
        world.contact,
        world.contact,
        RecordingStatus.IN_PROGRESS,
    )
    assert calls.pause_recording(world.contact, world.contact).status is RecordingStatus.PAUSED
    assert world.state() is RecordingState.SUSPENDED
    resumed = calls.resume_recording(world.contact, world.contact)
    assert resumed.status is RecordingStatus.IN_PROGRESS
    assert calls.stop_recording(world.contact, world.contact).status is RecordingStatus.STOPPED
    assert world.state() is RecordingState.STOPPED
    operations = [(r.operation, r.status) for r in world.server.requests]
    assert operations == [
        ("StartContactRecording", 200),
        ("SuspendContactRecording", 200),
        ("ResumeContactRecording", 200),
        ("StopContactRecording", 200),
    ]
    [start] = world.server.requests_for("StartContactRecording")
    assert start.params == {**world.ids(), "VoiceRecordingConfiguration": ALL}
    [suspend] = world.server.requests_for("SuspendContactRecording")
    assert suspend.params == world.ids()  # no ContactRecordingType: the voice recording


def test_a_transferred_contact_is_recorded_under_the_chains_initial_contact(
    world: World,
) -> None:
    world.server.add_queue(world.instance, "housing-management")
    moved = world.server.add_contact(
        world.instance,
        initiation_method="TRANSFER",
        previous_contact_id=world.contact,
        queue="housing-management",
    )
    info = calls_for(world).start_recording(world.contact, moved.id)
    assert (info.sid, info.call_sid) == (moved.id, world.contact)
    assert world.state(moved.id) is RecordingState.RECORDING
    assert world.state() is None  # the first contact is untouched


def test_a_start_whose_answer_was_lost_is_confirmed_by_the_one_time_refusal(
    world: World,
) -> None:
    """The first start reaches Connect but its answer does not come back in time; the
    next one is refused (one-time), which on a live contact means it is recording."""
    world.server.inject("StartContactRecording", None, delay=0.6)
    calls = calls_for(world, read_timeout=0.2)
    with pytest.raises(ProviderError) as lost:
        calls.start_recording(world.contact, world.contact)
    assert lost.value.transient and not lost.value.not_attempted
    deadline = time.monotonic() + 5
    while world.state() is None and time.monotonic() < deadline:
        time.sleep(0.02)  # Connect carries it out after the client gave up
    assert world.state() is RecordingState.RECORDING
    info = calls_for(world).start_recording(world.contact, world.contact)
    assert info.status is RecordingStatus.IN_PROGRESS
    assert [r.status for r in world.server.requests_for("StartContactRecording")] == [200, 400]
    world.server.expect_violations("InvalidRequestException")


def test_a_start_refused_on_an_ended_contact_is_a_permanent_failure(world: World) -> None:
    world.server.disconnect_contact(world.instance, world.contact)
    with pytest.raises(ProviderError) as refused:
        calls_for(world).start_recording(world.contact, world.contact)
    error = refused.value
    assert (error.transient, error.not_found, error.call_over) == (False, False, False)
    assert error.code == "InvalidRequestException"
    world.server.expect_violations("InvalidRequestException")


@pytest.mark.parametrize(
    ("code", "transient", "not_attempted"),
    [
        ("ThrottlingException", True, True),
        ("InternalServiceException", True, False),
        ("InvalidRequestException", False, False),
    ],
)
def test_connect_errors_are_classified(
    world: World, code: str, transient: bool, not_attempted: bool
) -> None:
    calls = calls_for(world)
    calls.start_recording(world.contact, world.contact)
    world.server.inject("SuspendContactRecording", code)
    with pytest.raises(ProviderError) as failed:
        calls.pause_recording(world.contact, world.contact)
    error = failed.value
    assert (error.code, error.transient, error.not_attempted) == (code, transient, not_attempted)
    assert error.status == {"ThrottlingException": 429, "InternalServiceException": 500}.get(
        code, 400
    )
    assert world.state() is RecordingState.RECORDING  # nothing changed at Connect


def test_changing_a_recording_never_started_is_refused_permanently(world: World) -> None:
    with pytest.raises(ProviderError) as failed:
        calls_for(world).pause_recording(world.contact, world.contact)
    assert (failed.value.transient, failed.value.code) == (False, "InvalidRequestException")
    world.server.expect_violations("InvalidRequestException")


def test_an_unknown_contact_is_not_found(world: World) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(ProviderError) as failed:
        calls_for(world).stop_recording(world.contact, unknown)
    assert failed.value.not_found and not failed.value.transient
    assert failed.value.status == 404
    world.server.expect_violations("ResourceNotFoundException")


def test_connect_unreachable_is_transient_and_not_attempted(world: World) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = world.server
    client = boto3.session.Session().client(
        "connect",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(retries={"total_max_attempts": 1}),
    )
    calls = ConnectCalls(AwsClients(connect=client, s3=None), world.instance, NoStore())
    with pytest.raises(ProviderError) as failed:
        calls.start_recording(world.contact, world.contact)
    assert failed.value.transient and failed.value.not_attempted


def test_classification_of_what_botocore_raises() -> None:
    def client_error(code: str, status: int) -> ClientError:
        response: Any = {"Error": {"Code": code, "Message": "m"}}
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
        return ClientError(response, "Op")

    cases = {
        "TooManyRequestsException": (429, True, True, False),
        "SlowDown": (503, True, True, False),
        "ServiceUnavailableException": (503, True, False, False),
        "AccessDeniedException": (403, False, False, False),
        "InvalidParameterException": (400, False, False, False),
        "NoSuchKey": (404, False, False, True),
    }
    for code, (status, transient, not_attempted, not_found) in cases.items():
        error = provider_error("op", client_error(code, status))
        assert (error.transient, error.not_attempted, error.not_found) == (
            transient,
            not_attempted,
            not_found,
        ), code
    timeout = provider_error("op", ReadTimeoutError(endpoint_url="http://x"))
    assert timeout.transient and not timeout.not_attempted
    never = provider_error("op", ConnectTimeoutError(endpoint_url="http://x"))
    assert never.transient and never.not_attempted


def test_transfers_are_made_in_the_ccp(world: World) -> None:
    calls = calls_for(world)
    told = calls.transfer_call(world.contact, TransferLeg("non_recorded", 1, "", "+441632960999"))
    assert told is not None and "CCP" in told and "+441632960999" in told
    with pytest.raises(TransferUnsupported, match="Contact Control Panel"):
        calls.transfer_call(world.contact, TransferLeg("department", 2, "housing-management"))
    with pytest.raises(TransferUnsupported, match="payment line"):
        calls.transfer_call(world.contact, TransferLeg("payment", 3, "revenues-and-benefits"))
    assert world.server.requests == []  # no Connect API moves a live voice contact
