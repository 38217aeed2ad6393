"""O3 / S3: metrics and structured logs — and no phone number in either."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from app.people.users import Role
from tests.factories import (
    DEFAULT_CALLER,
    MAIN_NUMBER,
    Platform,
    bearer,
    captured_logs,
    make_user,
)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    sql = logging.getLogger("sqlalchemy.engine")
    sql.setLevel(logging.INFO)  # every statement and its parameters, as an operator might
    try:
        with captured_logs(logging.DEBUG) as stream:
            yield stream
    finally:
        sql.setLevel(logging.WARNING)


def _full_call(platform: Platform, client: TestClient, services) -> str:
    sup = bearer(make_user(services, "sup", Role.SUPERVISOR))
    gov = bearer(make_user(services, "gov", Role.GOVERNANCE))
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    platform.deliver_callbacks()
    client.post(f"/api/v1/calls/{call_sid}/payment/start", headers=sup)
    platform.ivr(call_sid, 5, "4111111111111111")  # card digits during the payment
    client.post(f"/api/v1/calls/{call_sid}/payment/end", headers=sup)
    client.post(f"/api/v1/calls/{call_sid}/opt-out", headers=sup)
    platform.hangup(call_sid)
    client.get("/api/v1/subject-access", params={"phone": "07700 900123"}, headers=gov)
    return call_sid


def test_no_phone_number_or_card_digits_in_logs_or_metrics(
    platform: Platform, client: TestClient, services, log_stream
) -> None:
    _full_call(platform, client, services)
    logs = log_stream.getvalue()
    metrics = client.get("/metrics").text
    assert logs.count("\n") > 100  # the call was logged, SQL and all…
    for secret in (
        DEFAULT_CALLER,
        DEFAULT_CALLER.removeprefix("+"),
        "7700900123",
        "07700 900123",
        "4111111111111111",
    ):
        assert secret not in logs  # …without the caller's number or card digits
        assert secret not in metrics
    for line in logs.splitlines():
        json.loads(line)  # every line is JSON


def test_requests_carry_an_id_into_their_logs(client: TestClient, log_stream) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz").headers["X-Request-ID"]
    assert len(generated) == 32
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines()]
    access = [line for line in lines if line.get("event") == "request"]
    assert {"request_id": "abc-123", "path": "/healthz", "status": 200}.items() <= access[0].items()


def test_metrics_describe_the_service(platform: Platform, client: TestClient, services) -> None:
    call_sid = _full_call(platform, client, services)
    platform.voice(call_sid, MAIN_NUMBER)  # a duplicate delivery
    client.post("/webhooks/twilio/voice", data={"CallSid": "CA1"})  # unsigned
    text = client.get("/metrics").text

    def value(sample: str) -> float:
        line = next(line for line in text.splitlines() if line.startswith(sample))
        return float(line.rsplit(" ", 1)[1])

    assert value('callguard_webhooks_total{outcome="applied",path="/webhooks/twilio/voice"}') >= 1
    assert value('callguard_webhooks_total{outcome="duplicate",path="/webhooks/twilio/voice"}') >= 1
    assert value('callguard_webhooks_total{outcome="rejected",path="/webhooks/twilio/voice"}') >= 1
    assert value('callguard_decisions_total{reason="payment_in_progress",state="paused"}') >= 1
    assert value('callguard_provider_requests_total{operation="pause",outcome="ok"}') >= 1
    assert value('callguard_provider_request_seconds_count{operation="start"}') >= 1
    assert value('callguard_pause_round_trip_seconds_count{confirmed="true"}') >= 1
    assert value('callguard_active_calls{recording="off"}') >= 0
    assert value("callguard_journal_backlog") == 0
    assert "callguard_retention_recordings_total" in text


def test_phone_shaped_values_are_masked_but_sids_are_not() -> None:
    from app.runtime.logging import mask_numbers

    event = {
        "event": "oops +447700900123 and 07700 900123",
        "n": ["01279 446655"],
        "sid": "CA0123456789012345678901234567890a",
        "count": 12,
    }
    masked = mask_numbers(None, "info", event)
    assert masked["event"] == "oops [number] and [number]"
    assert masked["n"] == ["[number]"]
    assert masked["sid"] == event["sid"]
    assert masked["count"] == 12
