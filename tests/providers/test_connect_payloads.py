"""What Connect payloads are checked against (app/platforms/connect/payloads.py) agrees with
botocore's own Connect model, and the stand-in's additions the platform relies on
(DescribeUser, a transfer's NextContacts) are answered in the model's shapes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.platforms.connect import payloads as p
from app.platforms.connect.contacts import Contacts, locations_json, parse_locations
from app.platforms.connect.people import People
from tests.connect_fake.model import load_index
from tests.connect_fake.server import FakeConnectServer

INSTANCE = "4bac84b1-24a7-456e-95fa-481dd28703f3"
ARN = f"arn:aws:connect:eu-west-2:123456789012:instance/{INSTANCE}"


def test_the_fixed_sets_are_the_models() -> None:
    model = load_index().model
    assert set(model.shape_for("ContactInitiationMethod").enum) == p.INITIATION_METHODS
    assert set(model.shape_for("Channel").enum) == p.CHANNELS
    assert p.SUCCESSORS | p.IGNORED_METHODS <= p.INITIATION_METHODS


def test_ids_numbers_queues_and_times() -> None:
    assert p.uuid(INSTANCE, "x") == INSTANCE
    for bad in (INSTANCE.upper(), INSTANCE + "0", "", None, 7):
        with pytest.raises(p.BadPayload):
            p.uuid(bad, "x")
    p.instance_of(ARN, "x", INSTANCE)
    with pytest.raises(p.BadPayload, match="another"):
        p.instance_of(ARN, "x", "00000000-0000-4000-8000-000000000000")
    queue = f"{ARN}/queue/9356674f-80ec-475f-aae0-f5e30a3dd13e"
    assert p.queue_arn(queue, INSTANCE) == queue
    assert p.queue_arn(queue + "/x", INSTANCE) is None
    assert p.number({"Address": "+441632960655", "Type": "TELEPHONE_NUMBER"}) == "+441632960655"
    assert p.number({"Address": "sip:ann@example.org"}) is None
    assert p.department("housing-management") == "housing-management"
    assert p.department("Overflow Team") is None
    assert p.moment("2026-12-01T10:00:00.123Z") == datetime(2026, 12, 1, 10, 0, 0, 123000, UTC)
    assert p.moment("9999-01-01T00:00:00Z") is None
    assert p.moment("yesterday") is None


def test_locations_are_kept_as_a_json_list_that_fits_the_column() -> None:
    stored = locations_json(["bucket-1/connect/a/CallRecordings/x.wav"])
    assert parse_locations(stored) == [("bucket-1", "connect/a/CallRecordings/x.wav")]
    assert locations_json(["b/" + "k" * 600]) is None  # read again from Connect instead
    assert parse_locations(None) is None
    assert parse_locations('["../etc/passwd", "Bad_Bucket/x"]') == []


def test_the_stand_in_describes_users_and_a_transfers_next_contacts(
    connect_server: FakeConnectServer,
) -> None:
    instance = connect_server.add_instance()
    connect_server.add_queue(instance.id, "housing-management")
    user = connect_server.add_user(instance.id, "ann.smith@harlow.gov.uk")
    first = connect_server.add_contact(instance.id)
    moved = connect_server.add_contact(
        instance.id, initiation_method="TRANSFER", previous_contact_id=first.id
    )
    client = connect_server.client()
    people = People(client, instance.id)
    assert people.name_of(user.id) == "ann.smith@harlow.gov.uk"
    assert people.name_of(user.id) == "ann.smith@harlow.gov.uk"
    assert len(connect_server.requests_for("DescribeUser")) == 1  # cached
    assert people.name_of("00000000-0000-4000-8000-000000000000") is None
    contacts = Contacts(client, instance.id)
    assert contacts.successors(first.id) == (moved.id,)
    assert contacts.successors(moved.id) == ()
    connect_server.expect_violations("ResourceNotFoundException")
