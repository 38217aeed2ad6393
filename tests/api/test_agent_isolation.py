"""An agent cannot reach another agent's call by any route.

The walk below iterates the application's own routes (not a hand-written list), so a route
added later is exercised — or fails `test_every_route_is_classified` until it is given a
class here. Agent A (ann) uses her own token on every route, with agent B's (bob's) call,
recording, hold and notification substituted into the path, a plausible valid body, and
the same request again naming things that do not exist. A call route agents may use must
answer 404 exactly as for a call that does not exist; a route agents may not use 403; never
2xx for B's things; and nothing may change anywhere (every table, the simulated platform)."""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fastapi.routing
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from httpx import Response
from pydantic import SecretStr
from sqlalchemy import select
from starlette.routing import Mount

from app.api.deps import current_user
from app.people.users import Role
from app.platforms.simulator.provider import SimulatorProvider
from app.platforms.twilio.webhooks import signed_form
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.retention.access import Purpose
from app.storage.db import Base, unit_of_work
from app.storage.models import Call, Recording
from tests.factories import ACCOUNT_SID, DEFAULT_CALLER, Platform, bearer, make_user

CONTACT = load_policy_file(DEFAULT_POLICY_PATH).department("contact-harlow").numbers[0]


@pytest.fixture
def settings(settings):  # the conftest's, signing tree heads (so they answer 200)
    return settings.model_copy(update={"audit_signing_key": SecretStr("A" * 43 + "=")})


@dataclass(frozen=True)
class Kind:
    name: str
    bearer: bool  # does the route take a bearer token at all?


AGENT_CALL = Kind("an agent's own call only: another's is the 404 of a missing call", True)
NOT_AGENTS = Kind("not for agents: 403 whatever the ids", True)
AGENT_READ = Kind("open to agents, no call in the path: must not show another's", True)
SIGNED = Kind("no bearer: signed like Twilio's webhooks, so unsigned is 403", False)
PUBLIC = Kind("no bearer: holds no call data (page, script, health, metrics, API docs)", False)
LINK = Kind("no bearer: the short-lived media link is itself the credential", False)

ROUTES: dict[tuple[str, str], Kind] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,  # labels never hold a sid
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/readyz"): PUBLIC,
    ("GET", "/console"): PUBLIC,  # the page; calls only through the API
    ("GET", "/"): PUBLIC,
    ("GET", "/console/static"): PUBLIC,
    ("POST", "/webhooks/twilio/voice"): SIGNED,
    ("POST", "/webhooks/twilio/ivr"): SIGNED,
    ("POST", "/webhooks/twilio/transfer"): SIGNED,
    ("POST", "/webhooks/twilio/assignment"): SIGNED,
    ("POST", "/webhooks/twilio/call-status"): SIGNED,
    ("POST", "/webhooks/twilio/recording-status"): SIGNED,
    ("POST", "/simulator/calls/{call_sid}/hangup"): SIGNED,
    ("POST", "/simulator/calls/{call_sid}/inspect"): SIGNED,
    ("POST", "/simulator/policy"): SIGNED,
    ("POST", "/simulator/faults"): SIGNED,
    ("GET", "/api/v1/me"): AGENT_READ,
    ("GET", "/api/v1/policy"): AGENT_READ,
    ("GET", "/api/v1/calls"): AGENT_READ,
    ("GET", "/api/v1/calls/{call_sid}"): AGENT_CALL,
    ("GET", "/api/v1/calls/{call_sid}/events"): AGENT_CALL,
    ("POST", "/api/v1/calls/{call_sid}/payment/start"): AGENT_CALL,
    ("POST", "/api/v1/calls/{call_sid}/payment/end"): AGENT_CALL,
    ("POST", "/api/v1/calls/{call_sid}/opt-out"): AGENT_CALL,
    ("POST", "/api/v1/calls/{call_sid}/transfer"): AGENT_CALL,
    ("POST", "/api/v1/calls/{call_sid}/assign"): NOT_AGENTS,
    ("GET", "/api/v1/recordings"): NOT_AGENTS,
    ("GET", "/api/v1/retention/overview"): NOT_AGENTS,
    ("GET", "/api/v1/recordings/{recording_sid}"): NOT_AGENTS,
    ("POST", "/api/v1/recordings/{recording_sid}/holds"): NOT_AGENTS,
    ("DELETE", "/api/v1/recordings/{recording_sid}/holds/{hold_id}"): NOT_AGENTS,
    ("POST", "/api/v1/recordings/{recording_sid}/access"): NOT_AGENTS,  # no purpose for agents
    ("POST", "/api/v1/recordings/{recording_sid}/disclosures"): NOT_AGENTS,
    ("GET", "/api/v1/media/{token}"): LINK,
    ("GET", "/api/v1/audit"): NOT_AGENTS,
    ("GET", "/api/v1/audit/verify"): NOT_AGENTS,
    ("GET", "/api/v1/notifications"): NOT_AGENTS,
    ("POST", "/api/v1/notifications/{notification_id}/done"): NOT_AGENTS,
    ("GET", "/api/v1/subject-access"): NOT_AGENTS,
    ("GET", "/api/v1/subject-access/bundle"): NOT_AGENTS,
    ("POST", "/api/v1/recordings/{recording_sid}/evidence"): NOT_AGENTS,
    # A count and hashes of hashes, for monitors: app/api/evidence.py says why no token.
    ("GET", "/api/v1/audit/tree-head"): PUBLIC,
    ("GET", "/api/v1/audit/consistency"): PUBLIC,
}

# Plausible valid bodies (JSON for the people's API, forms for signed routes), each with the
# status agent A must get; the default is one request without a body.
TRANSFERS = [
    ({"department": "planning"}, 404),
    ({"department": "housing-management"}, 404),
    ({"payment_line": True}, 404),
    ({"non_recorded_line": True, "reason": "caller is a colleague"}, 403),  # never agents'
]
BODIES: dict[str, list[tuple[dict[str, Any], int]]] = {
    "/api/v1/calls/{call_sid}/transfer": TRANSFERS,
    "/api/v1/calls/{call_sid}/assign": [({"agent": "ann"}, 403)],  # to herself
    "/api/v1/recordings/{recording_sid}/holds": [
        ({"case_reference": "C-1", "reason": "complaint"}, 403)
    ],
    "/api/v1/recordings/{recording_sid}/access": [({"purpose": str(p)}, 403) for p in Purpose],
    "/api/v1/recordings/{recording_sid}/disclosures": [
        ({"recipient": "Essex Police", "agreement_reference": "DSA-7"}, 403)
    ],
    "/api/v1/notifications/{notification_id}/done": [({"method": "letter"}, 403)],
    "/api/v1/recordings/{recording_sid}/evidence": [({"case_reference": "C-1"}, 403)],
}
QUERIES = {
    "/api/v1/audit": "call_sid={call_sid}",
    "/api/v1/recordings": f"phone={DEFAULT_CALLER}&from=2020-01-01&limit=200",
    "/api/v1/subject-access": f"phone={DEFAULT_CALLER}",
    "/api/v1/subject-access/bundle": f"phone={DEFAULT_CALLER}",
    "/api/v1/notifications": "pending=true",
    "/api/v1/audit/consistency": "from=1&to=2",
    "/webhooks/twilio/ivr": "step=1",
    "/webhooks/twilio/transfer": "kind=non_recorded&transfer=1&department=contact-harlow",
}
# What an agent could forge at a signed route about B's call, if a signature were not needed.
FORMS: dict[str, dict[str, str]] = {
    "/webhooks/twilio/voice": {"CallSid": "{call_sid}", "From": DEFAULT_CALLER, "To": CONTACT},
    "/webhooks/twilio/ivr": {"CallSid": "{call_sid}", "Digits": "9"},  # opt the caller out
    "/webhooks/twilio/transfer": {"CallSid": "{call_sid}"},  # onto the non-recorded line
    "/webhooks/twilio/assignment": {
        "ReservationSid": "WR" + "1" * 32,
        "TaskAttributes": '{"call_sid": "{call_sid}"}',
        "WorkerAttributes": '{"callguard_user": "ann"}',
    },
    "/webhooks/twilio/call-status": {
        "CallSid": "{call_sid}",
        "CallStatus": "completed",
        "SequenceNumber": "99",
    },
    "/webhooks/twilio/recording-status": {
        "CallSid": "{call_sid}",
        "RecordingSid": "{recording_sid}",
        "RecordingStatus": "completed",
    },
    "/simulator/faults": {"operation": "pause", "status": "500", "times": "9"},
}
PUBLIC_PATHS = {"/console/static": "/console/static/console.js"}

MISSING = {
    "call_sid": "CA" + "0" * 32,
    "recording_sid": "RE" + "0" * 32,
    "hold_id": "999999",
    "notification_id": "999999",
}


@dataclass
class World:
    app: FastAPI
    client: TestClient
    services: Any
    simulator: SimulatorProvider
    ann: dict[str, str]  # agent A
    bob: dict[str, str]  # agent B
    own: str  # A's call
    live: str  # B's live, recorded call
    ended: str  # B's ended call, its recording completed, held and accessed
    values: dict[str, list[str]]  # B's ids by path parameter
    sids: list[str]  # every sid of B's, to normalise bodies

    def snapshot(self) -> dict[str, Any]:
        """Every row of every table, and what the simulated platform was asked and holds."""
        with self.services.sessions() as session:
            tables = {
                table.name: sorted(
                    (tuple(map(repr, row)) for row in session.execute(select(table))), key=str
                )
                for table in Base.metadata.sorted_tables
            }
        sim = self.simulator
        return {
            **tables,
            "platform.requests": list(sim.requests),
            "platform.outbox": sim.outbox.qsize(),
            "platform.faults": {op: len(f) for op, f in sim._faults.items()},
            "platform.recordings": {
                sid: [r.status for r in sim.recordings(sid)] for sid in (self.live, self.ended)
            },
        }


def route_table(app: FastAPI) -> Iterator[tuple[str, str, Any]]:
    """(method, path, route) for every route the app serves, included routers flattened."""
    iterate = getattr(fastapi.routing, "iter_route_contexts", None)
    for route in iterate(app.routes) if iterate else app.routes:
        methods = {"GET"} if isinstance(route.original_route, Mount) else route.methods
        for method in sorted(set(methods) - {"HEAD"}):
            yield method, route.path, route


def dependencies(route: Any) -> set[Any]:
    """Every dependency callable of a route, transitively."""
    found: set[Any] = set()
    stack = [getattr(route, "dependant", None)]
    while stack:
        dependant = stack.pop()
        if dependant is None:
            continue
        found.add(dependant.call)
        stack.extend(dependant.dependencies)
    return found


@pytest.fixture
def world(client: TestClient, platform: Platform, services, simulator) -> World:
    ann = bearer(make_user(services, "ann", Role.AGENT))
    bob = bearer(make_user(services, "bob", Role.AGENT))
    sue = bearer(make_user(services, "sue", Role.SUPERVISOR))
    gov = bearer(make_user(services, "gov", Role.GOVERNANCE))
    own, live, ended = (platform.queue_call(CONTACT) for _ in range(3))
    platform.deliver_callbacks()
    with unit_of_work(services.sessions) as session:
        session.get(Call, own).agent = "ann"
        session.get(Call, live).agent = "bob"
        session.get(Call, ended).agent = "bob"
    platform.hangup(ended)
    with services.sessions() as session:
        live_rec, ended_rec = (
            session.scalars(select(Recording.recording_sid).where(Recording.call_sid == c)).one()
            for c in (live, ended)
        )
        assert session.get(Recording, ended_rec).status == "completed"
    held = client.post(
        f"/api/v1/recordings/{ended_rec}/holds",
        json={"case_reference": "C-9", "reason": "complaint"},
        headers=gov,
    )
    assert held.status_code == 201, held.text
    access = client.post(
        f"/api/v1/recordings/{ended_rec}/access", json={"purpose": "complaint"}, headers=sue
    )
    assert access.status_code == 200, access.text
    # The ids are real: B reaches his calls, a supervisor B's recording (positive controls).
    for sid in (live, ended):
        assert client.get(f"/api/v1/calls/{sid}", headers=bob).status_code == 200
        assert client.get(f"/api/v1/calls/{sid}/events", headers=bob).json()["items"]
    return World(
        app=client.app,
        client=client,
        services=services,
        simulator=simulator,
        ann=ann,
        bob=bob,
        own=own,
        live=live,
        ended=ended,
        values={
            "call_sid": [live, ended],
            "recording_sid": [live_rec, ended_rec],
            "hold_id": [str(held.json()["id"])],
            "notification_id": [str(held.json()["notification_id"])],
        },
        sids=[live, ended, live_rec, ended_rec],
    )


def test_every_route_is_classified(client: TestClient) -> None:
    """A new route fails here until it is given a class above (and so is walked)."""
    served = {(method, path): route for method, path, route in route_table(client.app)}
    assert set(served) - set(ROUTES) == set(), "classify these routes in ROUTES"
    assert set(ROUTES) - set(served) == set(), "these classified routes no longer exist"
    for key, route in served.items():
        calls = dependencies(route)
        assert (current_user in calls) == ROUTES[key].bearer, key
        if ROUTES[key] is SIGNED:
            assert signed_form in calls, key
    for path in BODIES.keys() | QUERIES.keys() | FORMS.keys():
        assert any(path == p for _, p in served), f"{path} is not a route"


def _substitutions(path: str, values: dict[str, list[str]]) -> Iterator[dict[str, str]]:
    names = re.findall(r"{(\w+)(?::\w+)?}", path)
    for name in names:
        if name not in values:
            pytest.fail(f"{path}: say which of B's things to put in {{{name}}}")
    for combo in itertools.product(*(values[name] for name in names)):
        yield dict(zip(names, combo, strict=True))


def _fill(template: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        template = template.replace(f"{{{name}}}", value)
    return template


def _url(path: str, ids: dict[str, str]) -> str:
    query = _fill(QUERIES.get(path, ""), ids)
    return (PUBLIC_PATHS.get(path) or _fill(path, ids)) + (f"?{query}" if query else "")


def _normalised(response: Response, sids: list[str]) -> tuple[int, str]:
    text = response.text
    for sid in sids:
        text = text.replace(sid, "<sid>")
    return response.status_code, text


def test_an_agent_cannot_reach_another_agents_call_by_any_route(world: World) -> None:
    client, walked = world.client, []
    missing_ids = {name: [value] for name, value in MISSING.items()}
    for method, path, _route in route_table(world.app):
        kind = ROUTES[(method, path)]
        if not kind.bearer:
            continue  # walked in the next test
        walked.append((method, path))
        default = 404 if kind is AGENT_CALL else 403 if kind is NOT_AGENTS else 200
        for ids in _substitutions(path, world.values):
            for body, expected in BODIES.get(path, [({}, default)]):
                before = world.snapshot()
                url = _url(path, {"call_sid": world.live} | ids)
                kwargs: dict[str, Any] = {"headers": world.ann}
                if body:
                    kwargs["json"] = body
                response = client.request(method, url, **kwargs)
                label = f"{method} {url} {body}"
                assert response.status_code == expected, f"{label}: {response.text}"
                assert world.snapshot() == before, f"{label} changed something"
                if kind is AGENT_READ:
                    assert not any(sid in response.text for sid in world.sids), label
                    continue
                assert response.json()["error"] in {"not_found", "forbidden"}, label
                # B's things look exactly like things that do not exist.
                (missing,) = _substitutions(path, missing_ids)
                absent = client.request(method, _url(path, MISSING | missing), **kwargs)
                b_sids = [*world.sids, *MISSING.values()]
                assert _normalised(response, b_sids) == _normalised(absent, b_sids), label
    assert {key for key, kind in ROUTES.items() if kind.bearer} == set(walked)


def test_routes_without_a_bearer_token_give_an_agent_nothing(world: World) -> None:
    """A's token opens none of them: signed routes refuse a forged (unsigned) request about
    B's call, the media route an unknown link, and the public ones show no sid of B's."""
    for method, path, _route in route_table(world.app):
        kind = ROUTES[(method, path)]
        if kind.bearer:
            continue
        for ids in _substitutions(path, world.values | {"token": ["x" * 43], "path": ["-"]}):
            ids = {"call_sid": world.live, "recording_sid": world.values["recording_sid"][0]} | ids
            url = _url(path, ids)
            form = {"AccountSid": ACCOUNT_SID} | {
                k: _fill(v, ids) for k, v in FORMS.get(path, {}).items()
            }
            before = world.snapshot()
            kwargs: dict[str, Any] = {"headers": world.ann}
            if method == "POST":
                kwargs["data"] = form
            response = world.client.request(method, url, **kwargs)
            label = f"{method} {url}"
            assert world.snapshot() == before, f"{label} changed something"
            if kind is SIGNED:
                assert response.status_code == 403, f"{label}: {response.text}"
            elif kind is LINK:
                assert response.status_code == 404, f"{label}: {response.text}"
            else:
                assert response.status_code == 200, f"{label}: {response.text}"
            assert not any(sid in response.text for sid in world.sids), label


def test_lists_and_the_timeline_never_show_another_agents_call(world: World) -> None:
    client = world.client
    for query in ("", "?active=true", "?active=false"):
        items = client.get(f"/api/v1/calls{query}", headers=world.ann).json()["items"]
        assert {c["call_sid"] for c in items} <= {world.own}, query
        assert world.own in json.dumps(items) or query == "?active=false"
        bobs = client.get(f"/api/v1/calls{query}", headers=world.bob).json()["items"]
        assert world.own not in {c["call_sid"] for c in bobs}, query
    assert client.get("/api/v1/me", headers=world.ann).json() == {"name": "ann", "role": "agent"}

    # The console's event timeline: A's own call has events, none of them about B's calls.
    mine = client.get(f"/api/v1/calls/{world.own}/events", headers=world.ann).json()["items"]
    assert mine and {e["call_sid"] for e in mine} == {world.own}
    for sid in (world.live, world.ended):
        theirs = client.get(f"/api/v1/calls/{sid}/events", headers=world.ann)
        absent = client.get(f"/api/v1/calls/{MISSING['call_sid']}/events", headers=world.ann)
        assert theirs.status_code == absent.status_code == 404
        assert theirs.json()["detail"].replace(sid, "?") == absent.json()["detail"].replace(
            MISSING["call_sid"], "?"
        )
