"""Schemathesis against the people's API (/api/v1/…), in-process, on a database with real
calls, recordings, a hold, a notification and a media link in it.

Every operation is called with a token whose role it allows (governance-tagged routes with a
governance token, the rest with an admin's), and with path parameters that now and then name
real objects. Checks: no 5xx, and every answer — status code, content type and body — is one
the OpenAPI document says the operation gives. CALLGUARD_FUZZ_EXAMPLES (default 50) sets the
examples per operation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import SecretStr
from schemathesis import Case
from schemathesis.checks import (
    content_type_conformance,
    ignored_auth,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.parameters import ParameterLocation
from sqlalchemy import select
from starlette.types import ASGIApp, Receive, Scope, Send

from app.config import load_settings
from app.main import create_app
from app.people.users import Role
from app.platforms.simulator.provider import SimulatorProvider
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.retention import holds
from app.retention.access import Purpose, grant_access
from app.runtime.services import Services
from app.storage.db import unit_of_work
from app.storage.models import User
from tests.factories import MAIN_NUMBER, Platform, make_user
from tests.fuzz.common import EXAMPLES

pytestmark = pytest.mark.fuzz

PEOPLE_API = r"^/api/v1/"  # not /webhooks, /simulator, /console, /metrics nor health


@dataclass(frozen=True)
class World:
    """What the database holds that a path parameter can name, and the tokens to use."""

    tokens: dict[str, str]  # by role
    call_sids: list[str]
    recording_sids: list[str]
    hold_ids: list[int]
    notification_ids: list[int]
    media_tokens: list[str]
    agents: list[str]
    departments: list[str]


@pytest.fixture
def settings(settings):  # the conftest's, signing tree heads and evidence packs
    return settings.model_copy(update={"audit_signing_key": SecretStr("A" * 43 + "=")})


@pytest.fixture
def world(platform: Platform, services: Services, simulator: SimulatorProvider) -> World:
    tokens = {role.value: make_user(services, f"fuzz-{role.value}", role) for role in Role}
    make_user(services, "ann", Role.AGENT)
    live = [platform.queue_call(MAIN_NUMBER, [digit]) for digit in ("1", "1", "2", "3")]
    ended = [platform.queue_call(MAIN_NUMBER, ["1"]) for _ in range(2)]
    recording_sids = [r.sid for sid in live + ended for r in simulator.recordings(sid)]
    for sid in ended:
        platform.hangup(sid)
    with unit_of_work(services.sessions) as session:
        hold, notification_id = holds.place_hold(
            session, recording_sids[-1], "CASE-1", "a complaint", "fuzz-governance"
        )
        governance = session.scalars(select(User).where(User.name == "fuzz-governance")).one()
        _, media_token = grant_access(session, recording_sids[-1], Purpose.COMPLAINT, governance)
        hold_id = hold.id
    return World(
        tokens=tokens,
        call_sids=live + ended,
        recording_sids=recording_sids,
        hold_ids=[hold_id],
        notification_ids=[notification_id],
        media_tokens=[media_token],
        agents=["ann", "fuzz-supervisor", "fuzz-agent"],
        departments=[d.id for d in load_policy_file(DEFAULT_POLICY_PATH).departments],
    )


class ThisTestsApp:
    """The ASGI app the schema is bound to: it passes each request to the app of the test
    being run (the `client` fixture's, whose lifespan that fixture ran), and answers the
    lifespan itself. The schema is loaded once, at import; each test has its own app."""

    def __init__(self) -> None:
        self.target: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert self.target is not None, "no test is running"
        await self.target(scope, receive, send)


THIS_TESTS_APP = ThisTestsApp()


@pytest.fixture
def app(client: TestClient, world: World) -> Iterator[ASGIApp]:
    THIS_TESTS_APP.target = client.app
    yield client.app
    THIS_TESTS_APP.target = None


def _openapi() -> dict[str, Any]:
    """The app's OpenAPI document: building it touches no database."""
    settings = load_settings(database_url="sqlite://", env="test", provider="simulator")
    return create_app(settings).openapi()


schema = schemathesis.openapi.from_dict(_openapi()).include(path_regex=PEOPLE_API)
schema.app = THIS_TESTS_APP

# No 5xx; every status, content type, header and body as documented; and a route that
# declares the bearer token refuses a request without one or with a wrong one. (Not
# Schemathesis' data-acceptance checks: a schema-valid request may still name an agent who
# does not exist (400), and an "invalid" query value may serialise to a valid one.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    ignored_auth,
]

# Path parameters that name something real, by parameter name.
REAL = {
    "call_sid": lambda w: w.call_sids,
    "recording_sid": lambda w: w.recording_sids,
    "hold_id": lambda w: w.hold_ids,
    "notification_id": lambda w: w.notification_ids,
    "token": lambda w: w.media_tokens,
}

# Body fields that name something real: a person to assign, a department to transfer to.
REAL_BODY = {
    "agent": lambda w: w.agents,
    "department": lambda w: w.departments,
}


def _role_for(case: Case) -> str:
    """A role each route allows: governance routes (some governance-only) a governance
    token; the rest (call routes, supervisor+ and governance+ reads) an admin's."""
    return "governance" if "governance" in (case.operation.tags or []) else "admin"


@schema.parametrize()
@schema.given(data=st.data())
@hypothesis_settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_people_api_conforms_to_its_openapi(
    case: Case, data: st.DataObject, world: World, app: ASGIApp
) -> None:
    if case.meta is None or not case.meta.is_negative_at(ParameterLocation.PATH):
        for name, values in REAL.items():
            if name in (case.path_parameters or {}) and data.draw(st.booleans(), label=name):
                case.path_parameters[name] = data.draw(st.sampled_from(values(world)))
    positive_body = case.meta is None or not case.meta.is_negative_at(ParameterLocation.BODY)
    if positive_body and isinstance(case.body, dict):
        for name, values in REAL_BODY.items():
            if name in case.body and data.draw(st.booleans(), label=name):
                case.body[name] = data.draw(st.sampled_from(values(world)))
    authorization = f"Bearer {world.tokens[_role_for(case)]}"
    response = case.call_and_validate(
        base_url="http://testserver", headers={"Authorization": authorization}, checks=CHECKS
    )
    if response.request.headers.get("Authorization") == authorization:
        # (Cases that test a missing token go without it, and get their 401.)
        assert response.status_code != 401, response.text
        if response.status_code == 403:
            assert "needs one of the roles" not in response.text, "the wrong token was chosen"
