"""TwiML: callguard's answers (app/calls/answers.py) as Twilio's XML. The builders are pure
functions of their arguments, tested by parsing the XML; the words come from
app/routing/prompts.py."""

from __future__ import annotations

import json
from collections.abc import Sequence

from twilio.twiml.voice_response import Gather, VoiceResponse

from app.calls.answers import FALLBACK_QUEUE
from app.recording_policy import Policy
from app.routing.prompts import (
    menu_prompt,
    opt_out_offer,
    recording_notice,
)

VOICE = "Polly.Amy"
LANGUAGE = "en-GB"


def _say(target: VoiceResponse | Gather, text: str) -> None:
    target.say(text, voice=VOICE, language=LANGUAGE)


def menu(
    policy: Policy,
    action_url: str,
    *,
    notice: bool,
    offer_opt_out: bool,
    preface: Sequence[str] = (),
) -> str:
    """The department menu. The notice (with the opt-out offer) comes first on a new call;
    a no-input falls through to a Redirect to the same action, so the IVR decides."""
    response = VoiceResponse()
    for text in preface:
        _say(response, text)
    gather = Gather(action=action_url, method="POST", num_digits=1, timeout=6)
    if notice:
        _say(gather, recording_notice(policy))
    elif offer_opt_out:
        _say(gather, opt_out_offer(policy))
    _say(gather, menu_prompt(policy))
    response.append(gather)
    response.redirect(action_url, method="POST")
    return str(response)


def department_notice(policy: Policy, action_url: str) -> str:
    """A recorded department dialled directly: the notice and the opt-out offer, then on."""
    response = VoiceResponse()
    gather = Gather(action=action_url, method="POST", num_digits=1, timeout=5)
    _say(gather, recording_notice(policy))
    response.append(gather)
    response.redirect(action_url, method="POST")
    return str(response)


def enqueue(
    queue: str,
    *,
    call_sid: str,
    workflow_sid: str | None,
    preface: Sequence[str] = (),
) -> str:
    """Put the call in its department's queue, or hand it to a TaskRouter workflow with the
    attributes the assignment callback reads."""
    response = VoiceResponse()
    for text in preface:
        _say(response, text)
    if workflow_sid:
        enqueue_verb = response.enqueue(workflow_sid=workflow_sid)
        enqueue_verb.task(json.dumps({"call_sid": call_sid, "department": queue}))
    else:
        response.enqueue(queue)
    return str(response)


def dial(number: str, *, action: str | None = None, preface: Sequence[str] = ()) -> str:
    """Put the caller through to another line (the non-recorded phone, the payment line).
    With `action`, the platform asks us what next when that leg ends."""
    response = VoiceResponse()
    for text in preface:
        _say(response, text)
    if action:
        response.dial(number, action=action, method="POST")
    else:
        response.dial(number)
    return str(response)


def fail_safe(record: bool, status_callback: str, notice: str) -> str:
    """When callguard cannot decide (no database, no valid policy): the call still reaches
    a person. Recorded only when CALLGUARD_FAIL_SAFE=record, and then after the notice."""
    response = VoiceResponse()
    _say(response, notice)
    if record:
        start = response.start()
        start.recording(
            recording_status_callback=status_callback,
            recording_status_callback_method="POST",
            recording_status_callback_event="in-progress completed absent",
            channels="dual",
            track="both",
        )
    response.enqueue(FALLBACK_QUEUE)
    return str(response)
