"""The governance officer's recording search (issue 15 item 1): GET /api/v1/recordings
with phone, department, held, from/to, limit and keyset paging, and each row's days until
destruction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from app.runtime.services import Services
from app.storage.models import utcnow
from tests.governance.conftest import People
from tests.governance.search_seed import add_recording
from tests.governance.test_holds import place

URL = "/api/v1/recordings"
CALLER = "+447700900123"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def sids(client: TestClient, people: People, **params: str) -> list[str]:
    response = client.get(URL, params=params, headers=people.governance)
    assert response.status_code == 200, response.text
    return [item["recording_sid"] for item in response.json()["items"]]


def test_each_filter_and_their_combination(
    client: TestClient, people: People, services: Services
) -> None:
    mine_old = add_recording(services, started_at=T0 - timedelta(days=30), caller=CALLER)
    mine_new = add_recording(services, started_at=T0, caller=CALLER, department="housing")
    other = add_recording(services, started_at=T0 + timedelta(days=1), caller="+447700900999")
    nobody = add_recording(services, started_at=T0 + timedelta(days=2))
    place(client, people, mine_old)

    assert sids(client, people) == [nobody, other, mine_new, mine_old]  # newest first
    # Any format of the number finds the same calls, by the keyed hash.
    assert sids(client, people, phone="07700 900123") == [mine_new, mine_old]
    assert sids(client, people, phone="+44 7700 900123") == [mine_new, mine_old]
    assert sids(client, people, department="housing") == [mine_new]
    assert sids(client, people, held="true") == [mine_old]
    assert sids(client, people, held="false") == [nobody, other, mine_new]
    # Dates bound completed_at (started + 5 min); a date as `to` is that whole day.
    assert sids(client, people, **{"from": "2026-03-10"}) == [nobody, other, mine_new]
    assert sids(client, people, to="2026-03-10") == [mine_new, mine_old]
    assert sids(client, people, **{"from": "2026-03-10", "to": "2026-03-11"}) == [
        other,
        mine_new,
    ]
    # Times are inclusive at both ends, offsets honoured, no offset meaning UTC.
    assert sids(client, people, **{"from": "2026-03-10T12:05:00Z", "to": "2026-03-10T12:05:00"})
    assert sids(client, people, **{"from": "2026-03-10T13:05:01+01:00"}) == [nobody, other]
    assert sids(client, people, to="2026-03-10T12:04:59Z") == [mine_old]
    assert sids(client, people, phone=CALLER, held="false", to="2026-03-31") == [mine_new]


def test_each_row_keeps_its_fields_and_gains_days_until_destruction(
    client: TestClient, people: People, services: Services
) -> None:
    now = utcnow()
    soon = add_recording(services, destroy_after=now + timedelta(days=10, hours=12))
    overdue = add_recording(services, destroy_after=now - timedelta(hours=12))
    long_overdue = add_recording(services, destroy_after=now - timedelta(days=3, hours=1))
    gone = add_recording(services, destroy_after=now - timedelta(days=9), destroyed_at=now)
    live = add_recording(services, completed=False)
    items = {
        i["recording_sid"]: i
        for i in client.get(URL, headers=people.admin).json()["items"]  # admin reads it too
    }
    assert items[soon]["destroy_in_days"] == 10
    assert items[overdue]["destroy_in_days"] == -1  # overdue by any amount is negative
    assert items[long_overdue]["destroy_in_days"] == -4
    assert items[gone]["destroy_in_days"] is None
    assert items[live]["destroy_in_days"] is None  # no destroy_after yet
    assert set(items[soon]) >= {
        "recording_sid",
        "call_sid",
        "department",
        "status",
        "retention",
        "policy_version",
        "started_at",
        "completed_at",
        "destroy_after",
        "destroyed_at",
        "holds",
    }


def test_pages_follow_the_cursor_without_duplicates_or_gaps_while_rows_arrive(
    client: TestClient, people: People, services: Services
) -> None:
    # Three share one started_at: the recording sid breaks the tie.
    times = [T0 - timedelta(hours=h) for h in (0, 1, 1, 1, 2, 3, 4)]
    existing = {add_recording(services, started_at=t) for t in times}
    seen: list[str] = []
    arrived_older: set[str] = set()
    cursor = None
    for page in range(10):
        params = {"limit": "3", **({"cursor": cursor} if cursor else {})}
        body = client.get(URL, params=params, headers=people.governance).json()
        seen += [i["recording_sid"] for i in body["items"]]
        assert len(body["items"]) <= 3
        # Between pages: one newer than everything (never shifts a page) and one older
        # than everything (it belongs further down, so a later page shows it).
        add_recording(services, started_at=utcnow())
        if page < 2:
            arrived_older.add(add_recording(services, started_at=T0 - timedelta(days=page + 1)))
        cursor = body["next"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)), "a recording shown twice"
    assert set(seen) == existing | arrived_older, "a recording skipped"
    assert page == 2  # 9 rows in three pages of 3: the third has no next


def test_the_last_page_has_no_next_and_limits_are_bounded(
    client: TestClient, people: People, services: Services
) -> None:
    for h in range(3):
        add_recording(services, started_at=T0 - timedelta(hours=h))
    body = client.get(URL, params={"limit": "3"}, headers=people.governance).json()
    assert len(body["items"]) == 3 and body["next"] is None
    body = client.get(URL, params={"limit": "2"}, headers=people.governance).json()
    assert body["next"] is not None
    for limit in ("0", "201", "x"):
        response = client.get(URL, params={"limit": limit}, headers=people.governance)
        assert response.status_code == 422, limit
    assert client.get(URL, params={"limit": "200"}, headers=people.governance).status_code == 200


def test_the_default_page_is_fifty(client: TestClient, people: People, services: Services) -> None:
    for m in range(51):
        add_recording(services, started_at=T0 - timedelta(minutes=m))
    body = client.get(URL, headers=people.governance).json()
    assert len(body["items"]) == 50 and body["next"] is not None
    rest = client.get(URL, params={"cursor": body["next"]}, headers=people.governance).json()
    assert len(rest["items"]) == 1 and rest["next"] is None


@pytest.mark.parametrize(
    ("params", "word"),
    [
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-13-01"}, "from"),
        ({"to": "2026-02-30"}, "to"),
        ({"to": "12:00"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "before"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WyJ4IiwgMV0"}, "cursor"),  # base64 JSON, but not a key: ["x", 1]
        ({"phone": "anonymous"}, "phone"),
    ],
)
def test_bad_values_are_refused_clearly(
    client: TestClient, people: People, services: Services, params: dict[str, str], word: str
) -> None:
    add_recording(services, started_at=T0)
    response = client.get(URL, params=params, headers=people.governance)
    assert response.status_code in (400, 422), response.text
    assert word in response.text


def test_only_governance_and_admin_search(client: TestClient, people: People) -> None:
    assert client.get(URL).status_code == 401
    assert client.get(URL, headers=people.agent).status_code == 403
    assert client.get(URL, headers=people.supervisor).status_code == 403
    assert client.get(URL, headers=people.admin).status_code == 200
    assert client.get(URL, headers=people.governance).status_code == 200
