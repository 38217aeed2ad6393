"""P2 to P6, S2: pause for payment, opt-out, transfers, the non-recorded line, assignment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from app.calls.provider import ProviderError
from app.people.users import Role
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.storage.db import unit_of_work
from app.storage.models import AuditEvent, Call, Recording, WebhookReceipt
from tests.factories import Platform, bearer, make_user

POLICY = load_policy_file(DEFAULT_POLICY_PATH)
CONTACT = POLICY.department("contact-harlow").numbers[0]
REVENUES = POLICY.department("revenues-and-benefits").numbers[0]


@dataclass
class Desk:
    """An agent with a live, recorded call assigned to them, and a supervisor."""

    client: TestClient
    platform: Platform
    services: object
    call_sid: str
    agent: dict[str, str]
    supervisor: dict[str, str]

    def post(self, action: str, who: str = "agent", **body: object):
        headers = self.agent if who == "agent" else self.supervisor
        return self.client.post(
            f"/api/v1/calls/{self.call_sid}/{action}", json=body or None, headers=headers
        )

    def call(self) -> Call:
        with self.services.sessions() as session:
            return session.get(Call, self.call_sid)

    def recordings(self) -> list[Recording]:
        with self.services.sessions() as session:
            query = select(Recording).where(Recording.call_sid == self.call_sid)
            return list(session.scalars(query.order_by(Recording.started_at)))

    def events(self, type_: str | None = None) -> list[AuditEvent]:
        with self.services.sessions() as session:
            query = select(AuditEvent).where(AuditEvent.call_sid == self.call_sid)
            if type_:
                query = query.where(AuditEvent.type == type_)
            return list(session.scalars(query.order_by(AuditEvent.sequence)))

    def platform_statuses(self) -> list[str]:
        return [r.status.value for r in self.platform.simulator.recordings(self.call_sid)]


@pytest.fixture
def make_desk(client: TestClient, platform: Platform, services) -> Callable[..., Desk]:
    counter = iter(range(1000))

    def build(number: str = CONTACT) -> Desk:
        n = next(counter)
        call_sid = platform.queue_call(number)
        agent = make_user(services, f"agent{n}", Role.AGENT)
        supervisor = make_user(services, f"super{n}", Role.SUPERVISOR)
        with unit_of_work(services.sessions) as session:
            session.get(Call, call_sid).agent = f"agent{n}"
        return Desk(client, platform, services, call_sid, bearer(agent), bearer(supervisor))

    return build


@pytest.fixture
def desk(make_desk) -> Desk:
    return make_desk()


def test_pause_for_payment_is_confirmed_and_resumes(desk: Desk) -> None:
    paused = desk.post("payment/start")
    assert paused.status_code == 200, paused.text
    body = paused.json()
    assert body["confirmed"] is True
    assert (body["recording"], body["desired"]) == ("paused", "paused")
    assert body["payment_in_progress"] is True
    assert body["reasons"] == ["payment_in_progress"]
    assert desk.platform_statuses() == ["paused"]
    pause = [args for op, args in desk.platform.simulator.requests if op == "pause"]
    assert pause == [
        {"call_sid": desk.call_sid, "recording_sid": desk.recordings()[0].recording_sid}
    ]

    resumed = desk.post("payment/end")
    assert resumed.status_code == 200
    assert (resumed.json()["recording"], resumed.json()["payment_in_progress"]) == (
        "recording",
        False,
    )
    assert desk.platform_statuses() == ["in-progress"]
    types = [e.type for e in desk.events()]
    for expected in (
        "payment.started",
        "recording.pause_requested",
        "recording.paused",
        "payment.ended",
        "recording.resume_requested",
        "recording.resumed",
    ):
        assert expected in types
    started = desk.events("payment.started")[0]
    assert started.actor == desk.call().agent  # the person, not "platform"


def test_a_pause_that_fails_is_never_reported_confirmed(desk: Desk) -> None:
    desk.platform.simulator.inject_fault(
        "pause", ProviderError("Twilio is down", transient=True, status=500), times=10
    )
    response = desk.post("payment/start")
    assert response.status_code == 503
    assert response.json() == {
        "error": "pause_not_confirmed",
        "detail": "NOT paused — do not take card details",
        "confirmed": False,
    }
    assert desk.platform_statuses() == ["in-progress"]
    assert desk.call().recording == "recording"
    assert len(desk.events("provider.retry")) == 3  # 4 attempts in all
    assert desk.events("recording.pause_failed")[0].detail["status"] == 500
    assert desk.events("payment.pause_unconfirmed")


@pytest.mark.parametrize(
    "error",
    [
        ProviderError("Too Many Requests", transient=True, status=429, code=20429),
        ProviderError("SIP transfer in progress", transient=True, status=409, code=16114),
        ProviderError("timed out", transient=True, status=None),
    ],
    ids=["20429", "16114", "timeout"],
)
def test_transient_faults_are_retried_with_backoff(desk: Desk, error: ProviderError) -> None:
    desk.platform.simulator.inject_fault("pause", error, times=2)
    response = desk.post("payment/start")
    assert response.status_code == 200
    assert response.json()["confirmed"] is True
    assert len(desk.events("provider.retry")) == 2


def test_a_permanent_fault_is_not_retried(desk: Desk) -> None:
    desk.platform.simulator.inject_fault(
        "pause", ProviderError("bad request", transient=False, status=400, code=21220)
    )
    assert desk.post("payment/start").status_code == 503
    assert desk.events("provider.retry") == []


def test_a_recording_gone_at_the_platform_counts_as_not_recording(desk: Desk) -> None:
    desk.platform.simulator.inject_fault(
        "pause", ProviderError("not found", transient=False, status=404, not_found=True)
    )
    response = desk.post("payment/start")
    assert response.status_code == 200  # nothing can be recording under that SID
    assert desk.recordings()[0].status == "absent"


def test_two_recordings_on_one_call_are_each_paused_by_sid(desk: Desk) -> None:
    simulator = desk.platform.simulator
    callback = desk.platform.settings.public_base_url + "/webhooks/twilio/recording-status"
    second = simulator.start_recording(desk.call_sid, callback)  # e.g. started by another app
    desk.platform.deliver_callbacks()
    assert len(desk.recordings()) == 2
    assert desk.post("payment/start").json()["confirmed"] is True
    paused = [args["recording_sid"] for op, args in simulator.requests if op == "pause"]
    assert sorted(paused) == sorted(r.recording_sid for r in desk.recordings())
    assert second.sid in paused
    assert "Twilio.CURRENT" not in paused
    assert desk.platform_statuses() == ["paused", "paused"]


def test_payment_end_after_a_stop_opt_out_does_not_resume(desk: Desk) -> None:
    desk.post("payment/start")
    opted = desk.post("opt-out")
    assert opted.json()["action"] == "stopped"
    ended = desk.post("payment/end").json()
    assert (ended["recording"], ended["desired"]) == ("off", "off")
    assert ended["reasons"] == ["opted_out_stop"]
    assert desk.platform_statuses() == ["completed"]  # stopped, then completed


def test_opt_out_with_stop(desk: Desk) -> None:
    body = desk.post("opt-out").json()
    assert body["action"] == "stopped"
    assert (body["recording"], body["opted_out"]) == ("off", True)
    assert desk.events("opt_out.requested")[0].detail["source"] == "agent"


def test_opt_out_with_advise_email_keeps_recording(make_desk) -> None:
    desk = make_desk(REVENUES)
    body = desk.post("opt-out").json()
    assert body["action"] == "advise_email"
    assert body["email"] == POLICY.department("revenues-and-benefits").email
    assert body["recording"] == "recording"
    assert body["reasons"] == ["department_recorded", "opted_out_advise_email"]


def test_transfer_to_an_unlisted_department_stops_recording(desk: Desk) -> None:
    body = desk.post("transfer", department="planning").json()
    assert (body["department"], body["recording"]) == ("planning", "off")
    assert body["reasons"] == ["department_not_recorded"]
    ((_, args),) = [r for r in desk.platform.simulator.requests if r[0] == "redirect"]
    url = urlsplit(args["url"])
    assert url.path == "/webhooks/twilio/transfer"
    assert parse_qs(url.query) == {
        "kind": ["department"],
        "transfer": ["1"],
        "department": ["planning"],
    }
    answer = desk.platform.post(
        f"{url.path}?{url.query}", {"CallSid": desk.call_sid, "AccountSid": "AC" + "1" * 32}
    )
    assert "<Enqueue>planning</Enqueue>" in answer.text


def test_transfer_to_a_listed_department_starts_a_new_segment(desk: Desk) -> None:
    body = desk.post("transfer", department="housing-management").json()
    assert body["recording"] == "recording"
    first, second = desk.recordings()
    assert (first.department, first.status) == ("contact-harlow", "stopped")
    assert (second.department, second.status) == ("housing-management", "in-progress")
    assert body["agent"] is None  # waits in the new department's queue


def test_a_failed_transfer_leaves_everything_as_it_was(desk: Desk) -> None:
    desk.platform.simulator.inject_fault(
        "redirect",
        ProviderError("Call is not in-progress", transient=False, status=400, code=21220),
    )
    response = desk.post("transfer", department="planning")
    assert response.status_code == 502
    assert response.json()["error"] == "transfer_failed"
    assert "as they were" in response.json()["detail"]
    call = desk.call()
    assert (call.department, call.recording, call.agent) == (
        "contact-harlow",
        "recording",
        call.agent,
    )
    assert desk.platform_statuses() == ["in-progress"]
    assert desk.events("transfer.failed")


def test_agents_cannot_use_the_non_recorded_line(desk: Desk) -> None:
    response = desk.post("transfer", non_recorded_line=True, reason="distressed")
    assert response.status_code == 403
    assert desk.platform_statuses() == ["in-progress"]


def test_non_recorded_line_needs_a_reason(desk: Desk) -> None:
    response = desk.post("transfer", who="supervisor", non_recorded_line=True)
    assert response.status_code == 422


def test_non_recorded_line_is_sticky(desk: Desk) -> None:
    moved = desk.post(
        "transfer", who="supervisor", non_recorded_line=True, reason="caller distressed"
    ).json()
    assert (moved["non_recorded_line"], moved["recording"]) == (True, "off")
    assert moved["reasons"] == ["non_recorded_line"]
    event = desk.events("transfer.non_recorded_line")[0]
    assert event.detail["reason"] == "caller distressed"
    assert event.actor.startswith("super")
    # Nothing afterwards turns recording back on.
    desk.post("transfer", who="supervisor", department="housing-management")
    desk.post("payment/start", who="supervisor")
    after = desk.post("payment/end", who="supervisor").json()
    assert (after["recording"], after["desired"]) == ("off", "off")
    assert [r.status for r in desk.recordings()] == ["stopped"]
    assert desk.platform.simulator.recordings(desk.call_sid)[0].status.value == "completed"


def test_payment_line_pauses_first_and_resumes_when_the_call_returns(desk: Desk) -> None:
    body = desk.post("transfer", payment_line=True).json()
    assert (body["payment_in_progress"], body["recording"]) == (True, "paused")
    ((_, args),) = [r for r in desk.platform.simulator.requests if r[0] == "redirect"]
    url = urlsplit(args["url"])
    form = {"CallSid": desk.call_sid, "AccountSid": "AC" + "1" * 32}
    dial = desk.platform.post(f"{url.path}?{url.query}", form)
    assert POLICY.payment_line in dial.text
    back = urlsplit(dial.text.split('action="')[1].split('"')[0].replace("&amp;", "&"))
    returned = desk.platform.post(
        f"{back.path}?{back.query}", {**form, "DialCallStatus": "completed"}
    )
    assert "<Enqueue>contact-harlow</Enqueue>" in returned.text
    call = desk.call()
    assert (call.payment_in_progress, call.recording) == (False, "recording")
    assert desk.events("payment.ended")[0].actor == "platform"


def test_digits_during_a_payment_are_not_stored(desk: Desk) -> None:
    desk.post("payment/start")
    response = desk.platform.ivr(desk.call_sid, 7, "4111111111111111")
    assert response.status_code == 200
    with desk.services.sessions() as session:
        dump = " ".join(
            f"{r.dedupe_key} {r.response_body}" for r in session.scalars(select(WebhookReceipt))
        )
    events = " ".join(str(e.detail) for e in desk.events())
    # Nine digits: "4111" alone turns up in random hex call SIDs now and then.
    assert "411111111" not in dump
    assert "411111111" not in events


def test_actions_on_an_ended_call_are_refused(desk: Desk) -> None:
    desk.platform.hangup(desk.call_sid)
    response = desk.post("payment/start")
    assert response.status_code == 409


def test_agent_cannot_act_on_another_agents_call(make_desk) -> None:
    mine, theirs = make_desk(), make_desk()
    for action, body in [
        ("payment/start", {}),
        ("payment/end", {}),
        ("opt-out", {}),
        ("transfer", {"department": "planning"}),
    ]:
        response = mine.client.post(
            f"/api/v1/calls/{theirs.call_sid}/{action}", json=body or None, headers=mine.agent
        )
        assert response.status_code == 404, action
    assert theirs.platform_statuses() == ["in-progress"]


def test_supervisor_assigns_and_agents_cannot(desk: Desk, services) -> None:
    make_user(services, "newbie", Role.AGENT)
    refused = desk.post("assign", agent="newbie")
    assert refused.status_code == 403
    done = desk.post("assign", who="supervisor", agent="newbie")
    assert done.status_code == 200
    assert done.json()["agent"] == "newbie"
    assert desk.events("call.assigned")[-1].detail["source"] == "supervisor"
    unknown = desk.post("assign", who="supervisor", agent="ghost")
    assert unknown.status_code == 400


def test_sweep_retries_a_failed_resume(desk: Desk) -> None:
    desk.post("payment/start")
    desk.platform.simulator.inject_fault(
        "resume", ProviderError("down", transient=True, status=503), times=4
    )
    body = desk.post("payment/end").json()
    assert (body["desired"], body["recording"]) == ("recording", "paused")  # surfaced
    assert desk.events("recording.resume_failed")
    assert desk.services.reconciler.sweep() == 1
    assert desk.call().recording == "recording"
    assert desk.platform_statuses() == ["in-progress"]


def test_state_lives_on_the_server(desk: Desk) -> None:
    desk.post("payment/start")
    again = desk.client.get(f"/api/v1/calls/{desk.call_sid}", headers=desk.supervisor).json()
    assert (again["recording"], again["reasons"]) == ("paused", ["payment_in_progress"])


def test_the_sweep_leaves_alone_a_payment_on_a_call_with_nothing_recording(
    client: TestClient, platform: Platform, services
) -> None:
    """Paused is wanted and nothing records (here the start was refused): already as safe
    as paused, so the sweep does not revisit the call every 15 s."""
    platform.simulator.inject_fault(
        "start", ProviderError("bad request", transient=False, status=400, code=20001)
    )
    call_sid = platform.queue_call(CONTACT)
    token = make_user(services, "sue", Role.SUPERVISOR)
    response = client.post(f"/api/v1/calls/{call_sid}/payment/start", headers=bearer(token))
    assert response.json()["confirmed"] is True
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert (call.desired, call.recording, call.ended) == ("paused", "off", False)
    assert services.reconciler.sweep() == 0


def test_a_resume_of_a_recording_gone_is_followed_by_a_new_start_in_the_same_request(
    desk: Desk,
) -> None:
    """The next pass is planned in the transaction that records a tolerated failure too: a
    resume answered 404 marks the recording absent, and the same reconcile starts another."""
    assert desk.post("payment/start").status_code == 200
    desk.platform.simulator.inject_fault(
        "resume", ProviderError("not found", transient=False, status=404, not_found=True)
    )
    resumed = desk.post("payment/end")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["recording"] == "recording"
    assert [r.status for r in desk.recordings()] == ["absent", "in-progress"]
    operations = [op for op, _ in desk.platform.simulator.requests]
    assert operations[-2:] == ["resume", "start"]


def test_a_pause_takes_two_transactions_the_plan_and_the_outcome(desk: Desk) -> None:
    """Issue 17: the outcome's transaction also plans the next pass (nothing more, here),
    where a third transaction used to plan it on its own."""
    commits: list[object] = []  # units of work (on PostgreSQL the call's lock has its own)
    listener = lambda *_: commits.append(1)  # noqa: E731
    event.listen(desk.services.sessions, "after_commit", listener)
    try:
        desk.services.reconciler.reconcile(desk.call_sid, "system")  # nothing to do: one
        assert len(commits) == 1
        with unit_of_work(desk.services.sessions) as session:
            call = session.get(Call, desk.call_sid)
            call.desired = "paused"
        commits.clear()
        outcome = desk.services.reconciler.reconcile(desk.call_sid, "system")
        assert [a.kind for a in outcome.actions] == ["pause"] and outcome.confirmed
        assert len(commits) == 2
    finally:
        event.remove(desk.services.sessions, "after_commit", listener)


def test_a_payment_pause_is_planned_in_the_transaction_that_records_the_payment(
    desk: Desk,
) -> None:
    """Issue 17: with the call's lock free, the payment's fact, its decision and the pause's
    plan are one transaction; then the pause's outcome and the check that nothing records:
    three, where the fact and then a reconcile took four (and, first, the bearer token's
    look-up: a fourth unit of work, read only)."""
    commits: list[object] = []  # units of work (on PostgreSQL the call's lock has its own)
    listener = lambda *_: commits.append(1)  # noqa: E731
    event.listen(desk.services.sessions, "after_commit", listener)
    try:
        paused = desk.post("payment/start")
    finally:
        event.remove(desk.services.sessions, "after_commit", listener)
    assert paused.status_code == 200, paused.text
    assert paused.json()["confirmed"] is True and paused.json()["recording"] == "paused"
    assert len(commits) == 4
    types = [e.type for e in desk.events()]
    assert types.index("payment.started") < types.index("recording.pause_requested")
    assert types.index("recording.pause_requested") < types.index("recording.paused")
