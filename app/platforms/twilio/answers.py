"""callguard's answers to a caller (app/calls/answers.py) rendered as TwiML, with the URLs
Twilio is to call back: the IVR step, the recording-status callback, the payment line's
return leg. Queues are `<Enqueue>` by department id, or a TaskRouter workflow
(CALLGUARD_TASKROUTER_WORKFLOW_SID) whose Task carries `call_sid` and `department`."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import lru_cache

from app.calls.answers import (
    FALLBACK_QUEUE,
    Answer,
    DepartmentNotice,
    Dial,
    FailSafe,
    Menu,
    Queue,
)
from app.platforms.twilio import twiml
from app.platforms.twilio.control import RECORDING_STATUS_PATH, transfer_url, webhook_url
from app.routing.prompts import FAIL_SAFE_NOTICE, FAIL_SAFE_RECORDED_NOTICE

IVR_PATH = "/webhooks/twilio/ivr"


class TwimlAnswers:
    def __init__(self, public_base_url: str, workflow_sid: str | None) -> None:
        self.public_base_url = public_base_url
        self.workflow_sid = workflow_sid

    def render(self, answer: Answer) -> str:
        match answer:
            case Menu() | DepartmentNotice():
                return _menu(self.public_base_url, answer)
            case Queue() if self.workflow_sid:  # the Task names the call: nothing to share
                return twiml.enqueue(
                    answer.department or FALLBACK_QUEUE,
                    call_sid=answer.call_sid,
                    workflow_sid=self.workflow_sid,
                    preface=answer.preface,
                )
            case Queue():
                return _enqueue(answer.department or FALLBACK_QUEUE, answer.preface)
            case Dial():
                back = (
                    transfer_url(self.public_base_url, answer.returns) if answer.returns else None
                )
                return twiml.dial(answer.number, action=back, preface=answer.preface)
            case FailSafe():
                return self.fail_safe(answer.record)

    def fail_safe(self, record: bool) -> str:
        """Also answered when the database cannot be reached."""
        return twiml.fail_safe(
            record,
            webhook_url(self.public_base_url, RECORDING_STATUS_PATH),
            FAIL_SAFE_RECORDED_NOTICE if record else FAIL_SAFE_NOTICE,
        )


# The same few answers start and queue every call, and building their XML costs more than
# the rest of the voice webhook's own Python (bench/inprocess.py): each is built once. The
# builders are pure functions of these arguments (a policy's content never changes: its
# objects compare by content, and hash as frozen models).
@lru_cache(maxsize=64)
def _menu(public_base_url: str, answer: Menu | DepartmentNotice) -> str:
    step = webhook_url(public_base_url, IVR_PATH, step=answer.step)
    if isinstance(answer, DepartmentNotice):
        return twiml.department_notice(answer.policy, step)
    return twiml.menu(
        answer.policy,
        step,
        notice=answer.notice,
        offer_opt_out=answer.offer_opt_out,
        preface=answer.preface,
    )


@lru_cache(maxsize=64)
def _enqueue(queue: str, preface: tuple[str, ...]) -> str:
    return twiml.enqueue(queue, call_sid="", workflow_sid=None, preface=preface)


def assignment_instruction(worker: Mapping[str, object]) -> Callable[[str | None], str]:
    """TaskRouter's JSON instruction: dequeue to the worker, from the number dialled."""

    def render(dialled: str | None) -> str:
        instruction: dict[str, object] = {"instruction": "dequeue"}
        contact = worker.get("contact_uri")
        if isinstance(contact, str) and contact:
            instruction["to"] = contact
        if dialled:
            instruction["from"] = dialled  # caller ID of the leg to the worker
        return json.dumps(instruction)

    return render
