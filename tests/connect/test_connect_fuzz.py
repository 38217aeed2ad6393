"""Connect's two endpoints under generated input (S1): with the right token, no body (any
JSON, or a real payload with one field replaced by anything) is ever a 5xx, and one that is
refused changes nothing; without it, every body is refused and nothing is stored."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.connect_fake.callguard import TOKEN, ConnectCallguard
from tests.fuzz.common import EXAMPLES, row_counts

pytestmark = pytest.mark.fuzz

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
PATHS = ["/webhooks/connect/flow", "/webhooks/connect/events"]
CHECKS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _replace(body: dict[str, Any], path: list[str], value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(body)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


FLOW_FIELDS = [
    ["Name"],
    ["Details"],
    ["Details", "ContactData", "ContactId"],
    ["Details", "ContactData", "InitialContactId"],
    ["Details", "ContactData", "InitiationMethod"],
    ["Details", "ContactData", "Channel"],
    ["Details", "ContactData", "InstanceARN"],
    ["Details", "ContactData", "Queue"],
    ["Details", "ContactData", "SystemEndpoint"],
    ["Details", "Parameters"],
]
EVENT_FIELDS = [
    ["id"],
    ["detail-type"],
    ["detail"],
    ["detail", "eventType"],
    ["detail", "contactId"],
    ["detail", "initialContactId"],
    ["detail", "instanceArn"],
    ["detail", "channel"],
    ["detail", "agentInfo"],
]


@CHECKS
@given(body=JSON, path=st.sampled_from(PATHS))
def test_any_json_is_never_a_server_error(
    connect_callguard: ConnectCallguard, body: Any, path: str
) -> None:
    cg = connect_callguard
    before = row_counts(cg.services)
    response = cg.client.post(path, json=body, headers={"X-Callguard-Token": TOKEN})
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert row_counts(cg.services) == before


@CHECKS
@given(
    flow_field=st.sampled_from(FLOW_FIELDS),
    event_field=st.sampled_from(EVENT_FIELDS),
    value=JSON,
)
def test_a_real_payload_with_one_field_replaced_is_never_a_server_error(
    connect_callguard: ConnectCallguard,
    flow_field: list[str],
    event_field: list[str],
    value: Any,
) -> None:
    cg = connect_callguard
    contact = cg.new_call()
    headers = {"X-Callguard-Token": TOKEN}
    for path, body in (
        (PATHS[0], _replace(cg.emulator.flow_event(contact, "arrive"), flow_field, value)),
        (PATHS[1], _replace(cg.emulator.contact_event(contact, "QUEUED"), event_field, value)),
    ):
        before = row_counts(cg.services)
        response = cg.client.post(path, content=json.dumps(body), headers=headers)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            assert row_counts(cg.services) == before


def test_deep_nesting_is_a_bad_request(connect_callguard: ConnectCallguard) -> None:
    body = "[" * 30_000 + "]" * 30_000
    response = connect_callguard.client.post(
        PATHS[0], content=body, headers={"X-Callguard-Token": TOKEN}
    )
    assert response.status_code == 400
