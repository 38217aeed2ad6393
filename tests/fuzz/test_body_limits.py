"""Oversized bodies are refused with 413 before anything reads or stores them
(app/api/limits.py): by Content-Length, chunked without one, or lying about it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from app.api.limits import MAX_BODY_BYTES
from app.people.users import Role
from app.runtime.services import Services
from app.storage.models import Call
from tests.factories import ACCOUNT_SID, MAIN_NUMBER, Platform, bearer, make_user, new_call_sid
from tests.fuzz.common import row_counts

VOICE = "/webhooks/twilio/voice"
FORM = "application/x-www-form-urlencoded"


def _voice_form(size: int) -> tuple[dict[str, str], bytes]:
    """A voice webhook's form, padded (with a field Twilio might add) to exactly `size`
    bytes once encoded."""
    params = {
        "AccountSid": ACCOUNT_SID,
        "CallSid": new_call_sid(),
        "From": "+447700900123",
        "To": MAIN_NUMBER,
        "CallStatus": "ringing",
        "Direction": "inbound",
        "Padding": "",
    }
    params["Padding"] = "x" * (size - len(urlencode(params)))
    body = urlencode(params).encode()
    assert len(body) == size
    return params, body


def _signed_voice(
    platform: Platform, size: int, *, chunked: bool = False, headers: dict[str, str] | None = None
) -> tuple[str, Response]:
    """Post a correctly signed voice webhook of `size` bytes: (its CallSid, the answer)."""
    params, body = _voice_form(size)
    sent = {
        "Content-Type": FORM,
        "X-Twilio-Signature": platform.sign(VOICE, params),
        **(headers or {}),
    }
    content: bytes | Iterator[bytes] = iter([body]) if chunked else body
    return params["CallSid"], platform.client.post(VOICE, content=content, headers=sent)


def _assert_refused(response: Response) -> None:
    assert response.status_code == 413, response.text
    assert response.json() == {
        "error": "payload_too_large",
        "detail": f"the request body is larger than {MAX_BODY_BYTES} bytes",
    }


def _call_exists(services: Services, call_sid: str) -> bool:
    with services.sessions() as session:
        return session.scalar(select(Call.call_sid).where(Call.call_sid == call_sid)) is not None


# -- a webhook -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("chunked", "headers"),
    [
        (False, None),
        (True, None),  # Transfer-Encoding: chunked, no Content-Length
        (False, {"Content-Length": "100"}),  # a Content-Length that lies
    ],
    ids=["content-length", "chunked", "lying-content-length"],
)
def test_signed_webhook_over_the_limit_is_refused_and_stores_nothing(
    platform: Platform, services: Services, chunked: bool, headers: dict[str, str] | None
) -> None:
    before = row_counts(services)
    call_sid, response = _signed_voice(
        platform, MAX_BODY_BYTES + 1, chunked=chunked, headers=headers
    )
    _assert_refused(response)
    assert row_counts(services) == before
    assert not _call_exists(services, call_sid)


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_signed_webhook_exactly_at_the_limit_is_applied(
    platform: Platform, services: Services, chunked: bool
) -> None:
    call_sid, response = _signed_voice(platform, MAX_BODY_BYTES, chunked=chunked)
    assert response.status_code == 200, response.text
    assert "<Gather" in response.text  # the signature held: the body arrived whole
    assert _call_exists(services, call_sid)


def test_a_maximal_taskrouter_assignment_fits(platform: Platform, services: Services) -> None:
    """The largest callback Twilio sends: 16 KiB of task and 4 KiB of worker attributes,
    all of it characters that percent-encoding triples."""
    make_user(services, "ann", Role.AGENT)
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])

    def attributes(size: int, **known: str) -> str:
        text = json.dumps(known | {"notes": ""})
        return text.replace('""', json.dumps("%" * (size - len(text))))

    task = attributes(16 * 1024, call_sid=call_sid, department="contact-harlow")
    worker = attributes(4 * 1024, callguard_user="ann", contact_uri="client:ann")
    assert (len(task), len(worker)) == (16 * 1024, 4 * 1024)
    params = {
        "AccountSid": ACCOUNT_SID,
        "WorkspaceSid": "WS" + "2" * 32,
        "WorkflowSid": "WW" + "5" * 32,
        "TaskQueueSid": "WQ" + "6" * 32,
        "TaskSid": "WT" + "3" * 32,
        "ReservationSid": "WR" + "7" * 32,
        "WorkerSid": "WK" + "4" * 32,
        "TaskAge": "42",
        "TaskPriority": "0",
        "TaskAttributes": task,
        "WorkerAttributes": worker,
    }
    assert 3 * (len(task) + len(worker)) < len(urlencode(params)) < MAX_BODY_BYTES
    response = platform.post("/webhooks/twilio/assignment", params)
    assert response.status_code == 200, response.text
    assert response.json()["to"] == "client:ann"


# -- the people's API ------------------------------------------------------------------


@pytest.fixture
def queued(platform: Platform, services: Services) -> tuple[str, dict[str, str]]:
    """A queued call and a supervisor's headers."""
    headers = bearer(make_user(services, "sue", Role.SUPERVISOR))
    return platform.queue_call(MAIN_NUMBER, ["1"]), headers


def _padded_json(payload: dict[str, object], size: int) -> bytes:
    """JSON of exactly `size` bytes (insignificant whitespace pads it)."""
    text = json.dumps(payload)
    body = (text[:-1] + " " * (size - len(text)) + "}").encode()
    assert len(body) == size
    return body


def _transfer(
    client: TestClient, call_sid: str, headers: dict[str, str], size: int, *, chunked: bool
) -> Response:
    body = _padded_json({"department": "planning"}, size)
    content: bytes | Iterator[bytes] = iter([body]) if chunked else body
    return client.post(
        f"/api/v1/calls/{call_sid}/transfer",
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_people_api_body_over_the_limit_is_refused_and_changes_nothing(
    client: TestClient, services: Services, queued: tuple[str, dict[str, str]], chunked: bool
) -> None:
    call_sid, headers = queued
    before = row_counts(services)
    response = _transfer(client, call_sid, headers, MAX_BODY_BYTES + 1, chunked=chunked)
    _assert_refused(response)
    assert row_counts(services) == before
    call = client.get(f"/api/v1/calls/{call_sid}", headers=headers).json()
    assert call["department"] == "contact-harlow"


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_people_api_body_exactly_at_the_limit_is_applied(
    client: TestClient, services: Services, queued: tuple[str, dict[str, str]], chunked: bool
) -> None:
    call_sid, headers = queued
    response = _transfer(client, call_sid, headers, MAX_BODY_BYTES, chunked=chunked)
    assert response.status_code == 200, response.text
    assert response.json()["department"] == "planning"


def test_an_endless_body_is_not_read_past_the_limit(client: TestClient) -> None:
    """Chunks keep coming (four times the limit): the middleware stops reading one chunk
    past the limit, answers 413 and never calls the route."""
    chunk = b"x" * 4096
    chunks = 4 * MAX_BODY_BYTES // len(chunk)
    reads = 0
    sent: list[dict[str, object]] = []

    async def receive() -> dict[str, object]:
        nonlocal reads
        reads += 1
        if reads > chunks:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": chunk, "more_body": reads < chunks}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "path": VOICE,
        "raw_path": VOICE.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"callguard.example.org"), (b"transfer-encoding", b"chunked")],
        "client": ("127.0.0.1", 1234),
        "server": ("callguard.example.org", 443),
        "state": {},
    }
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]  # type: ignore[operator]
    assert json.loads(sent[1]["body"])["error"] == "payload_too_large"  # type: ignore[arg-type]
    assert reads == MAX_BODY_BYTES // len(chunk) + 1
