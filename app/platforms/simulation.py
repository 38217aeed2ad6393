"""What `callguard simulate` shares on every platform: its scenarios and options, the
supervisor's token and the people's API it acts through, and the number a department is
dialled on. Each platform package plays the calls its own way (PhonePlatform.simulation)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

import httpx
from rich.console import Console
from sqlalchemy.exc import SQLAlchemyError

from app.config import VAR_DIR, Settings
from app.errors import Conflict
from app.people.users import Role, add_user
from app.storage.db import make_engine, make_session_factory, unit_of_work

SUPERVISOR = "simulator-supervisor"
SUPERVISOR_TOKEN_FILE = VAR_DIR / "simulate-token"
DEFAULT_DEPARTMENT = "contact-harlow"
NON_RECORDED_REASON = "simulated: the caller is distressed"


class Scenario(StrEnum):
    INBOUND = "inbound"
    PAYMENT = "payment"
    OPT_OUT = "opt-out"
    TRANSFER = "transfer"
    NON_RECORDED = "non-recorded"
    LIVE = "live"


# Where a transfer goes unless --to says otherwise: planning is not recorded; after the
# non-recorded line, a recorded department shows that recording stays off.
DEFAULT_TO = {Scenario.TRANSFER: "planning", Scenario.NON_RECORDED: "housing-management"}


class SimulationError(Exception):
    pass


class Simulate(Protocol):
    """Place a call on the platform as `scenario` says, against the service at `base_url`;
    print as it goes; False when the scenario's own check failed."""

    def __call__(
        self,
        settings: Settings,
        scenario: Scenario,
        options: CallOptions,
        *,
        base_url: str,
        token: str | None,
        console: Console,
    ) -> bool: ...


@dataclass(frozen=True)
class CallOptions:
    department: str | None = None
    number: str | None = None
    caller: str = "+447700900123"
    digits: str | None = None
    talk: float = 1.0
    to: str | None = None
    agent: str | None = None


class PeopleApi:
    """The people's API with one bearer token."""

    def __init__(self, http: httpx.Client, base_url: str, token: str) -> None:
        self.http = http
        self.base_url = base_url
        self.headers = {"Authorization": f"Bearer {token}"}

    def post(
        self, path: str, body: dict[str, Any] | None = None, accept: tuple[int, ...] = (200,)
    ) -> dict[str, Any]:
        response = self.http.post(f"{self.base_url}/api/v1{path}", json=body, headers=self.headers)
        if response.status_code not in accept:
            raise SimulationError(
                f"POST /api/v1{path} answered {response.status_code}: {_detail(response)}"
            )
        answer: dict[str, Any] = response.json()
        return answer

    def get(self, path: str) -> dict[str, Any]:
        response = self.http.get(f"{self.base_url}/api/v1{path}", headers=self.headers)
        if response.status_code != 200:
            raise SimulationError(
                f"GET /api/v1{path} answered {response.status_code}: {_detail(response)}"
            )
        answer: dict[str, Any] = response.json()
        return answer


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json()["detail"])
    except (ValueError, KeyError, TypeError):
        return response.text


# -- the supervisor's token ---------------------------------------------------------------


def supervisor_token(
    settings: Settings, http: httpx.Client, base_url: str, given: str | None, console: Console
) -> str:
    """--token / CALLGUARD_TOKEN; else the token kept in ./var/simulate-token; else (none
    kept, or the service refuses it) a new supervisor created in the service's database."""
    if given:
        if not _accepted(http, base_url, given):
            raise SimulationError("the service refused the token of --token / CALLGUARD_TOKEN")
        return given
    if SUPERVISOR_TOKEN_FILE.exists():
        kept = SUPERVISOR_TOKEN_FILE.read_text(encoding="utf-8").strip()
        if kept and _accepted(http, base_url, kept):
            return kept
    name, token = _create_supervisor(settings)
    _keep_secret(SUPERVISOR_TOKEN_FILE, token)
    console.print(
        f"[dim]created the supervisor {name} in the service's database; its token is kept "
        f"in {SUPERVISOR_TOKEN_FILE} for the next runs[/dim]",
        highlight=False,
    )
    return token


def _accepted(http: httpx.Client, base_url: str, token: str) -> bool:
    response = http.get(f"{base_url}/api/v1/policy", headers={"Authorization": f"Bearer {token}"})
    return response.status_code != 401


def _create_supervisor(settings: Settings) -> tuple[str, str]:
    """Straight into the configured database (the dev flow runs the service and simulate
    from one directory). A taken name is one whose token was lost or revoked: the next
    free suffix is used instead."""
    engine = make_engine(settings.database_url)
    sessions = make_session_factory(engine)
    try:
        for n in range(1, 100):
            name = SUPERVISOR if n == 1 else f"{SUPERVISOR}-{n}"
            try:
                with unit_of_work(sessions) as session:
                    return name, add_user(session, name, Role.SUPERVISOR)
            except Conflict:
                continue
    except SQLAlchemyError as exc:
        raise SimulationError(
            f"could not create the {SUPERVISOR} user in the configured database "
            f"({type(exc).__name__}): run simulate from the service's directory, "
            "or pass --token"
        ) from None
    finally:
        engine.dispose()
    raise SimulationError(f"no free {SUPERVISOR}-N user name: pass --token")


def _keep_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(secret + "\n")
    path.chmod(0o600)  # os.open's mode only applies to a file it creates


def number_for(policy: dict[str, Any], department: str | None) -> str:
    """The number a caller dials: the department's own, else the main (menu) number."""
    if department is None:
        return str(policy["main_numbers"][0])
    for item in policy["departments"]:
        if item["id"] == department:
            if not item["numbers"]:
                raise SimulationError(f"department {department} has no number of its own")
            return str(item["numbers"][0])
    known = ", ".join(d["id"] for d in policy["departments"])
    raise SimulationError(f"no department {department!r}; the policy has: {known}")
