"""P8, R1: `callguard policy dry-run` replays past calls through a candidate policy and
reports the decisions and destruction dates that would differ, changing nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select

from app.recording_policy import DEFAULT_POLICY_PATH
from app.storage.models import AuditEvent, PolicyActivation, Recording
from tests.factories import Platform
from tests.governance.conftest import POLICY, recording

COMPLETED = {
    "RecordingStartTime": "Thu, 29 Feb 2024 10:00:00 +0000",
    "RecordingDuration": "60",
}


def candidate(tmp_path: Path) -> Path:
    """Contact Harlow keeps recordings 200 days; Home Ownership is no longer recorded."""
    text = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
    contact = 'id = "contact-harlow"'
    start = text.index(contact)
    text = text[:start] + text[start:].replace('retention = "P130D"', 'retention = "P200D"', 1)
    home = text.index('id = "home-ownership"')
    text = text[:home] + text[home:].replace("recorded = true", "recorded = false", 1)
    path = tmp_path / "candidate.toml"
    path.write_text(text, encoding="utf-8")
    return path


def completed_with_a_date(platform: Platform, department: str) -> tuple[str, str]:
    call_sid = platform.queue_call(POLICY.department(department).numbers[0])
    sid = platform.simulator.recordings(call_sid)[0].sid
    platform.recording_status(call_sid, sid, "completed", **COMPLETED)
    return call_sid, sid


def test_dry_run_reports_decisions_and_dates_that_would_differ_and_changes_nothing(
    run_cli, services, platform: Platform, tmp_path: Path
) -> None:
    contact_call, contact = completed_with_a_date(platform, "contact-harlow")
    home_call, home = completed_with_a_date(platform, "home-ownership")
    revenues_call, revenues = completed_with_a_date(platform, "revenues-and-benefits")
    platform.hangup(contact_call)  # ended calls are replayed as they stood before the end
    before = recording(services, contact).destroy_after

    def state() -> tuple[int, int, list[object]]:
        with services.sessions() as session:
            return (
                session.scalar(select(func.count()).select_from(AuditEvent)),
                session.scalar(select(func.count()).select_from(PolicyActivation)),
                list(
                    session.scalars(
                        select(Recording.destroy_after).order_by(Recording.recording_sid)
                    )
                ),
            )

    unchanged = state()
    result = run_cli("policy", "dry-run", str(candidate(tmp_path)), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert state() == unchanged
    assert recording(services, contact).destroy_after == before

    assert report["calls"] == 3 and report["recordings"] == 3
    [decision] = report["decisions"]
    assert decision["call_sid"] == home_call
    assert decision["before"] == {"state": "recording", "reasons": ["department_recorded"]}
    assert decision["after"] == {"state": "off", "reasons": ["department_not_recorded"]}
    dates = {d["recording_sid"]: d for d in report["dates"]}
    assert set(dates) == {contact, home}  # revenues' date is the same under both
    assert dates[contact]["current"] == datetime(2024, 7, 8, 10, 1, tzinfo=UTC).isoformat()
    assert dates[contact]["candidate"] == datetime(2024, 9, 16, 10, 1, tzinfo=UTC).isoformat()
    assert dates[contact]["note"] == "retention P130D -> P200D"
    assert dates[home]["candidate"] is None
    assert "would not have recorded" in dates[home]["note"]
    assert revenues not in dates and revenues_call

    text = run_cli("policy", "dry-run", str(candidate(tmp_path)))
    assert text.exit_code == 0
    assert (
        f"call {home_call} [home-ownership]: recording (department_recorded) -> off" in text.output
    )
    assert "1 decided differently" in text.output and "2 of 3 recordings" in text.output
    assert state() == unchanged


def test_dry_run_refuses_an_invalid_policy(run_cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    # A value that reads as console markup is quoted as written, not interpreted.
    bad.write_text('name = "x"\nopt_out_digit = "[/red]"\n', encoding="utf-8")
    result = run_cli("policy", "dry-run", str(bad))
    assert result.exit_code == 1
    assert "invalid policy" in result.output
    assert f"{bad}:2: opt_out_digit: '[/red]' is not a single keypad digit" in result.output
