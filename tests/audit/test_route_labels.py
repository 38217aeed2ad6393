"""Issue 14 item 1: metric labels and access-log paths come from a fixed set — the matched
route's template or `other` — so unsigned requests to made-up paths cannot grow /metrics,
put a phone number or a newline in it, or be counted as `applied`."""

from __future__ import annotations

import json
import logging

from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.factories import captured_logs

NUMBER = "+447700900123"


def webhook_samples(client: TestClient) -> dict[tuple[str, str], float]:
    families = text_string_to_metric_families(client.get("/metrics").text)
    family = next(f for f in families if f.name == "callguard_webhooks")
    return {
        (s.labels["path"], s.labels["outcome"]): s.value
        for s in family.samples
        if s.name == "callguard_webhooks_total"
    }


def templates(client: TestClient) -> set[str]:
    return {c.path for c in iter_route_contexts(client.app.routes)}  # type: ignore[attr-defined]


def test_unsigned_made_up_paths_leave_a_fixed_label_set(client: TestClient) -> None:
    known = templates(client)
    with captured_logs(logging.INFO) as stream:
        for n in range(40):  # a first round: whatever labels these make
            client.post(f"/webhooks/{NUMBER[:-2]}{n:02d}", data={"CallSid": "CA1"})
        client.post("/webhooks/twilio/voice", data={"CallSid": "CA1"})  # unsigned: 403
        client.get("/webhooks/twilio/voice")  # 405
        after_first = webhook_samples(client)
        for n in range(300):  # many more, each path new
            client.post(f"/webhooks/probe-{n}/{NUMBER}", data={"From": NUMBER})
        client.post("/webhooks/x%0Ay", data={})
        client.post("/webhooks/twilio/voice/", data={})  # a trailing slash: redirect or 404
        client.post("/webhooks/twilio/voice", data={"CallSid": "CA1"})
        client.get("/webhooks/twilio/voice")
        after_all = webhook_samples(client)
    assert set(after_all) == set(after_first)  # 300 new paths, no new label
    paths = {path for path, _ in after_all}
    assert paths <= known | {"other"}
    assert all(p == "other" or p.startswith("/webhooks/twilio/") for p in paths)
    # A 404 and a 405 are not `applied`; an unsigned request is `rejected`.
    assert ("other", "applied") not in after_all
    assert after_all[("other", "invalid")] - after_first.get(("other", "invalid"), 0) >= 302
    assert after_all[("/webhooks/twilio/voice", "rejected")] >= 2
    assert after_all[("/webhooks/twilio/voice", "invalid")] >= 2  # the 405s
    text = client.get("/metrics").text
    for written in (NUMBER, NUMBER.removeprefix("+"), "probe-", "x\ny", "x\\ny", "x%0Ay"):
        assert written not in text

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    logged = {line["path"] for line in lines if line.get("event") == "request"}
    assert logged <= known | {"other"}, logged
    assert "probe-" not in stream.getvalue() and "x\\ny" not in stream.getvalue()


def test_a_matched_route_logs_its_template(client: TestClient) -> None:
    with captured_logs(logging.INFO) as stream:
        client.get("/api/v1/calls/CA0123456789abcdef0123456789abcdef")  # 401: no token
        client.get("/healthz")
    requests = [
        json.loads(line)
        for line in stream.getvalue().splitlines()
        if json.loads(line).get("event") == "request"
    ]
    assert [(r["path"], r["status"]) for r in requests] == [
        ("/api/v1/calls/{call_sid}", 401),
        ("/healthz", 200),
    ]
