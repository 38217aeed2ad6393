"""A new call's first webhook: the one-INSERT path (app/calls/hot_path.py) writes what the
general path (CallEvents._arrived) writes, row for row and event for event, and gives the
caller the same answer; it steps aside, writing nothing, whenever it is not its case."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from app.callers.numbers import vault
from app.calls import events as call_events
from app.recording_policy.model import DEFAULT_POLICY_PATH, load_policy_file
from app.storage.models import AuditEvent, Call
from tests.factories import MAIN_NUMBER, Platform, new_call_sid

POLICY = load_policy_file(DEFAULT_POLICY_PATH)
RECORDED = next(d.numbers[0] for d in POLICY.departments if d.recorded and d.numbers)
UNRECORDED = next(d.numbers[0] for d in POLICY.departments if not d.recorded and d.numbers)
UNKNOWN = "+441632960999"  # no department's: the menu
RANDOM_COLUMNS = {"call_sid", "started_at", "updated_at"}
SEALED = {"caller_number_ciphertext", "caller_number_wrapped_key"}  # fresh keys each time


def written(session: Any, settings: Any, call_sid: str) -> tuple[dict[str, Any], list[Any]]:
    session.expire_all()
    call = session.get(Call, call_sid)
    row = {
        c.key: getattr(call, c.key)
        for c in Call.__table__.columns
        if c.key not in RANDOM_COLUMNS | SEALED
    }
    row["caller"] = vault(settings.number_key).reveal(call)
    found = session.scalars(
        select(AuditEvent).where(AuditEvent.call_sid == call_sid).order_by(AuditEvent.sequence)
    )
    return row, [(e.type, e.actor, e.reasons, e.detail, e.policy_version) for e in found]


@pytest.mark.parametrize("dialled", [MAIN_NUMBER, RECORDED, UNRECORDED, UNKNOWN])
@pytest.mark.parametrize("caller", ["+447700900123", "anonymous"])
def test_both_paths_write_the_same(
    platform: Platform, session: Any, monkeypatch: pytest.MonkeyPatch, dialled: str, caller: str
) -> None:
    fast, general = new_call_sid(), new_call_sid()
    taken: list[bool] = []
    arrive_new = call_events.arrive_new

    def spy(*args: Any) -> Any:
        answer = arrive_new(*args)
        taken.append(answer is not None)
        return answer

    monkeypatch.setattr(call_events, "arrive_new", spy)
    first = platform.voice(fast, dialled, caller)
    monkeypatch.setattr(call_events, "arrive_new", lambda *_: None)
    second = platform.voice(general, dialled, caller)
    assert first.status_code == second.status_code == 200
    assert first.text.replace(fast, general) == second.text
    assert written(session, platform.settings, fast) == written(session, platform.settings, general)
    # The one-INSERT path takes every new call but those queued at once.
    assert taken == [dialled != UNRECORDED]


def test_a_call_already_known_takes_the_general_path(
    platform: Platform, session: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    call_sid = new_call_sid()
    assert platform.call_status(call_sid, "ringing", 1).status_code < 300  # the row exists
    answers: list[Any] = []
    arrive_new = call_events.arrive_new

    def spy(*args: Any) -> Any:
        answers.append(arrive_new(*args))
        return answers[-1]

    monkeypatch.setattr(call_events, "arrive_new", spy)
    assert platform.voice(call_sid, MAIN_NUMBER).status_code == 200
    assert answers == [None]  # stepped aside
    row, events = written(session, platform.settings, call_sid)
    assert row["ivr_step"] == 1 and row["caller"] == "+447700900123"
    assert [e[0] for e in events if e[0].startswith("call.")][-2:] == [
        "call.started",
        "call.routed",
    ]
