"""Issue 13 item 5 on the page: the console on Amazon Connect, in a real browser (Debian's
Chromium, Playwright) against a live `callguard serve` with CALLGUARD_PROVIDER=connect,
its boto3 pointed at the Connect stand-in (tests/connect_fake) and moto's S3 server.

A recorded call is put in place as `callguard simulate` plays it (the flow's Lambda calls
and EventBridge's contact events, app/platforms/connect/simulate.py): queued to Contact
Harlow, connected to the agent ann. Connect cannot move a live call through its API, so
the agent's department transfer is refused with the API's sentence naming the CCP and
changes nothing (that advice is withdrawn once the call has moved); the supervisor's move
to the non-recorded line stops recording at once and the page says what to do now in the
CCP, in the API's own words, past the next polls. Every state is screenshotted and
audited with axe, at 390 px and 1280 px."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from rich.console import Console

from app.people.users import Role
from app.platforms.connect.emulate import Emulator
from app.platforms.connect.simulate import ConnectCall, StandIn
from app.platforms.simulation import PeopleApi, number_for
from tests.connect_fake.admin import admin_routes
from tests.connect_fake.callguard import TOKEN, council_instance, ensure_bucket, s3_client
from tests.connect_fake.server import FakeConnectServer
from tests.connect_fake.state import Instance, RecordingState
from tests.e2e import test_console_browser as base
from tests.e2e.governance_pages import WIDTHS
from tests.e2e.test_console_browser import Centre, assert_fits, card, expect, open_console, shot

browser = base.browser  # the browser tests' one Chromium

CCP = "Contact Control Panel (CCP)"
NON_RECORDED_LINE = "+441632960699"  # the default policy's
CALLS_POLLED = "/api/v1/calls?active=true"


@pytest.fixture
def instance(connect_server: FakeConnectServer, s3_endpoint: str) -> Iterator[Instance]:
    """A council's instance at the stand-in, its recordings bucket in moto's S3, and the
    stand-in's own controls (with which simulate makes contacts and agents) for it."""
    made, _ = council_instance(connect_server)
    s3 = s3_client(s3_endpoint, connect_server)
    ensure_bucket(s3, connect_server.recording_bucket, connect_server.region)
    routes = connect_server.app.router.routes
    routes.insert(0, admin_routes(connect_server, made.id, s3))
    try:
        yield made
    finally:
        routes.pop(0)  # the stand-in is shared by the process's tests


@pytest.fixture
def serve_env(
    instance: Instance, connect_server: FakeConnectServer, s3_endpoint: str
) -> dict[str, str]:
    """The live service on Connect (conftest's `live` reads this): CONTRACT.md's names and
    boto3's own, as `python -m tests.connect_fake` writes them to var/connect-standin.env."""
    return {
        "CALLGUARD_PROVIDER": "connect",
        "CALLGUARD_CONNECT_INSTANCE_ID": instance.id,
        "CALLGUARD_CONNECT_TOKEN": TOKEN,
        **connect_server.env(),
        "AWS_REGION": connect_server.region,
        "AWS_ENDPOINT_URL_S3": s3_endpoint,
    }


@dataclass
class ConnectCentre:
    """The live service on Connect, the stand-in behind it, and an HTTP client."""

    centre: Centre  # its `base` and `user`; nothing of its simulator is used here
    server: FakeConnectServer
    instance: Instance
    http: httpx.Client

    def recorded_call(self, agent: str, supervisor: str) -> str:
        """A caller dials Contact Harlow's own number, hears the notice, is queued (recording
        asked for) and put through to `agent`, as `callguard simulate` plays it: the call's
        sid (its InitialContactId)."""
        people = PeopleApi(self.http, self.centre.base, supervisor)
        emulator = Emulator(self.instance.arn, TOKEN, self.http, self.centre.base)
        standin = StandIn(self.http, self.server.endpoint_url)
        call = ConnectCall(emulator, standin, people, Console(file=io.StringIO()), talk=0)
        call.dial(number_for(people.get("/policy"), "contact-harlow"), "+447700900123", "")
        call.put_through(agent)
        return call.sid

    def get(self, token: str, call_sid: str) -> dict[str, Any]:
        response = self.http.get(
            f"{self.centre.base}/api/v1/calls/{call_sid}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def recording(self, contact: str) -> RecordingState | None:
        held = self.server.contact(self.instance.id, contact).recording
        return None if held is None else held.state

    def changes(self) -> list[tuple[str | None, str | None]]:
        """What callguard asked of Connect that changes anything (not a Describe or List),
        and every contact Connect holds: a transfer would show in one or the other."""
        asked = [
            (r.operation, r.params.get("ContactId"))
            for r in self.server.requests
            if not (r.operation or "").startswith(("Describe", "List"))
        ]
        held = [("contact", c) for c in self.server.connect.instances[self.instance.id].contacts]
        return asked + held


@pytest.fixture
def connect(
    live: dict[str, Any], connect_server: FakeConnectServer, instance: Instance
) -> Iterator[ConnectCentre]:
    with httpx.Client(timeout=20) as http:
        yield ConnectCentre(Centre(live), connect_server, instance, http)


def transfer_answer(page: Any, press: Any) -> Any:
    """Does `press()` and returns the page's own POST …/transfer response."""
    with page.expect_response(lambda r: r.url.endswith("/transfer")) as answer:
        press()
    return answer.value


def after_polls(page: Any, count: int = 2) -> None:
    """Returns once the page has polled the live calls `count` more times (and re-drawn
    its cards from the answers)."""
    for _ in range(count):
        with page.expect_response(lambda r: r.url.endswith(CALLS_POLLED)):
            pass


@WIDTHS
def test_on_connect_the_console_says_what_to_do_in_the_ccp(
    browser: Any, connect: ConnectCentre, width: int
) -> None:
    ann = connect.centre.user("ann", Role.AGENT)  # named as her Connect login
    sue = connect.centre.user("sue", Role.SUPERVISOR)
    call_sid = connect.recorded_call("ann", sue)
    assert connect.recording(call_sid) == RecordingState.RECORDING

    # 1. The agent's page: the call Connect put through to her, recording.
    agent = open_console(browser, connect.centre, ann, width=width)
    mine = card(agent, call_sid)
    expect(mine.locator(".state-label")).to_have_text("RECORDING")
    expect(mine).to_contain_text("Contact Harlow")
    assert_fits(agent)
    shot(agent, f"connect-{width}-1-agent-recording")

    # 2. A department transfer from her page: Connect cannot move the call for callguard.
    before, asked = connect.get(sue, call_sid), connect.changes()
    mine.get_by_label("Transfer to").select_option(label="Housing Management")
    refused = transfer_answer(
        agent, lambda: mine.get_by_role("button", name="Transfer", exact=True).click()
    )
    assert refused.status == 409
    sentence = refused.json()["detail"]
    assert refused.json()["error"] == "transfer_unsupported" and CCP in sentence
    expect(mine.locator(".outcome")).to_have_text(f"Not transferred by callguard. {sentence}")
    expect(mine.locator(".state-label")).to_have_text("RECORDING")
    expect(mine).to_contain_text("Contact Harlow")
    # Nothing changed: the call as it was, and nothing asked of Connect or made there.
    assert connect.get(sue, call_sid) == before
    assert connect.changes() == asked
    assert connect.recording(call_sid) == RecordingState.RECORDING
    after_polls(agent)
    expect(mine.locator(".outcome")).to_contain_text(CCP)  # not wiped by the next poll
    assert_fits(agent)
    shot(agent, f"connect-{width}-2-agent-transfer-refused")

    # 3. The supervisor moves the call to the non-recorded line, with a reason.
    supervisor = open_console(browser, connect.centre, sue, width=width)
    theirs = card(supervisor, call_sid)
    expect(theirs).to_contain_text("Agent: ann")
    expect(theirs.locator(".state-label")).to_have_text("RECORDING")
    shot(supervisor, f"connect-{width}-3-supervisor-live-calls")
    theirs.get_by_role("button", name="Move to non-recorded line").click()
    dialog = supervisor.get_by_role("dialog")
    dialog.get_by_label("Reason (kept in the audit log)").fill("caller is distressed")
    moved = transfer_answer(
        supervisor, lambda: dialog.get_by_role("button", name="Move the call").click()
    )
    assert moved.status == 200
    instruction = moved.json()["instruction"]
    assert CCP in instruction and NON_RECORDED_LINE in instruction
    # Stopped at once, confirmed by Connect, before the answer came back.
    assert connect.recording(call_sid) == RecordingState.STOPPED
    expect(dialog).to_be_hidden()
    expect(theirs.locator(".state-label")).to_have_text("NOT RECORDED")
    expect(theirs.get_by_role("button", name="On the non-recorded line")).to_be_disabled()
    said = theirs.locator(".outcome")
    expect(said).to_have_text(instruction)
    expect(said).to_be_visible()
    # Still said once the page has re-drawn the card from the API's calls (which do not
    # carry it): the supervisor has yet to act in the CCP.
    after_polls(supervisor)
    expect(said).to_have_text(instruction)
    assert_fits(supervisor)
    shot(supervisor, f"connect-{width}-4-supervisor-ccp-instruction")

    # The agent's page follows by itself: not recorded, and why; the refusal's advice to
    # transfer to Housing Management in the CCP is withdrawn, no longer where it was given.
    expect(mine.locator(".state-label")).to_have_text("NOT RECORDED")
    expect(mine).to_contain_text("moved to the non-recorded line by a supervisor")
    expect(mine.locator(".outcome")).to_have_text("")
    expect(mine).not_to_contain_text(CCP)
    assert_fits(agent)
    shot(agent, f"connect-{width}-5-agent-not-recorded")
