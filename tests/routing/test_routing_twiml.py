"""TwiML builders and routing choices, tested by parsing the XML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from app.calls.answers import FALLBACK_QUEUE
from app.platforms.twilio import twiml
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.routing.prompts import FAIL_SAFE_NOTICE, opt_out_message
from app.routing.router import (
    MAX_MENU_ATTEMPTS,
    OptOut,
    Retry,
    ToDepartment,
    ToMenu,
    choose,
    route_inbound,
)

POLICY = load_policy_file(DEFAULT_POLICY_PATH)
ACTION = "https://cg.example.org/webhooks/twilio/ivr?step=1"


def parse(xml: str) -> ET.Element:
    root = ET.fromstring(xml)
    assert root.tag == "Response"
    return root


def test_menu_with_notice_lists_every_menu_department_and_the_opt_out() -> None:
    root = parse(twiml.menu(POLICY, ACTION, notice=True, offer_opt_out=True))
    gather = root.find("Gather")
    assert gather.get("action") == ACTION and gather.get("numDigits") == "1"
    said = " ".join(s.text for s in gather.iter("Say"))
    assert said.startswith("Calls to Harlow Council may be recorded")
    assert f"press {POLICY.opt_out_digit} now" in said
    for department in POLICY.menu():
        assert f"For {department.name}, press {department.ivr_digit}." in said
    assert root.find("Redirect").text == ACTION
    assert root.find("Redirect").get("method") == "POST"


def test_menu_after_opt_out_does_not_offer_it_again() -> None:
    root = parse(twiml.menu(POLICY, ACTION, notice=False, offer_opt_out=False, preface=["Noted."]))
    assert root[0].tag == "Say" and root[0].text == "Noted."
    said = " ".join(s.text for s in root.find("Gather").iter("Say"))
    assert "not to be recorded" not in said


def test_enqueue_by_department_or_workflow() -> None:
    plain = parse(twiml.enqueue("contact-harlow", call_sid="CA1", workflow_sid=None))
    assert plain.find("Enqueue").text == "contact-harlow"
    flow = parse(twiml.enqueue("contact-harlow", call_sid="CA1", workflow_sid="WW" + "a" * 32))
    enqueue = flow.find("Enqueue")
    assert enqueue.get("workflowSid") == "WW" + "a" * 32
    assert json.loads(enqueue.find("Task").text) == {
        "call_sid": "CA1",
        "department": "contact-harlow",
    }


def test_opt_out_message_per_action() -> None:
    advise = next(d for d in POLICY.departments if d.opt_out == "advise_email")
    stop = next(d for d in POLICY.departments if d.recorded and d.opt_out == "stop")
    assert advise.email in opt_out_message(advise)
    assert "will not be recorded" in opt_out_message(stop)


@pytest.mark.parametrize("record", [False, True])
def test_fail_safe_records_only_when_configured(record: bool) -> None:
    root = parse(twiml.fail_safe(record, "https://cg/rs", FAIL_SAFE_NOTICE))
    assert root.find("Enqueue").text == FALLBACK_QUEUE
    assert (root.find("Start/Recording") is not None) is record
    if record:  # the notice is spoken before recording starts
        assert [child.tag for child in root] == ["Say", "Start", "Enqueue"]


def test_route_inbound() -> None:
    contact = POLICY.department("contact-harlow")
    assert route_inbound(POLICY, contact.numbers[0]) == ToDepartment(contact)
    assert route_inbound(POLICY, POLICY.main_numbers[0]) == ToMenu()
    assert route_inbound(POLICY, "+15550100") == ToMenu()


def test_choose() -> None:
    first = POLICY.menu()[0]
    assert choose(POLICY, POLICY.opt_out_digit, None, 1, False) == OptOut()
    assert choose(POLICY, POLICY.opt_out_digit, None, 1, True) == Retry()
    assert choose(POLICY, first.ivr_digit, None, 1, False) == ToDepartment(first)
    assert choose(POLICY, None, None, 1, False) == Retry()
    assert choose(POLICY, "*", None, MAX_MENU_ATTEMPTS, False) == ToDepartment(
        POLICY.department(POLICY.fallback_department)
    )
    # A preset department: any key but the opt-out digit moves on to its queue.
    revenues = POLICY.department("revenues-and-benefits")
    assert choose(POLICY, "5", revenues.id, 1, False) == ToDepartment(revenues)
