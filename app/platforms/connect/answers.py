"""callguard's answers to a caller (app/calls/answers.py) as the flat JSON object of
strings that Connect requires of a Lambda (CONTRACT.md): `next` (`menu`: speak `prompt`,
take one key, call again with step `digits`; `queue`: speak `prompt`, set the working queue
to `queue_arn`, transfer to it), `prompt`, `department`, `queue` (the department id: Connect
queues are named by department id), `queue_arn`, `recorded`, and, for a menu, `menu_step`
(an extension: the flow passes it back with the digits, so a repeated call is recognised).
The words are app/routing/prompts.py's, as on every platform."""

from __future__ import annotations

import json

from app.calls.answers import FALLBACK_QUEUE, Answer, DepartmentNotice, Dial, FailSafe, Menu, Queue
from app.platforms.connect.queues import QueueArns
from app.routing.prompts import (
    FAIL_SAFE_NOTICE,
    FAIL_SAFE_RECORDED_NOTICE,
    menu_prompt,
    opt_out_offer,
    recording_notice,
)


def _answer(next_: str, prompt: str = "", **values: str) -> str:
    answer = {
        "next": next_,
        "prompt": prompt,
        "department": "",
        "queue": "",
        "queue_arn": "",
        "recorded": "false",
        **values,
    }
    return json.dumps(answer, separators=(",", ":"), ensure_ascii=False)


def _words(*parts: str) -> str:
    return " ".join(part for part in parts if part)


class FlowAnswers:
    def __init__(self, queues: QueueArns) -> None:
        self.queues = queues

    def render(self, answer: Answer) -> str:
        match answer:
            case Menu():
                offer = (
                    recording_notice(answer.policy)
                    if answer.notice
                    else opt_out_offer(answer.policy)
                    if answer.offer_opt_out
                    else ""
                )
                prompt = _words(*answer.preface, offer, menu_prompt(answer.policy))
                return _answer("menu", prompt, menu_step=str(answer.step))
            case DepartmentNotice():
                notice = recording_notice(answer.policy)
                return _answer("menu", notice, menu_step=str(answer.step))
            case Queue():
                return self._queue(
                    answer.department, _words(*answer.preface), recorded=answer.recorded
                )
            case Dial():
                # Connect's flow dials no line for callguard (transfers are the CCP's): the
                # caller still reaches a person, unrecorded.
                return self._queue(None, _words(*answer.preface), recorded=False)
            case FailSafe():
                return self.fail_safe(answer.record)

    def fail_safe(self, record: bool) -> str:
        """Also answered when the database cannot be reached."""
        notice = FAIL_SAFE_RECORDED_NOTICE if record else FAIL_SAFE_NOTICE
        return self._queue(None, notice, recorded=record)

    def _queue(self, department: str | None, prompt: str, *, recorded: bool) -> str:
        queue = department or FALLBACK_QUEUE
        return _answer(
            "queue",
            prompt,
            department=department or "",
            queue=queue,
            queue_arn=self.queues.arn(queue),
            recorded="true" if recorded else "false",
        )
