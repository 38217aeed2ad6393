"""P1/P3: each department of the default policy is recorded or not as the notice says."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from sqlalchemy import select

from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.storage.models import AuditEvent, Call
from tests.factories import MAIN_NUMBER, Platform, new_call_sid

POLICY = load_policy_file(DEFAULT_POLICY_PATH)
NOTICE_DEPARTMENTS = {
    "contact-harlow",
    "revenues-and-benefits",
    "home-ownership",
    "housing-management",
    "housing-operations",
    "supported-housing",
}
UNLISTED = [d.id for d in POLICY.departments if d.id not in NOTICE_DEPARTMENTS]


def test_default_policy_has_the_notice_departments_and_three_unlisted() -> None:
    recorded = {d.id for d in POLICY.departments if d.recorded}
    assert recorded == NOTICE_DEPARTMENTS
    assert len(UNLISTED) >= 3


@pytest.mark.parametrize("department", sorted(d.id for d in POLICY.departments))
def test_dialling_a_department_directly(platform: Platform, services, department: str) -> None:
    number = POLICY.department(department).numbers[0]
    call_sid = platform.queue_call(number)
    recordings = platform.simulator.recordings(call_sid)
    with services.sessions() as session:
        call = session.get(Call, call_sid)
    assert call.department == department
    if department in NOTICE_DEPARTMENTS:
        assert [r.status.value for r in recordings] == ["in-progress"]
        assert call.recording == "recording"
        assert call.reasons == ["department_recorded"]
    else:
        assert recordings == []
        assert call.recording == "off"
        assert call.reasons == ["department_not_recorded"]


@pytest.mark.parametrize("department", [d for d in POLICY.menu()], ids=lambda d: d.id)
def test_choosing_a_department_from_the_menu(platform: Platform, department) -> None:
    call_sid = platform.queue_call(MAIN_NUMBER, [department.ivr_digit])
    recorded = bool(platform.simulator.recordings(call_sid))
    assert recorded is (department.id in NOTICE_DEPARTMENTS)


def test_recording_starts_only_after_the_notice_and_opt_out_offer(platform: Platform) -> None:
    call_sid = new_call_sid()
    answer = platform.voice(call_sid, POLICY.department("contact-harlow").numbers[0])
    root = ET.fromstring(answer.text)
    gather = root.find("Gather")
    assert gather is not None
    said = " ".join(s.text or "" for s in gather.iter("Say"))
    assert "recorded" in said and f"press {POLICY.opt_out_digit}" in said
    assert root.find("Redirect") is not None
    assert platform.simulator.recordings(call_sid) == []  # nothing yet: notice is playing
    platform.ivr(call_sid, 1)  # no key pressed
    assert len(platform.simulator.recordings(call_sid)) == 1


def test_unlisted_department_dialled_directly_skips_the_notice(platform: Platform) -> None:
    number = POLICY.department(UNLISTED[0]).numbers[0]
    answer = platform.voice(new_call_sid(), number)
    assert f"<Enqueue>{UNLISTED[0]}</Enqueue>" in answer.text
    assert "<Gather" not in answer.text


def test_ivr_opt_out_with_stop_department_is_not_recorded(platform: Platform, services) -> None:
    stop = next(d for d in POLICY.menu() if d.recorded and d.opt_out == "stop")
    call_sid = new_call_sid()
    platform.voice(call_sid, MAIN_NUMBER)
    noted = platform.ivr(call_sid, 1, POLICY.opt_out_digit)
    assert "noted" in noted.text
    queued = platform.ivr(call_sid, 2, stop.ivr_digit)
    assert "will not be recorded" in queued.text
    assert platform.simulator.recordings(call_sid) == []
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert call.opted_out and call.reasons == ["opted_out_stop"]
        types = session.scalars(select(AuditEvent.type).where(AuditEvent.call_sid == call_sid))
        assert "opt_out.requested" in list(types)


def test_ivr_opt_out_with_advise_email_department_keeps_recording_and_says_email(
    platform: Platform, services
) -> None:
    advise = next(d for d in POLICY.departments if d.recorded and d.opt_out == "advise_email")
    call_sid = new_call_sid()
    platform.voice(call_sid, advise.numbers[0])
    queued = platform.ivr(call_sid, 1, POLICY.opt_out_digit)
    assert advise.email in queued.text
    assert len(platform.simulator.recordings(call_sid)) == 1
    with services.sessions() as session:
        call = session.get(Call, call_sid)
        assert call.reasons == ["department_recorded", "opted_out_advise_email"]


def test_invalid_menu_choices_fall_back_after_three_attempts(platform: Platform, services):
    call_sid = platform.queue_call(MAIN_NUMBER, ["0", "#"])  # then silence
    with services.sessions() as session:
        assert session.get(Call, call_sid).department == POLICY.fallback_department


def test_dialled_number_unknown_to_the_policy_gets_the_menu(platform: Platform) -> None:
    answer = platform.voice(new_call_sid(), "+441632960999")
    assert "<Gather" in answer.text and "For Contact Harlow, press" in answer.text
