"""The Lambda forwarder (deploy/connect/lambda_forwarder.py) against a real HTTP server on
127.0.0.1 standing in for callguard's POST /webhooks/connect/flow: the event goes through
unchanged with the token, a good answer comes back as it is, and every way of failing —
slow, refused, an error status, an answer the flow could not use, missing configuration —
gives the contract's fail-safe answer, within the time the forwarder was given."""

from __future__ import annotations

import ast
import importlib.util
import json
import socket
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.fakes import Context, FakeCallguard

FORWARDER = Path(__file__).resolve().parents[2] / "deploy" / "connect" / "lambda_forwarder.py"
TOKEN = "connect-token-" + "x" * 32
CALLER = "+447700900123"
FALLBACK_ARN = (
    "arn:aws:connect:eu-west-2:111122223333:instance/"
    "11111111-2222-3333-4444-555555555555/queue/99999999-8888-7777-6666-555555555555"
)
EVENT: dict[str, Any] = {
    "Name": "ContactFlowEvent",
    "Details": {
        "ContactData": {
            "Attributes": {},
            "Channel": "VOICE",
            "ContactId": "4a573372-1f28-4e26-b97b-000000000001",
            "CustomerEndpoint": {"Address": CALLER, "Type": "TELEPHONE_NUMBER"},
            "InitialContactId": "4a573372-1f28-4e26-b97b-000000000001",
            "InitiationMethod": "INBOUND",
            "InstanceARN": "arn:aws:connect:eu-west-2:111122223333:instance/"
            "11111111-2222-3333-4444-555555555555",
            "PreviousContactId": "4a573372-1f28-4e26-b97b-000000000001",
            "Queue": None,
            "SystemEndpoint": {"Address": "+441279000001", "Type": "TELEPHONE_NUMBER"},
            # Non-ASCII on purpose: it must arrive as the same characters.
            "Name": "Révenues et Bénéfices",
        },
        "Parameters": {"step": "arrive"},
    },
}
GOOD = {
    "next": "queue",
    "prompt": "Calls to this department are recorded. Please hold.",
    "department": "revenues",
    "queue": "revenues",
    "queue_arn": FALLBACK_ARN.replace("99999999", "12121212"),
    "recorded": "true",
}


@pytest.fixture
def callguard() -> Iterator[FakeCallguard]:
    server = FakeCallguard()
    server.body = json.dumps(GOOD).encode()
    yield server
    server.close()


@pytest.fixture
def forwarder(monkeypatch: pytest.MonkeyPatch, callguard: FakeCallguard) -> types.ModuleType:
    """A fresh copy of the module (its token cache empty), configured for the fake."""
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CALLGUARD_URL", callguard.url + "/")
    monkeypatch.setenv("CALLGUARD_CONNECT_TOKEN", TOKEN)
    monkeypatch.setenv("CALLGUARD_FALLBACK_QUEUE_ARN", FALLBACK_ARN)
    spec = importlib.util.spec_from_file_location("lambda_forwarder_under_test", FORWARDER)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fail_safe(queue_arn: str = FALLBACK_ARN) -> dict[str, str]:
    return {
        "next": "queue",
        "prompt": "Thank you for calling. Please hold while we connect you to an adviser.",
        "department": "",
        "queue": "callguard-fallback",
        "queue_arn": queue_arn,
        "recorded": "false",
    }


def test_the_event_is_forwarded_unchanged_with_the_token(forwarder, callguard) -> None:
    assert forwarder.handler(EVENT, Context(8000)) == GOOD
    [(path, headers, body)] = callguard.requests
    assert path == "/webhooks/connect/flow"
    assert headers["X-Callguard-Token"] == TOKEN
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body) == EVENT
    assert body == json.dumps(EVENT, separators=(",", ":"), ensure_ascii=False).encode()
    assert "Révenues et Bénéfices".encode() in body


@pytest.mark.parametrize(
    "answer",
    [
        GOOD,
        {**GOOD, "next": "menu", "prompt": "Press 1 for council tax.", "queue_arn": ""},
        {**GOOD, "recorded": "false", "department": "", "prompt": ""},
        {**GOOD, "added_later": "callguard may add keys; the flow ignores them"},
    ],
    ids=["queue", "menu", "unrecorded", "extra-key"],
)
def test_a_good_answer_is_passed_through(forwarder, callguard, answer) -> None:
    callguard.body = json.dumps(answer).encode()
    assert forwarder.handler(EVENT, Context(8000)) == answer


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (500, json.dumps(GOOD).encode()),
        (401, b'{"error": "unauthorized"}'),
        (403, b'{"error": "forbidden"}'),
        (404, b""),
        (204, b""),
        (200, b"<html>gateway</html>"),
        (200, b'["queue"]'),
        (200, json.dumps({**GOOD, "prompt": {"text": "nested"}}).encode()),
        (200, json.dumps({**GOOD, "recorded": True}).encode()),
        (200, json.dumps({**GOOD, "next": "hangup"}).encode()),
        (200, json.dumps({**GOOD, "recorded": "yes"}).encode()),
        (200, json.dumps({k: v for k, v in GOOD.items() if k != "queue_arn"}).encode()),
        (200, json.dumps({**GOOD, "prompt": "x" * 40_000}).encode()),
    ],
    ids=[
        "500",
        "401",
        "403",
        "404",
        "204-empty",
        "not-json",
        "not-an-object",
        "nested",
        "boolean",
        "bad-next",
        "bad-recorded",
        "missing-key",
        "too-large",
    ],
)
def test_an_unusable_answer_gives_the_fail_safe(forwarder, callguard, status, body) -> None:
    callguard.status, callguard.body = status, body
    assert forwarder.handler(EVENT, Context(8000)) == fail_safe()
    assert len(callguard.requests) == 1


def test_a_slow_callguard_gives_the_fail_safe_before_it_would_answer(
    forwarder, callguard, monkeypatch
) -> None:
    monkeypatch.setenv("CALLGUARD_TIMEOUT_SECONDS", "0.5")
    callguard.delay = 10
    started = time.monotonic()
    assert forwarder.handler(EVENT, Context(8000)) == fail_safe()
    assert time.monotonic() - started < 5  # well before the server's 10 s
    assert len(callguard.requests) == 1


def test_an_answer_trickling_in_is_cut_off_at_the_timeout(
    forwarder, callguard, monkeypatch
) -> None:
    """urllib's timeout is per socket read, so a byte every 0.2 s would never trip it: the
    whole exchange is bounded, not each read."""
    monkeypatch.setenv("CALLGUARD_TIMEOUT_SECONDS", "0.5")
    callguard.drip = 0.2  # ~200 bytes: ~40 s in all
    started = time.monotonic()
    assert forwarder.handler(EVENT, Context(8000)) == fail_safe()
    assert time.monotonic() - started < 5


@pytest.mark.parametrize("configured", [None, "", "soon", "0", "-1", "nan", "inf"])
def test_the_default_timeout_is_well_under_connects_eight_seconds(
    forwarder, monkeypatch, configured
) -> None:
    if configured is not None:
        monkeypatch.setenv("CALLGUARD_TIMEOUT_SECONDS", configured)
    assert forwarder._timeout(None) == 3.0
    assert forwarder._timeout(Context(8000)) == 3.0


def test_the_invocations_remaining_time_shortens_the_wait(
    forwarder, callguard, monkeypatch
) -> None:
    monkeypatch.setenv("CALLGUARD_TIMEOUT_SECONDS", "20")
    callguard.delay = 10
    started = time.monotonic()
    assert forwarder.handler(EVENT, Context(800)) == fail_safe()
    assert time.monotonic() - started < 5
    assert len(callguard.requests) == 1


def test_no_time_left_answers_at_once_without_calling(forwarder, callguard) -> None:
    assert forwarder.handler(EVENT, Context(100)) == fail_safe()
    assert callguard.requests == []


@pytest.mark.parametrize(
    "unset", ["CALLGUARD_URL", "CALLGUARD_CONNECT_TOKEN"], ids=["no-url", "no-token"]
)
def test_missing_configuration_gives_the_fail_safe(
    forwarder, callguard, monkeypatch, unset
) -> None:
    monkeypatch.delenv(unset)
    assert forwarder.handler(EVENT, Context(8000)) == fail_safe()
    assert callguard.requests == []


def test_a_url_that_is_not_http_gives_the_fail_safe(forwarder, callguard, monkeypatch) -> None:
    monkeypatch.setenv("CALLGUARD_URL", "file:///etc/passwd")
    assert forwarder.handler(EVENT, Context(8000)) == fail_safe()


def test_a_refused_connection_gives_the_fail_safe(forwarder, monkeypatch) -> None:
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("CALLGUARD_URL", f"http://127.0.0.1:{port}")
    assert forwarder.handler(EVENT, Context(8000)) == fail_safe()


def test_a_redirect_is_not_followed_with_the_token(forwarder, callguard) -> None:
    elsewhere = FakeCallguard()
    try:
        callguard.status, callguard.body = 307, b""
        callguard.extra_headers = {"Location": elsewhere.url + "/webhooks/connect/flow"}
        assert forwarder.handler(EVENT, Context(8000)) == fail_safe()
        callguard.status = 302
        assert forwarder.handler(EVENT, Context(8000)) == fail_safe()
        assert elsewhere.requests == []
    finally:
        elsewhere.close()


def test_the_fail_safe_answer_is_configurable(forwarder, callguard, monkeypatch) -> None:
    monkeypatch.delenv("CALLGUARD_FALLBACK_QUEUE_ARN")
    monkeypatch.setenv("CALLGUARD_FALLBACK_PROMPT", "Thank you for calling Harlow Council.")
    callguard.status = 503
    assert forwarder.handler(EVENT, Context(8000)) == {
        **fail_safe(queue_arn=""),
        "prompt": "Thank you for calling Harlow Council.",
    }


def test_a_malformed_event_still_gets_an_answer(forwarder, callguard) -> None:
    callguard.status = 500
    assert forwarder.handler({"Details": "nonsense"}, Context(8000)) == fail_safe()


def test_the_log_says_why_and_never_the_callers_number(
    forwarder, callguard, monkeypatch, caplog
) -> None:
    caplog.set_level("INFO")
    callguard.status = 500
    forwarder.handler(EVENT, Context(8000))
    callguard.status, callguard.body = 200, b"not json"
    forwarder.handler(EVENT, Context(8000))
    monkeypatch.setenv("CALLGUARD_TIMEOUT_SECONDS", "0.3")
    callguard.delay = 10
    forwarder.handler(EVENT, Context(8000))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "HTTP 500" in messages[0]
    assert "not JSON" in messages[1]
    assert "no answer within 0.30 s" in messages[2]
    assert all(EVENT["Details"]["ContactData"]["ContactId"] in m for m in messages)
    assert not any(CALLER in m or CALLER[1:] in m or TOKEN in m for m in messages)


def test_a_good_answer_logs_nothing(forwarder, callguard, caplog) -> None:
    caplog.set_level("INFO")
    forwarder.handler(EVENT, Context(8000))
    assert caplog.records == []


class FakeSecretsManager:
    """Secrets Manager as boto3's client presents it: get_secret_value(SecretId=…)."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.calls: list[str] = []
        self.configs: list[Any] = []
        self.error: Exception | None = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        boto3 = types.ModuleType("boto3")
        botocore = types.ModuleType("botocore")
        config_module = types.ModuleType("botocore.config")

        class Config:
            def __init__(self, **kwargs: Any) -> None:
                self.kwargs = kwargs

        def client(service: str, config: Any = None) -> FakeSecretsManager:
            assert service == "secretsmanager"
            self.configs.append(config)
            return self

        boto3.client = client  # type: ignore[attr-defined]
        config_module.Config = Config  # type: ignore[attr-defined]
        botocore.config = config_module  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "boto3", boto3)
        monkeypatch.setitem(sys.modules, "botocore", botocore)
        monkeypatch.setitem(sys.modules, "botocore.config", config_module)

    def get_secret_value(self, SecretId: str) -> dict[str, str]:
        self.calls.append(SecretId)
        if self.error:
            raise self.error
        return {"SecretString": self.value}


@pytest.fixture
def secrets(forwarder, monkeypatch) -> FakeSecretsManager:
    fake = FakeSecretsManager(TOKEN + "\n")  # as `openssl rand -hex 32 > file` leaves it
    fake.install(monkeypatch)
    monkeypatch.delenv("CALLGUARD_CONNECT_TOKEN")
    monkeypatch.setenv("CALLGUARD_CONNECT_TOKEN_SECRET", "callguard/connect-token")
    return fake


def test_the_token_comes_from_secrets_manager_once_per_container(
    forwarder, callguard, secrets
) -> None:
    assert forwarder.handler(EVENT, Context(8000)) == GOOD
    assert forwarder.handler(EVENT, Context(8000)) == GOOD
    assert secrets.calls == ["callguard/connect-token"]
    assert [h["X-Callguard-Token"] for _, h, _ in callguard.requests] == [TOKEN, TOKEN]
    # Bounded like everything else: one attempt, within the time left.
    kwargs = secrets.configs[0].kwargs
    assert kwargs["retries"] == {"total_max_attempts": 1}
    assert 0 < kwargs["connect_timeout"] <= 3 and 0 < kwargs["read_timeout"] <= 3


def test_a_refused_token_is_read_again_next_time(forwarder, callguard, secrets) -> None:
    """After a rotation the warm container's copy is stale: a 401 drops it."""
    callguard.status = 401
    assert forwarder.handler(EVENT, Context(8000)) == fail_safe()
    callguard.status = 200
    assert forwarder.handler(EVENT, Context(8000)) == GOOD
    assert len(secrets.calls) == 2


def test_secrets_manager_failing_gives_the_fail_safe(forwarder, callguard, secrets) -> None:
    secrets.error = RuntimeError("AccessDeniedException")
    assert forwarder.handler(EVENT, Context(8000)) == fail_safe()
    assert callguard.requests == []
    secrets.error = None  # not cached: the next contact tries again
    assert forwarder.handler(EVENT, Context(8000)) == GOOD


def test_the_secret_wins_over_a_plain_token(forwarder, callguard, secrets, monkeypatch) -> None:
    monkeypatch.setenv("CALLGUARD_CONNECT_TOKEN", "stale-plain-token")
    forwarder.handler(EVENT, Context(8000))
    assert callguard.requests[0][1]["X-Callguard-Token"] == TOKEN


def test_the_forwarder_needs_nothing_but_the_standard_library() -> None:
    """It deploys as one file with no layer: boto3 (in the Lambda runtime) is the only
    exception, imported only when a secret is configured."""
    tree = ast.parse(FORWARDER.read_text())
    top_level: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            top_level.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.module != "__future__":
            top_level.add(node.module.split(".")[0])
    assert top_level <= set(sys.stdlib_module_names)
    every = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert every - set(sys.stdlib_module_names) - {"__future__"} == {"boto3", "botocore"}
