"""The fake Twilio server refuses what the real API would refuse, and serves the rest."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.calls.provider import RecordingStatus
from app.platforms.simulator.resources import TWILIO_CURRENT, new_sid
from tests.twilio_fake.server import FakeTwilioServer, Violation
from tests.twilio_fake.spec import load_spec

CALLBACK = "https://callguard.example.com/webhooks/recording"


@pytest.fixture
def api(twilio_server: FakeTwilioServer) -> Iterator[httpx.Client]:
    auth = (twilio_server.account_sid, twilio_server.auth_token)
    with httpx.Client(base_url=twilio_server.base_url, auth=auth, timeout=5) as client:
        yield client


def account(server: FakeTwilioServer) -> str:
    return f"/2010-04-01/Accounts/{server.account_sid}"


def start_form(**overrides: str) -> dict[str, str]:
    form = {
        "RecordingStatusCallbackEvent": "in-progress completed absent",
        "RecordingStatusCallback": CALLBACK,
        "RecordingStatusCallbackMethod": "POST",
        "RecordingChannels": "dual",
        "RecordingTrack": "both",
    }
    form.update(overrides)
    return form


def start(api: httpx.Client, server: FakeTwilioServer, call_sid: str) -> str:
    resp = api.post(f"{account(server)}/Calls/{call_sid}/Recordings.json", data=start_form())
    assert resp.status_code == 201, resp.text
    return str(resp.json()["sid"])


def assert_rejected(
    resp: httpx.Response, server: FakeTwilioServer, status: int, code: int, text: str = ""
) -> Violation:
    """Twilio's error JSON with the right status, and exactly one recorded violation."""
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"code", "message", "more_info", "status"}
    assert body["status"] == status
    assert body["code"] == code
    assert body["more_info"] == f"https://www.twilio.com/docs/errors/{code}"
    assert text in body["message"]
    [violation] = server.take_violations()
    assert (violation.status, violation.code) == (status, code)
    return violation


# -- refusals ------------------------------------------------------------------------


def test_rejects_unknown_path(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    resp = api.get(f"{account(twilio_server)}/Recordingz.json")
    assert_rejected(resp, twilio_server, 404, 20404, "was not found")


def test_rejects_wrong_method(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    # The account-level recording can be fetched and deleted, not updated.
    resp = api.post(
        f"{account(twilio_server)}/Recordings/{new_sid('RE')}.json", data={"Status": "paused"}
    )
    assert_rejected(resp, twilio_server, 405, 20004)


def test_rejects_unknown_form_field(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    call = new_sid("CA")
    resp = api.post(
        f"{account(twilio_server)}/Calls/{call}/Recordings.json", data=start_form(PlayBeep="true")
    )
    assert_rejected(resp, twilio_server, 400, 20001, "Unknown parameter PlayBeep")
    assert twilio_server.platform.recordings(call) == []


def test_rejects_unknown_query_parameter(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    resp = api.get(f"{account(twilio_server)}/Recordings/{new_sid('RE')}.json", params={"Foo": "1"})
    assert_rejected(resp, twilio_server, 400, 20001, "Unknown query parameter Foo")


def test_rejects_bad_enum_value(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    resp = api.post(
        f"{account(twilio_server)}/Calls/{new_sid('CA')}/Recordings.json",
        data=start_form(RecordingStatusCallbackMethod="PUT"),
    )
    assert_rejected(resp, twilio_server, 400, 20001, "RecordingStatusCallbackMethod")


def test_rejects_missing_required_field(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    call = new_sid("CA")
    rec = start(api, twilio_server, call)
    resp = api.post(
        f"{account(twilio_server)}/Calls/{call}/Recordings/{rec}.json",
        data={"PauseBehavior": "skip"},
    )
    assert_rejected(resp, twilio_server, 400, 20001, "Missing required parameter Status")


@pytest.mark.parametrize("url", ["not a url", "/webhooks/recording", "ftp://example.com/x"])
def test_rejects_callback_that_is_not_an_absolute_http_url(
    api: httpx.Client, twilio_server: FakeTwilioServer, url: str
) -> None:
    resp = api.post(
        f"{account(twilio_server)}/Calls/{new_sid('CA')}/Recordings.json",
        data=start_form(RecordingStatusCallback=url),
    )
    assert_rejected(resp, twilio_server, 400, 20001, "RecordingStatusCallback")


def test_rejects_unknown_callback_event(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    resp = api.post(
        f"{account(twilio_server)}/Calls/{new_sid('CA')}/Recordings.json",
        data=start_form(RecordingStatusCallbackEvent="in-progress started"),
    )
    assert_rejected(resp, twilio_server, 400, 20001, "started")


def test_rejects_wrong_credentials(twilio_server: FakeTwilioServer) -> None:
    resp = httpx.get(
        f"{twilio_server.base_url}{account(twilio_server)}/Recordings/{new_sid('RE')}.json",
        auth=(twilio_server.account_sid, "0" * 32),
    )
    assert_rejected(resp, twilio_server, 401, 20003, "Authenticate")


def test_rejects_missing_credentials(twilio_server: FakeTwilioServer) -> None:
    resp = httpx.get(
        f"{twilio_server.base_url}{account(twilio_server)}/Recordings/{new_sid('RE')}.json"
    )
    assert_rejected(resp, twilio_server, 401, 20003)
    assert resp.headers["www-authenticate"].startswith("Basic")


def test_rejects_another_account_in_the_path(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    resp = api.get(f"/2010-04-01/Accounts/{new_sid('AC')}/Recordings/{new_sid('RE')}.json")
    assert_rejected(resp, twilio_server, 401, 20003)


def test_rejects_malformed_sid_in_the_path(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    # CallSid must match ^CA[0-9a-fA-F]{32}$.
    resp = api.post(f"{account(twilio_server)}/Calls/CA123/Recordings.json", data=start_form())
    assert_rejected(resp, twilio_server, 404, 20404, "CallSid")


def test_rejects_pause_behavior_mute(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    call = new_sid("CA")
    rec = start(api, twilio_server, call)
    resp = api.post(
        f"{account(twilio_server)}/Calls/{call}/Recordings/{rec}.json",
        data={"Status": "paused", "PauseBehavior": "mute"},
    )
    assert_rejected(resp, twilio_server, 400, 20001, "PauseBehavior")
    assert twilio_server.platform.recordings(call)[0].status is RecordingStatus.IN_PROGRESS


def test_rejects_status_completed_on_a_live_recording(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    # The spec's enum allows `completed`; Twilio only moves live recordings to
    # paused, in-progress or stopped.
    call = new_sid("CA")
    rec = start(api, twilio_server, call)
    resp = api.post(
        f"{account(twilio_server)}/Calls/{call}/Recordings/{rec}.json", data={"Status": "completed"}
    )
    assert_rejected(resp, twilio_server, 400, 20001, "Status")


def test_rejects_twilio_current_with_two_active_recordings(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    call = new_sid("CA")
    start(api, twilio_server, call)
    start(api, twilio_server, call)
    resp = api.post(
        f"{account(twilio_server)}/Calls/{call}/Recordings/{TWILIO_CURRENT}.json",
        data={"Status": "paused", "PauseBehavior": "skip"},
    )
    assert_rejected(resp, twilio_server, 400, 16108, "concurrent recordings")


def test_rejects_pausing_a_stopped_recording(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    call = new_sid("CA")
    rec = start(api, twilio_server, call)
    path = f"{account(twilio_server)}/Calls/{call}/Recordings/{rec}.json"
    assert api.post(path, data={"Status": "stopped"}).status_code == 200
    resp = api.post(path, data={"Status": "paused", "PauseBehavior": "skip"})
    assert_rejected(resp, twilio_server, 400, 21220)


def test_rejects_repeating_a_field_that_is_not_an_array(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    body = "RecordingChannels=dual&RecordingChannels=mono"
    resp = api.post(
        f"{account(twilio_server)}/Calls/{new_sid('CA')}/Recordings.json",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert_rejected(resp, twilio_server, 400, 20001, "more than once")


# -- what it accepts ------------------------------------------------------------------


def test_serves_the_recording_lifecycle(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    acc, call = account(twilio_server), new_sid("CA")
    created = api.post(f"{acc}/Calls/{call}/Recordings.json", data=start_form())
    assert created.status_code == 201
    rec = created.json()
    assert (rec["status"], rec["channels"], rec["track"], rec["call_sid"]) == (
        "in-progress",
        2,
        "both",
        call,
    )
    path = f"{acc}/Calls/{call}/Recordings/{rec['sid']}.json"
    for form, status in [
        ({"Status": "paused", "PauseBehavior": "skip"}, "paused"),
        ({"Status": "in-progress"}, "in-progress"),
        ({"Status": "stopped"}, "stopped"),
    ]:
        resp = api.post(path, data=form)
        assert (resp.status_code, resp.json()["status"]) == (200, status)
    assert api.get(path).json()["status"] == "completed"
    listed = api.get(f"{acc}/Calls/{call}/Recordings.json").json()
    assert [r["sid"] for r in listed["recordings"]] == [rec["sid"]]
    fetched = api.get(f"{acc}/Recordings/{rec['sid']}.json", params={"IncludeSoftDeleted": "true"})
    assert (fetched.status_code, fetched.json()["status"]) == (200, "completed")
    deleted = api.delete(f"{acc}/Recordings/{rec['sid']}.json")
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert twilio_server.violations == []


def test_accepts_events_as_repeated_fields(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    call = new_sid("CA")
    body = (
        "RecordingStatusCallbackEvent=in-progress&RecordingStatusCallbackEvent=completed"
        f"&RecordingStatusCallback={CALLBACK}"
    )
    resp = api.post(
        f"{account(twilio_server)}/Calls/{call}/Recordings.json",
        content=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert resp.status_code == 201, resp.text
    callback = twilio_server.platform.outbox.get_nowait()
    assert callback.params["RecordingStatus"] == "in-progress"


def test_serves_redirect_and_hangup(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    call = new_sid("CA")
    rec = start(api, twilio_server, call)
    path = f"{account(twilio_server)}/Calls/{call}.json"
    resp = api.post(
        path, data={"Url": "https://callguard.example.com/twiml/transfer", "Method": "POST"}
    )
    assert (resp.status_code, resp.json()["status"]) == (200, "in-progress")
    assert twilio_server.platform.call(call).url == "https://callguard.example.com/twiml/transfer"
    resp = api.post(path, data={"Status": "completed"})
    assert (resp.status_code, resp.json()["status"]) == (200, "completed")
    assert twilio_server.platform.recordings(call)[0].status is RecordingStatus.COMPLETED
    assert rec == twilio_server.platform.recordings(call)[0].sid


def test_records_requests_with_form_pairs(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    call = new_sid("CA")
    start(api, twilio_server, call)
    [req] = twilio_server.requests
    assert req.method == "POST"
    assert req.path == f"{account(twilio_server)}/Calls/{call}/Recordings.json"
    assert sorted(req.form) == sorted(start_form().items())


# -- fault injection --------------------------------------------------------------------


def test_injected_faults_answer_twilio_errors_and_are_not_violations(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    twilio_server.inject("start", status=429, times=2)
    path = f"{account(twilio_server)}/Calls/{new_sid('CA')}/Recordings.json"
    for _ in range(2):
        resp = api.post(path, data=start_form())
        assert (resp.status_code, resp.json()["code"]) == (429, 20429)
    assert api.post(path, data=start_form()).status_code == 201
    assert twilio_server.violations == []


def test_invalid_requests_do_not_consume_injections(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    twilio_server.inject("start", status=500)
    path = f"{account(twilio_server)}/Calls/{new_sid('CA')}/Recordings.json"
    assert api.post(path, data=start_form(Bogus="1")).status_code == 400
    twilio_server.take_violations()
    assert api.post(path, data=start_form()).status_code == 500


def test_injected_delay_then_serves(api: httpx.Client, twilio_server: FakeTwilioServer) -> None:
    twilio_server.inject("start", delay=0.3)
    path = f"{account(twilio_server)}/Calls/{new_sid('CA')}/Recordings.json"
    with pytest.raises(httpx.ReadTimeout):
        api.post(path, data=start_form(), timeout=0.1)


def test_inject_refuses_unknown_operations(twilio_server: FakeTwilioServer) -> None:
    with pytest.raises(ValueError, match="unknown operation"):
        twilio_server.inject("pauze", status=500)


# -- the checking machinery itself ------------------------------------------------------


def test_unexpected_violations_are_reported_until_expected(
    api: httpx.Client, twilio_server: FakeTwilioServer
) -> None:
    api.get(f"{account(twilio_server)}/Nope.json")
    assert [v.code for v in twilio_server.unexpected_violations()] == [20404]
    twilio_server.expect_violations(20003)
    assert len(twilio_server.unexpected_violations()) == 1
    twilio_server.expect_violations(20404)
    assert twilio_server.unexpected_violations() == []


def test_spec_is_loaded_once_and_response_check_catches_drift() -> None:
    spec = load_spec()
    assert spec is load_spec()
    op = spec.operation("CreateCallRecording")
    schema = op.responses["201"]
    assert schema is not None
    problems = spec.response_problems(schema, {"sid": 7, "status": "recording", "extra": 1})
    assert any("extra" in p for p in problems)
    assert any(".status" in p for p in problems)
    assert any(".account_sid: missing" in p for p in problems)
