"""The caller's answer before the platform's round trip, where that is safe: a reconcile
that can only start or resume a recording runs once the answer is sent (Reply.then, a
background task of the webhook); one that stops or pauses, or records nothing, runs before
the answer (issue 17: the IVR waited for the platform's recording start)."""

from __future__ import annotations

import logging
from typing import Any

from app.calls.events import Reply
from app.platforms.base import after_answer
from app.platforms.twilio import forms, webhooks
from app.recording_policy.model import DEFAULT_POLICY_PATH, load_policy_file
from app.runtime.services import Services
from tests.factories import ACCOUNT_SID, Platform, captured_logs, new_call_sid

POLICY = load_policy_file(DEFAULT_POLICY_PATH)
RECORDED = next(d.numbers[0] for d in POLICY.departments if d.recorded and d.numbers)


def press(services: Services, call_sid: str, digits: str) -> Reply:
    form = {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "Digits": digits}
    return services.calls.menu_answered(forms.ivr(form, 1, None), webhooks.answers(services).render)


def test_the_queue_is_answered_before_the_recording_starts(
    platform: Platform, services: Services
) -> None:
    call_sid = new_call_sid()
    assert platform.voice(call_sid, RECORDED).status_code == 200
    reply = press(services, call_sid, "1")
    assert reply.body is not None and "<Enqueue" in reply.body
    assert platform.simulator.recordings(call_sid) == []  # answered; nothing started yet
    assert reply.then is not None
    reply.then()
    assert [r.status for r in platform.simulator.recordings(call_sid)] == ["in-progress"]


def test_through_the_webhook_the_recording_starts_after_the_answer(platform: Platform) -> None:
    call_sid = platform.queue_call(RECORDED)  # TestClient runs the background task too
    assert [r.status for r in platform.simulator.recordings(call_sid)] == ["in-progress"]


def test_an_opt_out_is_carried_out_before_the_answer(
    platform: Platform, services: Services
) -> None:
    call_sid = new_call_sid()
    assert platform.voice(call_sid, RECORDED).status_code == 200
    reply = press(services, call_sid, POLICY.opt_out_digit)
    assert reply.then is None  # nothing to start: the reconcile (if any) ran before
    assert platform.simulator.recordings(call_sid) == []


def test_a_follow_up_that_fails_is_logged_and_left_to_the_sweep() -> None:
    def boom() -> None:
        raise RuntimeError("platform unreachable")

    task: Any = after_answer(Reply("<Response/>", then=boom))
    with captured_logs(logging.ERROR) as logs:
        task.func()  # what Starlette runs once the answer is sent: it does not raise
    assert "after_answer_failed" in logs.getvalue()
    assert after_answer(Reply("<Response/>")) is None
