"""The example contact flow (deploy/connect/contact-flow.json), in Amazon Connect's flow
language: its structure (every transition lands on an action, every action is reachable,
every error an action can raise has a branch), what it sends the Lambda and reads back
(exactly the contract's step/digits and answer keys), and a walk through it with a small
interpreter of the actions it uses, driven by callguard's answers and a caller's keys."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

FLOW_FILE = Path(__file__).resolve().parents[2] / "deploy" / "connect" / "contact-flow.json"
FLOW: dict[str, Any] = json.loads(FLOW_FILE.read_text(encoding="utf-8"))
ACTIONS = {action["Identifier"]: action for action in FLOW["Actions"]}
CONTRACT_KEYS = {"next", "prompt", "department", "queue", "queue_arn", "recorded"}
MENU_STEP = "$.External.menu_step"
# The errors each action type can raise (Connect's flow language reference): each must be
# handled, and none other may be declared.
ERRORS = {
    "UpdateContactTextToSpeechVoice": set(),
    "InvokeLambdaFunction": {"NoMatchingError"},
    "Compare": {"NoMatchingCondition"},
    "GetParticipantInput": {"NoMatchingError"},  # with StoreInput True
    "MessageParticipant": {"NoMatchingError"},
    "UpdateContactTargetQueue": {"NoMatchingError"},
    "TransferContactToQueue": {"QueueAtCapacity", "NoMatchingError"},
    "DisconnectParticipant": set(),
}
# Connect's rules for an Identifier: up to 50 characters, none of these.
BAD_IDENTIFIER = re.compile(r"[%:()\\/=$,;\[\]{}]")
PLACEHOLDERS = {"Forwarder.Arn", "FallbackQueueArn", "FallbackPrompt", "Voice"}


def targets(action: dict[str, Any]) -> list[str]:
    transitions = action["Transitions"]
    found = [transitions["NextAction"]] if "NextAction" in transitions else []
    found += [c["NextAction"] for c in transitions.get("Conditions", [])]
    found += [e["NextAction"] for e in transitions.get("Errors", [])]
    return found


def test_the_flow_is_connects_flow_language() -> None:
    assert FLOW["Version"] == "2019-10-30"
    assert FLOW["StartAction"] in ACTIONS
    assert len(ACTIONS) == len(FLOW["Actions"]), "identifiers are unique"
    for ident, action in ACTIONS.items():
        assert set(action) == {"Identifier", "Type", "Parameters", "Transitions"}, ident
        assert len(ident) <= 50 and not BAD_IDENTIFIER.search(ident), ident
        assert action["Type"] in ERRORS, f"{ident}: {action['Type']} is not modelled here"
    assert set(FLOW["Metadata"]["ActionMetadata"]) == set(ACTIONS)


def test_every_transition_lands_on_an_action() -> None:
    for ident, action in ACTIONS.items():
        for target in targets(action):
            assert target in ACTIONS, f"{ident} -> {target}"


def test_every_action_is_reachable() -> None:
    seen, todo = set(), [FLOW["StartAction"]]
    while todo:
        ident = todo.pop()
        if ident not in seen:
            seen.add(ident)
            todo.extend(targets(ACTIONS[ident]))
    assert seen == set(ACTIONS)


def test_every_error_is_handled_and_only_errors_that_exist() -> None:
    for ident, action in ACTIONS.items():
        declared = [e["ErrorType"] for e in action["Transitions"].get("Errors", [])]
        assert sorted(declared) == sorted(ERRORS[action["Type"]]), ident
        ends = action["Type"] == "DisconnectParticipant"
        assert ("NextAction" in action["Transitions"]) is not ends, ident


def test_the_lambda_is_asked_exactly_what_the_contract_says() -> None:
    lambdas = [a for a in ACTIONS.values() if a["Type"] == "InvokeLambdaFunction"]
    sent = sorted(json.dumps(a["Parameters"]["LambdaInvocationAttributes"]) for a in lambdas)
    assert sent == sorted(
        json.dumps(p)
        for p in (
            {"step": "arrive"},
            # menu_step (an extension): the step callguard's last answer named, passed
            # back so that a repeated call is recognised as the same answer.
            {"step": "digits", "digits": "$.StoredCustomerInput", "menu_step": MENU_STEP},
            {"step": "digits", "digits": "", "menu_step": MENU_STEP},  # nothing pressed
        )
    )
    for action in lambdas:
        parameters = action["Parameters"]
        assert parameters["LambdaFunctionARN"] == "${Forwarder.Arn}"
        assert parameters["ResponseValidation"] == {"ResponseType": "STRING_MAP"}
        # Connect's most: the forwarder's own fail-safe (after 3 s) arrives well inside it.
        assert parameters["InvocationTimeLimitSeconds"] == "8"


def test_the_flow_reads_only_the_contracts_keys() -> None:
    text = FLOW_FILE.read_text(encoding="utf-8")
    read = set(re.findall(r"\$\.External\.(\w+)", text))
    assert read == {"next", "prompt", "queue_arn", "menu_step"}
    assert read <= CONTRACT_KEYS | {"menu_step"}  # menu_step: callguard's extension
    paths = set(re.findall(r'"(\$\.[\w.]+)"', text))
    assert paths <= {f"$.External.{k}" for k in read} | {"$.StoredCustomerInput"}


def test_the_flow_never_enables_recording() -> None:
    """callguard starts recording itself (StartContactRecording, once the notice has been
    played and the caller could opt out): a recording block here would record everyone."""
    assert not [a for a in ACTIONS.values() if "Recording" in a["Type"]]
    assert "StartContactRecording" in FLOW["Metadata"]["description"]


def test_the_only_placeholders_are_the_templates() -> None:
    text = FLOW_FILE.read_text(encoding="utf-8")
    assert set(re.findall(r"\$\{([^}]*)\}", text)) == PLACEHOLDERS


def test_the_menu_takes_one_key_and_stores_it() -> None:
    menu = next(a for a in ACTIONS.values() if a["Type"] == "GetParticipantInput")
    parameters = menu["Parameters"]
    assert parameters["StoreInput"] == "True"
    assert parameters["InputValidation"] == {"CustomValidation": {"MaximumLength": "1"}}
    assert parameters["Text"] == "$.External.prompt"
    assert 0 < int(parameters["InputTimeLimitSeconds"]) <= 10


# ---- a walk through the flow ---------------------------------------------------------

FALLBACK_ARN = "arn:aws:connect:eu-west-2:111122223333:instance/i-1/queue/fallback"
REVENUES_ARN = "arn:aws:connect:eu-west-2:111122223333:instance/i-1/queue/revenues"
SUBSTITUTED = {
    "${Forwarder.Arn}": "arn:aws:lambda:eu-west-2:111122223333:function:forwarder",
    "${FallbackQueueArn}": FALLBACK_ARN,
    "${FallbackPrompt}": "Thank you for calling. Please hold.",
    "${Voice}": "Amy",
}


class LambdaFailed(Exception):
    """The Lambda invocation itself failed (Connect's NoMatchingError on the block)."""


class Walk:
    """Runs the flow the way Connect would for the actions it uses. `callguard` answers each
    Lambda invocation (or raises LambdaFailed); `keys` are what the caller presses in turn
    (None: nothing, the menu times out); `full` are the queues at capacity."""

    def __init__(
        self,
        callguard: Callable[[dict[str, str]], dict[str, str]],
        keys: list[str | None] = (),  # type: ignore[assignment]
        full: set[str] = frozenset(),  # type: ignore[assignment]
    ) -> None:
        text = FLOW_FILE.read_text(encoding="utf-8")
        for placeholder, value in SUBSTITUTED.items():
            text = text.replace(placeholder, value)
        self.actions = {a["Identifier"]: a for a in json.loads(text)["Actions"]}
        self.start = FLOW["StartAction"]
        self.callguard, self.keys, self.full = callguard, list(keys), full
        self.data: dict[str, Any] = {"External": {}, "StoredCustomerInput": None}
        self.asked: list[dict[str, str]] = []
        self.said: list[str] = []
        self.queue: str | None = None
        self.end: tuple[str, str | None] | None = None

    def value(self, text: str) -> Any:
        if not text.startswith("$."):
            return text
        node: Any = self.data
        for part in text[2:].split("."):
            node = node.get(part, "") if isinstance(node, dict) else ""
        return node

    def run(self) -> Walk:
        ident: str | None = self.start
        for _ in range(200):
            if ident is None:
                return self
            ident = self.step(self.actions[ident])
        raise AssertionError("the flow did not end")

    def step(self, action: dict[str, Any]) -> str | None:
        kind, parameters, transitions = action["Type"], action["Parameters"], action["Transitions"]

        def error(name: str) -> str:
            return next(e["NextAction"] for e in transitions["Errors"] if e["ErrorType"] == name)

        if kind == "InvokeLambdaFunction":
            sent = {k: self.value(v) for k, v in parameters["LambdaInvocationAttributes"].items()}
            self.asked.append(sent)
            try:
                self.data["External"] = self.callguard(sent)
            except LambdaFailed:
                return error("NoMatchingError")
        elif kind == "Compare":
            value = self.value(parameters["ComparisonValue"])
            for condition in transitions.get("Conditions", []):
                if condition["Condition"]["Operands"] == [value]:
                    return condition["NextAction"]
            return error("NoMatchingCondition")
        elif kind == "GetParticipantInput":
            self.said.append(self.value(parameters["Text"]))
            key = self.keys.pop(0) if self.keys else None
            # Store customer input records a timeout as the text "Timeout".
            self.data["StoredCustomerInput"] = "Timeout" if key is None else key
        elif kind == "MessageParticipant":
            text = self.value(parameters["Text"])
            if not text:  # nothing to say: take the error branch, as Connect may
                return error("NoMatchingError")
            self.said.append(text)
        elif kind == "UpdateContactTargetQueue":
            queue = self.value(parameters["QueueId"])
            if not queue.startswith("arn:aws:connect:"):
                return error("NoMatchingError")
            self.queue = queue
        elif kind == "TransferContactToQueue":
            if self.queue in self.full:
                return error("QueueAtCapacity")
            self.end = ("queued", self.queue)
            return None  # the contact is in the queue: this flow is done with it
        elif kind == "DisconnectParticipant":
            self.end = self.end or ("hung up", None)
            return None
        return transitions["NextAction"]


def answer(**changes: str) -> dict[str, str]:
    base = {
        "next": "queue",
        "prompt": "",
        "department": "revenues",
        "queue": "revenues",
        "queue_arn": REVENUES_ARN,
        "recorded": "true",
    }
    return {**base, **changes}


def scripted(*answers: dict[str, str] | Exception) -> Callable[[dict[str, str]], Any]:
    remaining = list(answers)

    def callguard(sent: dict[str, str]) -> dict[str, str]:
        reply = remaining.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    return callguard


def test_a_direct_line_is_queued_where_callguard_says() -> None:
    walk = Walk(scripted(answer(prompt="Please hold."))).run()
    assert walk.asked == [{"step": "arrive"}]
    assert walk.said == ["Please hold."]
    assert walk.end == ("queued", REVENUES_ARN)


def test_an_empty_prompt_goes_to_the_queue_without_a_word() -> None:
    walk = Walk(scripted(answer(prompt=""))).run()
    assert walk.said == []
    assert walk.end == ("queued", REVENUES_ARN)


def test_the_menu_loops_until_callguard_answers_queue() -> None:
    walk = Walk(
        scripted(
            answer(next="menu", prompt="Press 1 for council tax, 2 for housing.", menu_step="1"),
            answer(
                next="menu",
                prompt="Calls are recorded. Press 9 not to be recorded.",
                menu_step="2",
            ),
            answer(prompt="Please hold."),
        ),
        keys=["1", None],
    ).run()
    assert walk.asked == [
        {"step": "arrive"},
        {"step": "digits", "digits": "1", "menu_step": "1"},
        {"step": "digits", "digits": "", "menu_step": "2"},  # the timeout: no digits
    ]
    assert walk.said == [
        "Press 1 for council tax, 2 for housing.",
        "Calls are recorded. Press 9 not to be recorded.",
        "Please hold.",
    ]
    assert walk.end == ("queued", REVENUES_ARN)


NOTICE = SUBSTITUTED["${FallbackPrompt}"]


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        ([LambdaFailed()], [NOTICE]),
        ([answer(next="hangup")], [NOTICE]),
        ([answer(next="menu", prompt="Press 1."), LambdaFailed()], ["Press 1.", NOTICE]),
        # The queue's own prompt (empty here) was already spoken: no second notice.
        ([answer(queue_arn="")], []),
        ([answer(queue_arn="revenues")], []),
    ],
    ids=["lambda-failed", "unknown-next", "failed-after-menu", "no-queue-arn", "not-an-arn"],
)
def test_anything_unusable_ends_in_the_fallback_queue(failure: list[Any], said: list[str]) -> None:
    walk = Walk(scripted(*failure), keys=["1"]).run()
    assert walk.end == ("queued", FALLBACK_ARN)
    assert walk.said == said


def test_the_forwarders_fail_safe_answer_reaches_the_fallback_queue() -> None:
    fail_safe = answer(
        prompt="Thank you for calling.",
        department="",
        queue="callguard-fallback",
        queue_arn=FALLBACK_ARN,
        recorded="false",
    )
    walk = Walk(scripted(fail_safe)).run()
    assert walk.said == ["Thank you for calling."]
    assert walk.end == ("queued", FALLBACK_ARN)


def test_a_full_department_queue_falls_back_and_a_full_fallback_hangs_up_politely() -> None:
    walk = Walk(scripted(answer()), full={REVENUES_ARN}).run()
    assert walk.end == ("queued", FALLBACK_ARN)
    walk = Walk(scripted(LambdaFailed()), full={FALLBACK_ARN}).run()
    assert walk.end == ("hung up", None)
    assert walk.said[-1].startswith("Sorry, we cannot take your call")
