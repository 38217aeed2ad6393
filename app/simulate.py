"""`callguard simulate`: a caller on the simulated platform and, in the call-control
scenarios, a supervisor using the people's API. It sends the signed webhooks Twilio would
send, follows the TwiML (redirects included), hangs up, and prints what the caller heard,
the platform commands callguard issued, every decision and the audit events."""

from __future__ import annotations

import os
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from app.calls.controls import PAUSE_NOT_CONFIRMED
from app.config import VAR_DIR, Settings
from app.errors import Conflict
from app.people.users import Role, add_user
from app.runtime.services import DEV_TOKEN_FILE
from app.simulated_platform import sign
from app.storage.db import make_engine, make_session_factory, unit_of_work

ACCOUNT_SID = "AC" + "0" * 32
TERMINAL = ("completed", "absent", "failed")
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


@dataclass(frozen=True)
class CallOptions:
    department: str | None = None
    number: str | None = None
    caller: str = "+447700900123"
    digits: str | None = None
    talk: float = 1.0
    to: str | None = None
    agent: str | None = None


@dataclass
class Step:
    says: list[str]
    gather_action: str | None
    redirect: str | None
    queue: str | None
    dial: str | None
    records_by_twiml: bool


def parse_twiml(body: str) -> Step:
    root = ET.fromstring(body)  # noqa: S314  (our own service's TwiML)
    says = [el.text or "" for el in root.iter("Say")]
    gather = root.find("Gather")
    redirect = root.find("Redirect")
    enqueue = root.find("Enqueue")
    dial = root.find("Dial")
    queue = None
    if enqueue is not None:
        queue = (enqueue.text or "").strip() or f"workflow {enqueue.get('workflowSid')}"
    return Step(
        says=says,
        gather_action=gather.get("action") if gather is not None else None,
        redirect=(redirect.text or "").strip() if redirect is not None else None,
        queue=queue,
        dial=(dial.text or "").strip() if dial is not None else None,
        records_by_twiml=root.find("Start/Recording") is not None,
    )


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


class Platform:
    """Signs like Twilio: the signature is over the public URL the service expects."""

    def __init__(self, base_url: str, public_base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.public = public_base_url.rstrip("/")
        self.token = token
        self.http = httpx.Client(timeout=20)

    def check_up(self) -> None:
        try:
            self.http.get(self.base_url + "/healthz").raise_for_status()
        except httpx.HTTPError as exc:
            raise SimulationError(f"callguard is not answering at {self.base_url}: {exc}") from None

    def post(self, url_or_path: str, params: dict[str, str]) -> httpx.Response:
        path = _path(url_or_path)
        response = self.http.post(
            self.base_url + path,
            data=params,
            headers={"X-Twilio-Signature": sign(self.token, self.public + path, params)},
        )
        if response.status_code >= 400:
            raise SimulationError(f"{path} answered {response.status_code}: {response.text}")
        return response

    def inspect(self, call_sid: str) -> dict[str, Any]:
        state: dict[str, Any] = self.post(f"/simulator/calls/{call_sid}/inspect", {}).json()
        return state


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


def _signing_token(settings: Settings) -> str:
    if settings.twilio_auth_token:
        return settings.twilio_auth_token
    if not DEV_TOKEN_FILE.exists():
        raise SimulationError(
            f"no {DEV_TOKEN_FILE}: start the service first (make run) in this directory"
        )
    return DEV_TOKEN_FILE.read_text(encoding="utf-8").strip()


# -- one call -------------------------------------------------------------------------------


class LiveCall:
    """One simulated call: the caller on the platform, the supervisor on the people's API,
    and how much of the platform's command log has been printed so far."""

    def __init__(
        self, platform: Platform, people: PeopleApi | None, console: Console, talk: float
    ) -> None:
        self.sid = "CA" + secrets.token_hex(16)
        self.platform = platform
        self.people = people
        self.console = console
        self.talk_seconds = talk
        self.params = {"AccountSid": ACCOUNT_SID, "CallSid": self.sid, "ApiVersion": "2010-04-01"}
        self.commands: list[dict[str, Any]] = []

    def dial(self, title: str, number: str, caller: str, digits: str | None) -> None:
        self.console.rule(f"{title} call {self.sid} to {number}")
        response = self.platform.post(
            "/webhooks/twilio/voice",
            {
                **self.params,
                "From": caller,
                "To": number,
                "CallStatus": "ringing",
                "Direction": "inbound",
            },
        )
        self._follow(parse_twiml(response.text), list(digits or ""))
        self.show_commands()

    def _follow(self, step: Step, keys: list[str]) -> None:
        """Answer the TwiML as a caller would, until it queues the call or puts it through."""
        for _ in range(10):
            _show(self.console, step)
            if step.queue is not None or step.dial is not None:
                return
            action = step.gather_action or step.redirect
            if action is None:
                raise SimulationError("the TwiML neither queues the call nor asks for input")
            params = {**self.params, "CallStatus": "in-progress"}
            if keys and step.gather_action:
                params["Digits"] = keys.pop(0)
                self.console.print(f"[cyan]caller presses {params['Digits']}[/cyan]")
            else:
                self.console.print("[cyan]caller presses nothing[/cyan]")
            step = parse_twiml(self.platform.post(action, params).text)
        raise SimulationError("the IVR did not queue the call after 10 steps")

    def talk(self, what: str = "caller and agent talk") -> None:
        self.console.print(f"[cyan]{what} ({self.talk_seconds:g}s)[/cyan]", highlight=False)
        time.sleep(self.talk_seconds)

    def act(
        self,
        what: str,
        action: str,
        body: dict[str, Any] | None = None,
        accept: tuple[int, ...] = (200,),
    ) -> dict[str, Any]:
        """A supervisor's button: the people's API answer and the commands it caused."""
        assert self.people is not None
        self.console.print(f"[cyan]{what}[/cyan]  [dim]POST /api/v1/calls/…/{action}[/dim]")
        answer = self.people.post(f"/calls/{self.sid}/{action}", body, accept)
        if "call_sid" in answer:
            _show_call(self.console, answer)
        self.show_commands()
        return answer

    def transfer(self, what: str, body: dict[str, Any]) -> None:
        self.act(what, "transfer", body)
        self.follow_redirect()

    def follow_redirect(self) -> None:
        """Like Twilio after a call update: fetch the redirect's URL, play its TwiML."""
        redirects = [c for c in self.commands if c["operation"] == "redirect"]
        if not redirects:
            raise SimulationError("callguard did not redirect the call")
        url = redirects[-1]["args"]["url"]
        self.console.print(f"[cyan]the platform follows the redirect: POST {_path(url)}[/cyan]")
        twiml = self.platform.post(url, {**self.params, "CallStatus": "in-progress"}).text
        self.console.print(f"  [dim]TwiML: {twiml.split('?>')[-1].strip()}[/dim]", highlight=False)
        self._follow(parse_twiml(twiml), [])

    def hang_up(self) -> dict[str, Any]:
        self.console.print("[cyan]caller hangs up[/cyan]")
        self.platform.post(f"/simulator/calls/{self.sid}/hangup", {})
        state = _settled(self.platform, self.sid)
        self._show_new(state["commands"])
        return state

    def show_commands(self) -> None:
        self._show_new(self.platform.inspect(self.sid)["commands"])

    def _show_new(self, commands: list[dict[str, Any]]) -> None:
        for command in commands[len(self.commands) :]:
            self.console.print(
                f"  [magenta]callguard → platform:[/magenta] {_command_text(command)}",
                highlight=False,
            )
        self.commands = commands


# -- scenarios: after the call is queued, before the caller hangs up -----------------------


def _inbound(call: LiveCall, options: CallOptions) -> bool:
    call.talk()
    return True


def _payment(call: LiveCall, options: CallOptions) -> bool:
    call.talk()
    answer = call.act("supervisor presses pause for payment", "payment/start", accept=(200, 503))
    confirmed = answer.get("confirmed") is True
    if confirmed:
        call.console.print("[bold green]paused — confirmed: card details may be taken")
    else:
        call.console.print(f"[bold red]{answer.get('detail') or PAUSE_NOT_CONFIRMED}")
    call.talk("caller reads out their card details")
    call.act("supervisor presses payment done", "payment/end")
    call.talk()
    return confirmed


def _opt_out(call: LiveCall, options: CallOptions) -> bool:
    call.talk()
    answer = call.act("supervisor records that the caller does not want to be recorded", "opt-out")
    if answer["action"] == "advise_email":
        call.console.print(
            "[bold yellow]opt-out action: advise_email[/bold yellow] — recording continues; "
            f"advise the caller to write to {answer['email']} instead",
            highlight=False,
        )
    else:
        call.console.print("[bold]opt-out action: stopped[/bold] — no more recording")
    call.talk()
    return True


def _transfer(call: LiveCall, options: CallOptions) -> bool:
    to = options.to or DEFAULT_TO[Scenario.TRANSFER]
    call.talk()
    call.transfer(f"supervisor transfers the call to {to}", {"department": to})
    call.talk()
    return True


def _non_recorded(call: LiveCall, options: CallOptions) -> bool:
    """Once on the non-recorded line, no transfer may start recording again."""
    to = options.to or DEFAULT_TO[Scenario.NON_RECORDED]
    call.talk()
    before = len(call.commands)
    call.transfer(
        "supervisor moves the call to the non-recorded line",
        {"non_recorded_line": True, "reason": NON_RECORDED_REASON},
    )
    call.talk()
    call.transfer(f"supervisor transfers the call on to {to}", {"department": to})
    call.talk()
    restarted = [c for c in call.commands[before:] if c["operation"] in ("start", "resume")]
    if restarted:
        call.console.print("[bold red]recording restarted after the non-recorded line")
    else:
        call.console.print("[bold green]recording stayed off after the non-recorded line")
    return not restarted


def _live(call: LiveCall, options: CallOptions) -> bool:
    """A call that stays up for the console: assigned to --agent, live for --talk seconds
    (Ctrl-C hangs up sooner)."""
    if options.agent:
        call.act(
            f"supervisor assigns the call to {options.agent}", "assign", {"agent": options.agent}
        )
    console_url = f"{call.platform.base_url}/console"
    call.console.print(
        f"[bold]the call stays live for {call.talk_seconds:g}s: watch it at {console_url} "
        "(Ctrl-C hangs up now)[/bold]",
        highlight=False,
    )
    try:
        time.sleep(call.talk_seconds)
    except KeyboardInterrupt:
        call.console.print("[cyan]interrupted[/cyan]")
    return True


SCENARIOS: dict[Scenario, Callable[[LiveCall, CallOptions], bool]] = {
    Scenario.INBOUND: _inbound,
    Scenario.PAYMENT: _payment,
    Scenario.OPT_OUT: _opt_out,
    Scenario.TRANSFER: _transfer,
    Scenario.NON_RECORDED: _non_recorded,
    Scenario.LIVE: _live,
}


def run(
    settings: Settings,
    scenario: Scenario,
    options: CallOptions,
    *,
    base_url: str,
    token: str | None,
    console: Console,
) -> bool:
    """Place the call, play the scenario, hang up and report; False when the scenario's
    own check failed (a pause not confirmed, recording restarted)."""
    platform = Platform(base_url, settings.public_base_url, _signing_token(settings))
    platform.check_up()
    people = None
    if scenario is not Scenario.INBOUND:
        people = PeopleApi(
            platform.http,
            platform.base_url,
            supervisor_token(settings, platform.http, platform.base_url, token, console),
        )
    policy = platform.post("/simulator/policy", {}).json()
    department = options.department
    if department is None and scenario is not Scenario.INBOUND:
        department = DEFAULT_DEPARTMENT
    call = LiveCall(platform, people, console, options.talk)
    call.dial(
        scenario, options.number or _number_for(policy, department), options.caller, options.digits
    )
    try:
        ok = SCENARIOS[scenario](call, options)
    except SimulationError:
        call.hang_up()  # else the call would stay live on the simulator
        raise
    _report(console, call.hang_up())
    return ok


def _number_for(policy: dict[str, Any], department: str | None) -> str:
    if department is None:
        return str(policy["main_numbers"][0])
    for item in policy["departments"]:
        if item["id"] == department:
            if not item["numbers"]:
                raise SimulationError(f"department {department} has no number of its own")
            return str(item["numbers"][0])
    known = ", ".join(d["id"] for d in policy["departments"])
    raise SimulationError(f"no department {department!r}; the policy has: {known}")


def _settled(platform: Platform, call_sid: str, timeout: float = 15.0) -> dict[str, Any]:
    """Wait until the platform's callbacks have landed: call ended, recordings finished."""
    deadline = time.monotonic() + timeout
    while True:
        state = platform.inspect(call_sid)
        done = state["call"] and state["call"]["status"] == "completed"
        finished = all(r["status"] in TERMINAL for r in state["recordings"])
        if (done and finished) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


# -- printing -------------------------------------------------------------------------------


def _show(console: Console, step: Step) -> None:
    for text in step.says:
        console.print(f"  [dim]says:[/dim] {text}", highlight=False)
    if step.gather_action:
        console.print("  [dim]waits for a key[/dim]")
    if step.queue:
        console.print(f"  [green]queued:[/green] {step.queue}", highlight=False)
    if step.dial:
        console.print(f"  [green]puts the caller through to:[/green] {step.dial}", highlight=False)


def _show_call(console: Console, call: dict[str, Any]) -> None:
    console.print(
        f"  now: {call['department']}; recording state {call['recording']}; "
        f"callguard wants {call['desired']} because {', '.join(call['reasons'])}",
        highlight=False,
    )


def _command_text(command: dict[str, Any]) -> str:
    operation, args = command["operation"], command["args"]
    if operation == "redirect":
        return f"redirect the call to {_path(args['url'])}"
    if operation == "start":
        return "start recording"
    return f"{operation} recording {args.get('recording_sid', '')}"


def _report(console: Console, state: dict[str, Any]) -> None:
    call = state["call"]
    console.rule("what callguard did")
    console.print(f"department: {call['department']}", highlight=False)
    operations = [c["operation"] for c in state["commands"]]
    console.print(f"platform commands: {', '.join(operations) or 'none'}", highlight=False)
    for event in state["events"]:
        if event["type"] == "decision":
            console.print(
                f"decision: [bold]{event['detail']['desired']}[/bold] — "
                f"{', '.join(event['reasons'])} (policy version {event['policy_version']})",
                highlight=False,
            )
    for r in state["recordings"]:
        console.print(
            f"recording {r['recording_sid']} ({r['department']}): {r['status']}, "
            f"destroy after {r['destroy_after']}",
            highlight=False,
        )
    if not state["recordings"]:
        console.print("[yellow]not recorded[/yellow]")
    table = Table(title="audit events")
    for column in ("seq", "type", "actor", "recording", "reasons", "detail"):
        table.add_column(column)
    for e in state["events"]:
        table.add_row(
            str(e["sequence"]),
            e["type"],
            e["actor"],
            e["recording_sid"] or "",
            ", ".join(e["reasons"]),
            ", ".join(f"{k}={v}" for k, v in e["detail"].items()),
        )
    console.print(table)
