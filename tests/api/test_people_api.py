"""S2 and the read routes: tokens, roles, the call object, the policy, the audit list."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.config import get_settings
from app.people.users import Role, disable_user
from app.storage.db import unit_of_work
from app.storage.models import Call, User
from tests.factories import MAIN_NUMBER, Platform, bearer, make_user

CALL_KEYS = {
    "call_sid",
    "status",
    "department",
    "agent",
    "recording",
    "desired",
    "reasons",
    "policy_version",
    "payment_in_progress",
    "opted_out",
    "non_recorded_line",
}


def _assign(services, call_sid: str, agent: str) -> None:
    with unit_of_work(services.sessions) as session:
        session.get(Call, call_sid).agent = agent


@pytest.mark.parametrize("header", [None, "Bearer", "Bearer cg_wrong", "Basic dXNlcjpwdw=="])
def test_missing_or_wrong_token_is_401_json(client: TestClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    response = client.get("/api/v1/policy", headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert set(response.json()) >= {"error", "detail"}


@pytest.mark.parametrize("how", ["cli", "function"])
def test_disabled_token_is_refused_at_once(
    platform: Platform,
    client: TestClient,
    services,
    settings,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    """`callguard users disable NAME`, from another process's point of view (its own engine),
    while the server has just served the token: the very next request is 401, on every
    kind of route (no token or user is cached anywhere)."""
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    token = bearer(make_user(services, "alice", Role.SUPERVISOR))
    routes = [
        ("GET", "/api/v1/me"),
        ("GET", "/api/v1/calls"),
        ("GET", f"/api/v1/calls/{call_sid}"),
        ("POST", f"/api/v1/calls/{call_sid}/opt-out"),
    ]
    for method, path in routes[:3]:
        assert client.request(method, path, headers=token).status_code == 200, path
    if how == "cli":
        monkeypatch.setenv("CALLGUARD_DATABASE_URL", settings.database_url)
        get_settings.cache_clear()
        result = CliRunner().invoke(cli, ["users", "disable", "alice"])
        assert result.exit_code == 0, result.output
    else:
        with unit_of_work(services.sessions) as session:
            disable_user(session, "alice")
    for method, path in routes:
        response = client.request(method, path, headers=token)
        assert response.status_code == 401, path
        assert response.json()["error"] == "unauthorized"
    with services.sessions() as session:
        assert session.get(Call, call_sid).opted_out is False  # the refused action did nothing


def test_only_a_hash_of_the_token_is_stored(services) -> None:
    token = make_user(services, "bob", Role.AGENT)
    with services.sessions() as session:
        row = session.scalars(select(User).where(User.name == "bob")).one()
        assert token not in (row.token_sha256, row.name)
        assert len(row.token_sha256) == 64


@pytest.mark.parametrize(
    ("role", "path", "status"),
    [
        ("agent", "/api/v1/audit", 403),
        ("supervisor", "/api/v1/audit", 403),
        ("governance", "/api/v1/audit", 200),
        ("admin", "/api/v1/audit", 200),
        ("governance", "/api/v1/calls", 403),
        ("agent", "/api/v1/calls", 200),
        ("agent", "/api/v1/recordings/RE0", 403),
        ("agent", "/api/v1/policy", 200),
        ("governance", "/api/v1/policy", 200),
    ],
)
def test_roles(client: TestClient, services, role: str, path: str, status: int) -> None:
    token = make_user(services, f"user-{role}", Role(role))
    response = client.get(path, headers=bearer(token))
    assert response.status_code == status
    if status == 403:
        assert response.json()["error"] == "forbidden"


def test_policy_route_shape(client: TestClient, services) -> None:
    token = make_user(services, "carol", Role.AGENT)
    body = client.get("/api/v1/policy", headers=bearer(token)).json()
    assert body["version"] == 1
    assert body["opt_out_digit"] == "9"
    assert MAIN_NUMBER in body["main_numbers"]
    assert body["payment_line"] and body["non_recorded_line"]
    revenues = next(d for d in body["departments"] if d["id"] == "revenues-and-benefits")
    assert revenues == {
        "id": "revenues-and-benefits",
        "name": "Revenues and Benefits",
        "recorded": True,
        "numbers": revenues["numbers"],
        "ivr_digit": revenues["ivr_digit"],
        "retention": "P2Y130D",
        "opt_out": "advise_email",
        "email": revenues["email"],
    }


def test_agent_sees_only_their_own_calls(platform: Platform, client: TestClient, services):
    mine = platform.queue_call(MAIN_NUMBER, ["1"])
    theirs = platform.queue_call(MAIN_NUMBER, ["1"])
    _assign(services, mine, "dave")
    _assign(services, theirs, "erin")
    dave = make_user(services, "dave", Role.AGENT)
    supervisor = make_user(services, "sue", Role.SUPERVISOR)

    own = client.get(f"/api/v1/calls/{mine}", headers=bearer(dave))
    assert own.status_code == 200
    assert set(own.json()) == CALL_KEYS
    assert own.json()["recording"] == "recording"
    assert own.json()["reasons"] == ["department_recorded"]

    other = client.get(f"/api/v1/calls/{theirs}", headers=bearer(dave))
    missing = client.get("/api/v1/calls/CA" + "0" * 32, headers=bearer(dave))
    assert other.status_code == missing.status_code == 404
    assert other.json()["error"] == missing.json()["error"] == "not_found"

    listed = client.get("/api/v1/calls?active=true", headers=bearer(dave)).json()["items"]
    assert [c["call_sid"] for c in listed] == [mine]
    everything = client.get("/api/v1/calls?active=true", headers=bearer(supervisor)).json()
    assert {c["call_sid"] for c in everything["items"]} == {mine, theirs}


def test_active_filter_excludes_ended_calls(platform: Platform, client: TestClient, services):
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    platform.hangup(call_sid)
    token = make_user(services, "sam", Role.SUPERVISOR)
    active = client.get("/api/v1/calls?active=true", headers=bearer(token)).json()["items"]
    ended = client.get("/api/v1/calls?active=false", headers=bearer(token)).json()["items"]
    assert call_sid not in [c["call_sid"] for c in active]
    assert [c["call_sid"] for c in ended] == [call_sid]
    assert ended[0]["recording"] == "off" and ended[0]["reasons"] == ["call_ended"]


def test_audit_route_lists_events_in_order_without_phone_numbers(
    platform: Platform, client: TestClient, services
) -> None:
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    platform.deliver_callbacks()
    platform.hangup(call_sid)
    token = make_user(services, "ian", Role.GOVERNANCE)
    items = client.get(f"/api/v1/audit?call_sid={call_sid}", headers=bearer(token)).json()["items"]
    sequences = [e["sequence"] for e in items]
    assert sequences == sorted(sequences)
    types = [e["type"] for e in items]
    for expected in (
        "call.started",
        "call.queued",
        "decision",
        "recording.start_requested",
        "recording.started",
        "call.ended",
        "recording.completed",
    ):
        assert expected in types
    started = next(e for e in items if e["type"] == "recording.started")
    assert started["recording_sid"] and started["policy_version"] == 1
    assert started["actor"] == "platform" and started["reasons"] == ["department_recorded"]
    assert set(items[0]) >= {
        "sequence",
        "type",
        "occurred_at",
        "actor",
        "call_sid",
        "recording_sid",
        "reasons",
        "policy_version",
    }
    assert (
        "7700900123"
        not in client.get(f"/api/v1/audit?call_sid={call_sid}", headers=bearer(token)).text
    )
    after = client.get(
        f"/api/v1/audit?call_sid={call_sid}&after={sequences[2]}", headers=bearer(token)
    ).json()["items"]
    assert [e["sequence"] for e in after] == sequences[3:]


def test_unknown_recording_is_404(client: TestClient, services) -> None:
    token = make_user(services, "gov", Role.GOVERNANCE)
    response = client.get("/api/v1/recordings/RE" + "0" * 32, headers=bearer(token))
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
