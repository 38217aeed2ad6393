"""Issue 7, faults: Twilio answering 5xx or 429, timing out, or refusing the connection,
while a call is queued and an agent pauses for a payment. The Twilio adapter runs against
the Twilio-compatible server (every request checked against Twilio's OpenAPI).

For each fault the tests state what the CALLER hears (TwiML), what the AGENT sees (the
people's API answer), what the AUDIT LOG holds, and that nothing is lost: once the fault
clears, the reconciler brings the platform to the policy's state, and every step (the
failures included) is in the log.

(Database faults: tests/api/test_fail_safe.py and tests/e2e/test_outage.py, which also
kills the server with SIGKILL between the journal's fsync and the database write.)"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from app.audit.log import events_for
from app.calls.reconcile import START_UNCERTAIN
from app.config import load_settings
from app.main import create_app
from app.people.users import Role
from app.platforms.twilio.rest import TwilioProvider
from app.runtime.services import Services, build_services
from app.storage.db import unit_of_work
from app.storage.models import Call
from tests.factories import MAIN_NUMBER, Platform, bearer, make_user, new_call_sid
from tests.twilio_fake.server import FakeTwilioServer

TIMEOUT = 0.3  # the adapter's per-request timeout in these tests (10 s in service)


def _dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed: nothing listens


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@dataclass
class Desk:
    platform: Platform
    services: Services
    provider: TwilioProvider
    fake: FakeTwilioServer
    token: str

    def queue(self) -> tuple[str, str]:
        """A caller through the menu to Contact Harlow: (call SID, the TwiML they got)."""
        call_sid = new_call_sid()
        self.fake.platform.add_call(call_sid)
        self.platform.voice(call_sid, MAIN_NUMBER)
        return call_sid, self.platform.ivr(call_sid, 1, "1").text

    def pause(self, call_sid: str):  # type: ignore[no-untyped-def]
        return self.platform.client.post(
            f"/api/v1/calls/{call_sid}/payment/start", headers=bearer(self.token)
        )

    def call(self, call_sid: str) -> Call:
        with self.services.sessions() as session:
            call = session.get(Call, call_sid)
            assert call is not None
            return call

    def events(self, call_sid: str) -> list[str]:
        with self.services.sessions() as session:
            return [e.type for e in events_for(session, call_sid=call_sid)]

    def at_platform(self, call_sid: str) -> list[str]:
        return [r.status.value for r in self.fake.platform.recordings(call_sid)]

    def minute_later(self, call_sid: str) -> None:
        """As if START_UNCERTAIN had passed since the failed start."""
        with unit_of_work(self.services.sessions) as session:
            call = session.get(Call, call_sid)
            assert call is not None
            assert call.start_pending_until is not None
            call.start_pending_until -= START_UNCERTAIN

    def point_at(self, base_url: str) -> None:
        """Move the adapter to another API address (a refused connection and back). Its
        SDK clients are per thread and hold the address: they are dropped."""
        self.provider.api_base_url = base_url
        self.provider._local = threading.local()


@pytest.fixture
def desk(migrated_url, twilio_server, tmp_path, monkeypatch) -> Iterator[Desk]:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(
        database_url=migrated_url,
        provider="twilio",
        twilio_account_sid=twilio_server.account_sid,
        twilio_auth_token=twilio_server.auth_token,
        twilio_api_base_url=twilio_server.base_url,
        public_base_url="https://calls.example.gov.uk",
    )
    provider = TwilioProvider(
        twilio_server.account_sid, twilio_server.auth_token, twilio_server.base_url, TIMEOUT
    )
    services = build_services(settings, provider=provider)
    with TestClient(create_app(settings, services), base_url=settings.public_base_url) as c:
        token = make_user(services, "ann", Role.SUPERVISOR)
        # The fake's platform holds the recording callbacks Twilio would send.
        platform = Platform(c, settings, twilio_server.platform)  # type: ignore[arg-type]
        yield Desk(platform, services, provider, twilio_server, token)
    services.close()


# Each fault, made to last `times` requests of `operation`; `clear` undoes it early.
Fault = Callable[[Desk, str, int], Callable[[], None]]


def _status(status: int) -> Fault:
    def make(desk: Desk, operation: str, times: int) -> Callable[[], None]:
        desk.fake.inject(operation, status=status, times=times)
        return desk.fake.reset_injections

    return make


def _timeout(desk: Desk, operation: str, times: int) -> Callable[[], None]:
    # Twilio is slow, not down: each request is served after the adapter gave up.
    desk.fake.inject(operation, delay=TIMEOUT * 2, times=times)
    return desk.fake.reset_injections


def _refused(desk: Desk, operation: str, times: int) -> Callable[[], None]:
    # Nothing listens: every operation fails while it lasts, whatever `times` says.
    live = desk.provider.api_base_url
    desk.point_at(_dead_url())
    return lambda: desk.point_at(live)


FAULTS: dict[str, Fault] = {
    "500": _status(500),
    "503": _status(503),
    "429": _status(429),
    "timeout": _timeout,
    "refused": _refused,
}


@pytest.mark.parametrize("kind", sorted(set(FAULTS) - {"refused"}))
def test_one_failed_pause_is_retried_and_the_agent_is_not_held_up(desk: Desk, kind: str) -> None:
    call_sid, _ = desk.queue()
    FAULTS[kind](desk, "pause", 1)
    response = desk.pause(call_sid)
    # Agent: confirmed, card details may be taken (a pause is absolute: repeating it after
    # a timeout that Twilio carried out anyway is harmless).
    assert response.status_code == 200, response.text
    assert response.json()["confirmed"] is True
    assert desk.at_platform(call_sid) == ["paused"]
    # Audit: the failure is there, as a retry, before the confirmed pause.
    events = desk.events(call_sid)
    assert events.index("provider.retry") < events.index("recording.paused")


def test_a_start_refused_with_429_is_retried_at_once(desk: Desk) -> None:
    """429 means Twilio did not act: safe to repeat while the caller is being queued. (After
    a 5xx or a timeout it may have: the sweep, not a blind retry, handles those; below.)"""
    FAULTS["429"](desk, "start", 1)
    call_sid, twiml = desk.queue()
    assert "<Enqueue>contact-harlow</Enqueue>" in twiml
    assert desk.at_platform(call_sid) == ["in-progress"]
    assert desk.call(call_sid).recording == "recording"
    events = desk.events(call_sid)
    assert events.index("provider.retry") < events.index("recording.started")


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_a_lasting_fault_never_blocks_the_caller_and_converges_once_cleared(
    desk: Desk, kind: str
) -> None:
    clear = FAULTS[kind](desk, "start", 50)
    call_sid, twiml = desk.queue()
    # Caller: still queued to an agent; the outage costs a recording, never the call.
    assert "<Enqueue>contact-harlow</Enqueue>" in twiml
    call = desk.call(call_sid)
    # Not recorded, and callguard knows it (confirmed off, desired recording).
    assert (call.desired, call.recording) == ("recording", "off")
    assert desk.events(call_sid)[-1] == "recording.start_failed"
    if kind != "timeout":  # a timed-out request may still have been carried out
        assert desk.at_platform(call_sid) == []

    clear()
    if kind == "timeout":
        wait_for(lambda: desk.at_platform(call_sid) == ["in-progress"])
    assert all(r.status_code == 204 for r in desk.platform.deliver_callbacks())
    if kind == "timeout":
        # Twilio did start it, late: its in-progress callback tells callguard, and no
        # second recording is started.
        assert desk.call(call_sid).recording == "recording"
        desk.services.reconciler.sweep()
    else:
        # Whether Twilio acted is unknown for a while: no second start within a minute
        # (START_UNCERTAIN) unless its callback says so; after that the sweep starts one.
        desk.services.reconciler.sweep()
        assert desk.at_platform(call_sid) == []
        desk.minute_later(call_sid)
        assert desk.services.reconciler.sweep() == 1
    assert desk.call(call_sid).recording == "recording"
    assert desk.at_platform(call_sid) == ["in-progress"]
    assert "recording.started" in desk.events(call_sid)


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_a_pause_that_cannot_be_confirmed_tells_the_agent_not_to_take_card_details(
    desk: Desk, kind: str
) -> None:
    call_sid, _ = desk.queue()
    clear = FAULTS[kind](desk, "pause", 50)
    response = desk.pause(call_sid)
    # Agent: the unmistakable refusal, not a silent success.
    assert response.status_code == 503
    assert response.json() == {
        "error": "pause_not_confirmed",
        "detail": "NOT paused — do not take card details",
        "confirmed": False,
    }
    call = desk.call(call_sid)
    assert (call.payment_in_progress, call.desired, call.recording) == (True, "paused", "recording")
    events = desk.events(call_sid)
    assert "recording.pause_failed" in events
    assert events[-1] == "payment.pause_unconfirmed"

    # The fault clears: the sweep pauses it (no card details were taken meanwhile).
    clear()
    desk.services.reconciler.sweep()
    assert desk.call(call_sid).recording == "paused"
    assert desk.at_platform(call_sid) == ["paused"]
    assert desk.events(call_sid)[-1] == "recording.paused"
    # And the agent's next try is confirmed at once.
    assert desk.pause(call_sid).json()["confirmed"] is True
