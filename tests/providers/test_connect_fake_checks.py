"""The Amazon Connect stand-in refuses input the Connect model forbids, and requests whose
SigV4 signature botocore's own signer does not reproduce.

Where boto3 would refuse client-side (or cannot send it at all), the request is signed with
botocore's SigV4Auth and sent with httpx (`send`), or the client's parameter validation is off.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.auth
import httpx
import pytest

from tests.connect_fake.model import load_index
from tests.connect_fake.server import FakeConnectServer
from tests.connect_fake.testing import ALL, World, raw_refused, refused, send


@pytest.fixture
def world(connect_server: FakeConnectServer) -> World:
    return World.build(connect_server)


# -- input against the model -----------------------------------------------------------


def test_refuses_missing_required_member(world: World) -> None:
    client = world.server.client(parameter_validation=False)
    ids = world.ids()
    del ids["InitialContactId"]
    refused(
        lambda: client.start_contact_recording(**ids, VoiceRecordingConfiguration=ALL),
        world.server,
        "InvalidParameterException",
        400,
        "InitialContactId: missing",
    )
    assert world.state() is None


@pytest.mark.parametrize("nested", [False, True])
def test_refuses_unknown_member(world: World, nested: bool) -> None:
    body: dict[str, Any] = {**world.ids(), "VoiceRecordingConfiguration": ALL}
    if nested:
        body["VoiceRecordingConfiguration"] = {**ALL, "Colour": "red"}
    else:
        body["Colour"] = "red"
    resp = send(world.server, "POST", "/contact/start-recording", body)
    assert resp.status_code == 400
    raw_refused(resp, world.server, "InvalidParameterException", "Colour: unknown member")
    assert world.state() is None


def test_refuses_unknown_query_parameter(world: World) -> None:
    resp = send(world.server, "GET", f"/queues-summary/{world.instance}", query="colour=red")
    raw_refused(resp, world.server, "InvalidParameterException", "unknown query parameter")


def test_refuses_wrong_types(world: World) -> None:
    body = {**world.ids(), "ContactId": 5, "VoiceRecordingConfiguration": ALL}
    resp = send(world.server, "POST", "/contact/start-recording", body)
    raw_refused(resp, world.server, "InvalidParameterException", "5 is not a string")
    resp = send(world.server, "GET", f"/queues-summary/{world.instance}", query="maxResults=ten")
    raw_refused(resp, world.server, "InvalidParameterException", "'ten' is not a valid integer")
    body = {**world.ids(), "VoiceRecordingConfiguration": "ALL"}
    resp = send(world.server, "POST", "/contact/start-recording", body)
    raw_refused(resp, world.server, "InvalidParameterException", "is not an object")


def test_refuses_too_long_and_out_of_range(world: World) -> None:
    # botocore checks no maximum: these reach the stand-in from boto3 as they would Connect.
    ids = {**world.ids(), "ContactId": "c" * 257}
    refused(
        lambda: world.client.start_contact_recording(**ids, VoiceRecordingConfiguration=ALL),
        world.server,
        "InvalidParameterException",
        400,
        "257 characters is above the maximum 256",
    )
    refused(
        lambda: world.client.list_queues(InstanceId=world.instance, MaxResults=1001),
        world.server,
        "InvalidParameterException",
        400,
        "1001 is above the maximum 1000",
    )
    unchecked = world.server.client(parameter_validation=False)
    refused(
        lambda: unchecked.list_queues(InstanceId=world.instance, MaxResults=0),
        world.server,
        "InvalidParameterException",
        400,
        "0 is below the minimum 1",
    )
    three = ["STANDARD", "AGENT", "STANDARD"]  # QueueTypes holds at most 2
    refused(
        lambda: world.client.list_queues(InstanceId=world.instance, QueueTypes=three),
        world.server,
        "InvalidParameterException",
        400,
        "3 items is above the maximum 2",
    )


def test_refuses_bad_enum_values(world: World) -> None:
    # botocore's client checks no enum: boto3 sends these.
    refused(
        lambda: world.client.start_contact_recording(
            **world.ids(), VoiceRecordingConfiguration={"VoiceRecordingTrack": "BOTH"}
        ),
        world.server,
        "InvalidParameterException",
        400,
        "'BOTH' is not one of",
    )
    refused(
        lambda: world.client.list_queues(InstanceId=world.instance, QueueTypes=["BOGUS"]),
        world.server,
        "InvalidParameterException",
        400,
        "QueueTypes[0]: 'BOGUS'",
    )
    # Suspend's model lists no InvalidParameterException: its bad input is a bad request.
    refused(
        lambda: world.client.suspend_contact_recording(**world.ids(), ContactRecordingType="VIDEO"),
        world.server,
        "InvalidRequestException",
        400,
        "'VIDEO' is not one of",
    )


def test_refuses_values_off_the_pattern(world: World) -> None:
    # Operations the stand-in does not serve are still checked against the model first.
    region = {"InstanceId": world.instance, "ReplicaAlias": "replica-1"}
    refused(
        lambda: world.client.replicate_instance(**region, ReplicaRegion="EU WEST 2"),
        world.server,
        "InvalidRequestException",
        400,
        "does not match",
    )
    refused(
        lambda: world.client.replicate_instance(**region, ReplicaRegion="eu-west-1"),
        world.server,
        "NotImplemented",
        501,
        "does not serve ReplicateInstance",
    )


def test_patterns_with_unicode_classes_are_checked() -> None:
    index = load_index()
    op = index.model.operation_model("CreateDataTable")
    body = {
        "Name": "Café tables",
        "TimeZone": "UTC",
        "ValueLockLevel": "NONE",
        "Status": "PUBLISHED",
    }
    _, problems = index.decode_input(op, {"InstanceId": "i"}, [], {}, json.dumps(body).encode())
    assert problems == []
    body["Name"] = "tables/2025"
    _, problems = index.decode_input(op, {"InstanceId": "i"}, [], {}, json.dumps(body).encode())
    assert len(problems) == 1 and "Name: 'tables/2025' does not match" in problems[0]


def test_refuses_a_body_that_is_not_json(world: World) -> None:
    resp = send(world.server, "POST", "/contact/start-recording", b"{not json")
    assert resp.status_code == 400
    raw_refused(resp, world.server, "SerializationException", "not JSON")


def test_refuses_a_route_no_operation_has(world: World) -> None:
    resp = send(world.server, "POST", "/contact/start-recordings", {})
    assert resp.status_code == 404
    raw_refused(resp, world.server, "UnknownOperationException", "No operation")


def test_every_operation_of_the_model_is_routed_to_itself() -> None:
    index = load_index()
    for name in index.model.operation_names:
        op = index.model.operation_model(name)
        path = re.sub(r"\{[^}]+\}", "x1", op.http["requestUri"].split("?")[0])
        matched = index.match(op.http["method"], path)
        assert matched is not None and matched[0].name == name, (name, path)
    assert index.source.name == "service-2.json.gz" and "botocore" in index.source.parts


# -- authentication ----------------------------------------------------------------------


def test_refuses_a_wrong_secret_key(world: World) -> None:
    client = world.server.client(secret_key="not-the-secret")
    refused(
        lambda: client.start_contact_recording(**world.ids(), VoiceRecordingConfiguration=ALL),
        world.server,
        "InvalidSignatureException",
        403,
        "signature we calculated",
    )
    assert world.state() is None


def test_refuses_an_unknown_access_key(world: World) -> None:
    client = world.server.client(access_key="AKIAUNKNOWNUNKNOWN00")
    refused(
        lambda: client.list_queues(InstanceId=world.instance),
        world.server,
        "UnrecognizedClientException",
        403,
        "security token",
    )


def test_refuses_a_request_altered_after_signing(world: World) -> None:
    body = {**world.ids(), "VoiceRecordingConfiguration": ALL}
    resp = send(
        world.server,
        "POST",
        "/contact/start-recording",
        body,
        tamper=lambda b: b.replace(b'"ALL"', b'"TO_AGENT"'),
    )
    assert resp.status_code == 403
    raw_refused(resp, world.server, "InvalidSignatureException", "does not match")
    assert world.state() is None


def test_refuses_missing_or_malformed_authorization(world: World) -> None:
    url = f"{world.server.endpoint_url}/queues-summary/{world.instance}"
    resp = httpx.get(url)
    assert resp.status_code == 403
    raw_refused(resp, world.server, "MissingAuthenticationTokenException", "Missing Authentication")
    resp = httpx.get(url, headers={"Authorization": "Basic dXNlcjpwYXNz"})
    raw_refused(resp, world.server, "IncompleteSignatureException", "AWS4-HMAC-SHA256")


def test_refuses_wrong_region_and_stale_signatures(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = world.server.client(region="us-east-1")
    refused(
        lambda: other.list_queues(InstanceId=world.instance),
        world.server,
        "InvalidSignatureException",
        403,
        "valid region",
    )
    past = datetime.now(UTC) - timedelta(minutes=6)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: past.replace(tzinfo=None))
    refused(
        lambda: world.client.list_queues(InstanceId=world.instance),
        world.server,
        "InvalidSignatureException",
        403,
        "Signature expired",
    )
