"""TwilioProvider against the fake Twilio server: exact requests, state, error mapping."""

from __future__ import annotations

import ast
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app.calls.provider import ProviderError, RecordingStatus
from app.platforms.simulator.resources import TWILIO_CURRENT, new_call_sid, new_sid
from app.platforms.twilio.errors import error_from_response
from app.platforms.twilio.rest import TwilioProvider, recording_status
from tests.twilio_fake.server import FakeTwilioServer

CALLBACK = "https://callguard.example.com/webhooks/recording-status"


@pytest.fixture
def provider(twilio_server: FakeTwilioServer) -> TwilioProvider:
    return TwilioProvider(
        twilio_server.account_sid, twilio_server.auth_token, twilio_server.base_url, timeout=5
    )


def account_path(server: FakeTwilioServer) -> str:
    return f"/2010-04-01/Accounts/{server.account_sid}"


def only_request(server: FakeTwilioServer) -> tuple[str, str, list[tuple[str, str]]]:
    [req] = server.requests
    server.requests.clear()
    return req.method, req.path, sorted(req.form)


# -- each operation sends exactly the right request ----------------------------------------


def test_start_recording(provider: TwilioProvider, twilio_server: FakeTwilioServer) -> None:
    call = new_call_sid()
    info = provider.start_recording(call, CALLBACK)
    assert only_request(twilio_server) == (
        "POST",
        f"{account_path(twilio_server)}/Calls/{call}/Recordings.json",
        sorted(
            [
                # One field with space-separated events, as Twilio documents it.
                ("RecordingStatusCallbackEvent", "in-progress completed absent"),
                ("RecordingStatusCallback", CALLBACK),
                ("RecordingStatusCallbackMethod", "POST"),
                ("RecordingChannels", "dual"),
                ("RecordingTrack", "both"),
            ]
        ),
    )
    assert (info.call_sid, info.status) == (call, RecordingStatus.IN_PROGRESS)
    assert re.fullmatch("RE[0-9a-f]{32}", info.sid)
    assert twilio_server.platform.recordings(call) == [info]
    callback = twilio_server.platform.outbox.get_nowait()
    assert (callback.url, callback.params["RecordingStatus"]) == (CALLBACK, "in-progress")
    assert callback.params["RecordingChannels"] == "2"


def test_pause_resume_stop(provider: TwilioProvider, twilio_server: FakeTwilioServer) -> None:
    call = new_call_sid()
    rec = provider.start_recording(call, CALLBACK).sid
    twilio_server.requests.clear()
    path = f"{account_path(twilio_server)}/Calls/{call}/Recordings/{rec}.json"

    info = provider.pause_recording(call, rec)
    assert only_request(twilio_server) == (
        "POST",
        path,
        [("PauseBehavior", "skip"), ("Status", "paused")],
    )
    assert info.status is RecordingStatus.PAUSED
    assert twilio_server.platform.recordings(call)[0].status is RecordingStatus.PAUSED

    info = provider.resume_recording(call, rec)
    assert only_request(twilio_server) == ("POST", path, [("Status", "in-progress")])
    assert info.status is RecordingStatus.IN_PROGRESS

    info = provider.stop_recording(call, rec)
    assert only_request(twilio_server) == ("POST", path, [("Status", "stopped")])
    assert info.status is RecordingStatus.STOPPED
    assert twilio_server.platform.recordings(call)[0].status is RecordingStatus.COMPLETED


def test_twilio_current_reaches_the_path(
    provider: TwilioProvider, twilio_server: FakeTwilioServer
) -> None:
    call = new_call_sid()
    rec = provider.start_recording(call, CALLBACK)
    twilio_server.requests.clear()
    info = provider.pause_recording(call, TWILIO_CURRENT)
    _, path, _ = only_request(twilio_server)
    assert path.endswith(f"/Calls/{call}/Recordings/Twilio.CURRENT.json")
    assert (info.sid, info.status) == (rec.sid, RecordingStatus.PAUSED)


def test_redirect_call(provider: TwilioProvider, twilio_server: FakeTwilioServer) -> None:
    call = twilio_server.platform.add_call()
    url = "https://callguard.example.com/twiml/transfer?to=sales"
    provider.redirect_call(call, url)
    assert only_request(twilio_server) == (
        "POST",
        f"{account_path(twilio_server)}/Calls/{call}.json",
        [("Method", "POST"), ("Url", url)],
    )
    assert twilio_server.platform.call(call).url == url


def test_fetch_and_delete_recording(
    provider: TwilioProvider, twilio_server: FakeTwilioServer
) -> None:
    call = new_call_sid()
    rec = provider.start_recording(call, CALLBACK).sid
    provider.stop_recording(call, rec)
    twilio_server.requests.clear()
    path = f"{account_path(twilio_server)}/Recordings/{rec}.json"

    info = provider.fetch_recording(rec)
    assert only_request(twilio_server) == ("GET", path, [])
    assert (info.sid, info.call_sid, info.status) == (rec, call, RecordingStatus.COMPLETED)

    provider.delete_recording(rec)
    assert only_request(twilio_server) == ("DELETE", path, [])
    assert twilio_server.platform.recordings(call) == []


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "transient", "expected_code"),
    [
        (500, None, True, 20500),
        (503, None, True, 20503),
        (429, None, True, 20429),
        (400, 20429, True, 20429),  # the Twilio code alone makes it a rate limit
        # 16114: resource busy, "Retry the recording action request"; the spec lists 408
        # as UpdateCallRecording's error answer.
        (408, 16114, True, 16114),
        (400, 21220, False, 21220),
        (401, 20003, False, 20003),
    ],
)
def test_http_errors_are_classified(
    provider: TwilioProvider,
    twilio_server: FakeTwilioServer,
    status: int,
    code: int | None,
    transient: bool,
    expected_code: int,
) -> None:
    call = new_call_sid()
    rec = provider.start_recording(call, CALLBACK).sid
    twilio_server.inject("pause", status=status, code=code)
    with pytest.raises(ProviderError) as caught:
        provider.pause_recording(call, rec)
    err = caught.value
    assert (err.transient, err.status, err.code, err.not_found) == (
        transient,
        status,
        expected_code,
        False,
    )
    # One request, no retry inside the adapter.
    assert len(twilio_server.requests_for("POST", f"/Recordings/{rec}.json")) == 1


def test_injected_404_is_not_found(
    provider: TwilioProvider, twilio_server: FakeTwilioServer
) -> None:
    twilio_server.inject("delete", status=404)
    with pytest.raises(ProviderError) as caught:
        provider.delete_recording(new_sid("RE"))
    assert (caught.value.not_found, caught.value.transient, caught.value.status) == (
        True,
        False,
        404,
    )


def test_real_404_for_an_unknown_recording(
    provider: TwilioProvider, twilio_server: FakeTwilioServer
) -> None:
    twilio_server.expect_violations(20404)
    with pytest.raises(ProviderError) as caught:
        provider.fetch_recording(new_sid("RE"))
    assert (caught.value.not_found, caught.value.code, caught.value.transient) == (
        True,
        20404,
        False,
    )


def test_state_errors_are_permanent(
    provider: TwilioProvider, twilio_server: FakeTwilioServer
) -> None:
    twilio_server.expect_violations(21220, 16108)
    call = new_call_sid()
    first = provider.start_recording(call, CALLBACK).sid
    provider.stop_recording(call, first)
    with pytest.raises(ProviderError) as caught:
        provider.pause_recording(call, first)
    assert (caught.value.status, caught.value.code, caught.value.transient) == (400, 21220, False)

    provider.start_recording(call, CALLBACK)
    provider.start_recording(call, CALLBACK)
    with pytest.raises(ProviderError) as caught:
        provider.stop_recording(call, TWILIO_CURRENT)
    assert (caught.value.status, caught.value.code, caught.value.transient) == (400, 16108, False)


def test_timeout_is_transient(twilio_server: FakeTwilioServer) -> None:
    fast = TwilioProvider(
        twilio_server.account_sid, twilio_server.auth_token, twilio_server.base_url, timeout=0.2
    )
    call = new_call_sid()
    rec = fast.start_recording(call, CALLBACK).sid
    twilio_server.inject("pause", delay=0.6)
    began = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        fast.pause_recording(call, rec)
    assert time.monotonic() - began < 0.55
    assert (caught.value.transient, caught.value.status, caught.value.code) == (True, None, None)


def test_connection_refused_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again before use: nothing listens there
    dead = TwilioProvider(new_sid("AC"), "token", f"http://127.0.0.1:{port}", timeout=1)
    with pytest.raises(ProviderError) as caught:
        dead.fetch_recording(new_sid("RE"))
    assert (caught.value.transient, caught.value.status) == (True, None)


def test_wrong_credentials_are_permanent(twilio_server: FakeTwilioServer) -> None:
    twilio_server.expect_violations(20003)
    wrong = TwilioProvider(twilio_server.account_sid, "0" * 32, twilio_server.base_url, timeout=5)
    with pytest.raises(ProviderError) as caught:
        wrong.fetch_recording(new_sid("RE"))
    assert (caught.value.status, caught.value.code, caught.value.transient) == (401, 20003, False)


# -- configuration and plumbing -------------------------------------------------------------


def test_base_url_wins_over_twilio_edge_and_region(
    provider: TwilioProvider, twilio_server: FakeTwilioServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK would otherwise rewrite the host to api.<edge>.<region>.twilio.com.
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    fresh = TwilioProvider(
        twilio_server.account_sid, twilio_server.auth_token, twilio_server.base_url + "/", timeout=5
    )
    assert fresh.start_recording(new_call_sid(), CALLBACK).status is RecordingStatus.IN_PROGRESS
    assert len(twilio_server.requests) == 1


def test_concurrent_requests_from_threads(
    provider: TwilioProvider, twilio_server: FakeTwilioServer
) -> None:
    calls = [new_call_sid() for _ in range(8)]

    def lifecycle(call: str) -> RecordingStatus:
        rec = provider.start_recording(call, CALLBACK).sid
        provider.pause_recording(call, rec)
        provider.resume_recording(call, rec)
        return provider.stop_recording(call, rec).status

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lifecycle, calls))
    assert results == [RecordingStatus.STOPPED] * len(calls)
    assert len(twilio_server.requests) == 4 * len(calls)


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("in-progress", RecordingStatus.IN_PROGRESS),
        ("paused", RecordingStatus.PAUSED),
        ("stopped", RecordingStatus.STOPPED),
        ("processing", RecordingStatus.STOPPED),
        ("completed", RecordingStatus.COMPLETED),
        ("absent", RecordingStatus.ABSENT),
        ("failed", RecordingStatus.FAILED),
    ],
)
def test_recording_status_mapping(value: str, status: RecordingStatus) -> None:
    assert recording_status(value) is status


def test_unknown_recording_status_is_an_error() -> None:
    with pytest.raises(ProviderError):
        recording_status("recording")


def test_error_classification_keeps_status_and_code() -> None:
    err = error_from_response(502, None, "bad gateway")
    assert (err.transient, err.status, err.code, err.not_found) == (True, 502, None, False)
    err = error_from_response(404, 20404, "gone")
    assert (err.transient, err.not_found) == (False, True)


def test_only_the_adapter_imports_the_twilio_sdk() -> None:
    app_dir = Path(__file__).resolve().parents[2] / "app"
    sdk = ("twilio.rest", "twilio.base", "twilio.http")
    importers = set()
    for source in app_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            if any(n == m or n.startswith(m + ".") for n in names for m in sdk):
                importers.add(source.relative_to(app_dir).as_posix())
    assert importers == {"platforms/twilio/rest.py"}
