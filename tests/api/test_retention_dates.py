"""R1: a destruction date is written when a recording completes (calendar arithmetic)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from app.people.users import Role
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.storage.models import Recording
from tests.factories import Platform, bearer, make_user

POLICY = load_policy_file(DEFAULT_POLICY_PATH)


@pytest.mark.parametrize(
    ("department", "expected"),
    [
        # 2024-02-29 10:00 + 60 s, then + 130 days
        ("contact-harlow", datetime(2024, 7, 8, 10, 1, tzinfo=UTC)),
        # + 2 years lands on 2026-02-28 (no 29th), then + 130 days
        ("revenues-and-benefits", datetime(2026, 7, 8, 10, 1, tzinfo=UTC)),
        ("supported-housing", datetime(2024, 7, 8, 10, 1, tzinfo=UTC)),
    ],
)
def test_destroy_after_is_completion_plus_the_departments_retention(
    platform: Platform, services, client: TestClient, department: str, expected: datetime
) -> None:
    call_sid = platform.queue_call(POLICY.department(department).numbers[0])
    recording_sid = platform.simulator.recordings(call_sid)[0].sid
    response = platform.recording_status(
        call_sid,
        recording_sid,
        "completed",
        RecordingStartTime="Thu, 29 Feb 2024 10:00:00 +0000",
        RecordingDuration="60",
        RecordingUrl=f"https://api.twilio.com/2010-04-01/Accounts/AC/Recordings/{recording_sid}",
    )
    assert response.status_code == 204
    with services.sessions() as session:
        recording = session.get(Recording, recording_sid)
        assert recording.completed_at == datetime(2024, 2, 29, 10, 1, tzinfo=UTC)
        assert recording.destroy_after == expected
        assert recording.retention == POLICY.department(department).retention
    token = make_user(services, "ig-officer", Role.GOVERNANCE)
    body = client.get(f"/api/v1/recordings/{recording_sid}", headers=bearer(token)).json()
    assert body["department"] == department
    assert body["status"] == "completed"
    assert body["completed_at"] == "2024-02-29T10:01:00+00:00"
    assert body["destroy_after"] == expected.isoformat()
    assert body["destroyed_at"] is None


def test_absent_recording_is_completed_with_a_date_too(platform: Platform, services) -> None:
    call_sid = platform.queue_call(POLICY.department("contact-harlow").numbers[0])
    recording_sid = platform.simulator.recordings(call_sid)[0].sid
    platform.recording_status(call_sid, recording_sid, "absent", ErrorCode="13617")
    with services.sessions() as session:
        recording = session.get(Recording, recording_sid)
        assert recording.status == "absent"
        assert recording.destroy_after is not None
