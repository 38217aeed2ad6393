"""`callguard simulate` on Amazon Connect: Connect's side of a call played against a running
callguard (CALLGUARD_PROVIDER=connect) and a Connect stand-in (`python -m tests.connect_fake`,
whose /_standin/ controls make what only a caller or an agent can: a contact arriving, a
transfer in the CCP, a hang-up with its audio written to S3). The caller goes through the
flow as the Lambda forwards it (emulate.py), contact events arrive as EventBridge delivers
them, and a supervisor acts through the people's API. It never places a call on a real
instance: without the stand-in's controls it refuses to run."""

from __future__ import annotations

import os
import time
from typing import Any

import httpx
from rich.console import Console

from app.config import Settings
from app.platforms.connect.emulate import Contact, Emulator
from app.platforms.connect.settings import load_connect_settings
from app.platforms.simulation import (
    DEFAULT_DEPARTMENT,
    DEFAULT_TO,
    NON_RECORDED_REASON,
    CallOptions,
    PeopleApi,
    Scenario,
    SimulationError,
    number_for,
    supervisor_token,
)

SETTLE_SECONDS = 15.0


class StandIn:
    """The Connect stand-in's own controls (not Connect's API)."""

    def __init__(self, http: httpx.Client, endpoint: str) -> None:
        self.http = http
        self.base = endpoint.rstrip("/") + "/_standin"

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            response = self.http.request(method, self.base + path, json=body)
        except httpx.HTTPError as exc:
            raise SimulationError(f"the Connect stand-in is not answering: {exc}") from None
        if response.status_code != 200:
            raise SimulationError(
                f"{self.base}{path} answered {response.status_code}: this is not the Connect "
                "stand-in (python -m tests.connect_fake); simulate never calls a real Connect"
            )
        return response.json()


class ConnectCall:
    """One caller's chain of contacts, played through the flow and EventBridge."""

    def __init__(
        self,
        emulator: Emulator,
        standin: StandIn,
        people: PeopleApi,
        console: Console,
        talk: float,
    ) -> None:
        self.emulator = emulator
        self.standin = standin
        self.people = people
        self.console = console
        self.talk_seconds = talk
        self.contacts: list[Contact] = []
        self.agent_arn: str | None = None
        self.seen = len(standin.call("GET", "/requests")["items"])

    @property
    def current(self) -> Contact:
        return self.contacts[-1]

    @property
    def sid(self) -> str:
        return self.contacts[0].initial_id

    def dial(self, number: str, caller: str, digits: str) -> None:
        made = self.standin.call("POST", "/contacts", {"method": "INBOUND"})
        contact = Contact(made["id"], made["initial_id"], dialled=number, caller=caller)
        self.contacts.append(contact)
        self.console.print(f"== call {self.sid} to {number} ==", highlight=False)
        self._route(contact, list(digits))

    def _route(self, contact: Contact, keys: list[str]) -> dict[str, Any]:
        """The flow: ask callguard, play its prompt, take a key, until it queues."""
        answer = self._flow(contact, "arrive")
        for _ in range(10):
            if answer["prompt"]:
                self.console.print(f"  [dim]says:[/dim] {answer['prompt']}", highlight=False)
            if answer["next"] == "queue":
                self.console.print(
                    f"  [green]queued:[/green] {answer['queue']} (recorded: {answer['recorded']})",
                    highlight=False,
                )
                self.show_commands()
                return answer
            key = keys.pop(0) if keys else ""
            self.console.print(f"[cyan]caller presses {key or 'nothing'}[/cyan]")
            answer = self._flow(contact, "digits", key, answer.get("menu_step", ""))
        raise SimulationError("the flow did not queue the caller after 10 steps")

    def _flow(self, contact: Contact, step: str, key: str = "", menu: str = "") -> dict[str, Any]:
        response = self.emulator.flow(contact, step, key, menu)
        if response.status_code != 200:
            raise SimulationError(f"the flow call answered {response.status_code}")
        answer: dict[str, Any] = response.json()
        return answer

    def events(self, contact: Contact, *kinds: str) -> None:
        for kind in kinds:
            agent = self.agent_arn if kind == "CONNECTED_TO_AGENT" else None
            response = self.emulator.event(contact, kind, agent_arn=agent)
            if response.status_code != 204:
                raise SimulationError(f"contact event {kind} answered {response.status_code}")
            self.console.print(f"  [dim]EventBridge: {kind} ({contact.id})[/dim]")

    def put_through(self, agent: str | None) -> None:
        if agent and self.agent_arn is None:
            self.agent_arn = self.standin.call("POST", "/users", {"username": agent})["arn"]
        self.events(self.current, "INITIATED", "QUEUED", "CONNECTED_TO_AGENT")

    def transfer_in_ccp(self, queue: str) -> None:
        """An agent's quick-connect transfer: a new contact through the transfer flow."""
        self.console.print(f"[cyan]the agent transfers the call in the CCP to {queue}[/cyan]")
        previous = self.current
        made = self.standin.call(
            "POST", "/contacts", {"method": "TRANSFER", "previous": previous.id, "queue": queue}
        )
        queues = self.standin.call("GET", "/instance")["queues"]
        moved = Contact(
            made["id"],
            previous.initial_id,
            method="TRANSFER",
            previous_id=previous.id,
            queue_name=queue,
            queue_arn=queues.get(queue),
        )
        self.contacts.append(moved)
        self._route(moved, [])
        # The agent's contact ends once the caller has moved on; its audio lands in S3.
        self.standin.call("POST", f"/contacts/{previous.id}/disconnect")
        self.events(previous, "DISCONNECTED")
        self.put_through(None)

    def act(self, what: str, action: str, body: dict[str, Any] | None = None, **kw: Any) -> Any:
        self.console.print(
            f"[cyan]{what}[/cyan]  [dim]POST /api/v1/calls/{self.sid}/{action}[/dim]",
            highlight=False,
        )
        answer = self.people.post(f"/calls/{self.sid}/{action}", body, **kw)
        self.show_commands()
        if "call_sid" in answer:
            self.console.print(
                f"  now: {answer['department']}; recording {answer['recording']}; callguard "
                f"wants {answer['desired']} because {', '.join(answer['reasons'])}",
                highlight=False,
            )
        if answer.get("action"):
            email = (
                f" (advise the caller to write to {answer['email']})" if answer.get("email") else ""
            )
            self.console.print(f"  [bold]opt-out action: {answer['action']}{email}[/bold]")
        for key in ("instruction", "detail"):
            if answer.get(key):
                self.console.print(f"  [bold]{answer[key]}[/bold]", highlight=False)
        return answer

    def talk(self, what: str = "caller and agent talk") -> None:
        self.console.print(f"[cyan]{what} ({self.talk_seconds:g}s)[/cyan]", highlight=False)
        time.sleep(self.talk_seconds)

    def hang_up(self) -> None:
        self.console.print("[cyan]caller hangs up[/cyan]")
        contact = self.current
        self.standin.call("POST", f"/contacts/{contact.id}/disconnect")
        self.events(contact, "DISCONNECTED")

    def show_commands(self) -> None:
        mine = {c.id for c in self.contacts}
        items = self.standin.call("GET", f"/requests?after={self.seen}")["items"]
        self.seen += len(items)
        for item in items:
            if item["contact"] in mine and item["operation"] != "DescribeContact":
                outcome = item["code"] or item["status"]
                self.console.print(
                    f"  [magenta]callguard → Connect:[/magenta] {item['operation']} "
                    f"{item['contact']} ({outcome})",
                    highlight=False,
                )

    def report(self) -> None:
        """Once the recordings are found (or SETTLE_SECONDS pass): decisions, recordings."""
        deadline = time.monotonic() + SETTLE_SECONDS
        events: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            events = self.people.get(f"/calls/{self.sid}/events")["items"]
            started = {e["recording_sid"] for e in events if e["type"] == "recording.started"}
            done = {e["recording_sid"] for e in events if e["type"] == "recording.completed"}
            if started <= done and any(e["type"] == "call.ended" for e in events):
                break
            time.sleep(0.5)
        self.console.print("== what callguard did ==")
        for e in events:
            if e["type"] == "decision":
                self.console.print(
                    f"decision: {e['detail']['desired']} — {', '.join(e['reasons'])} "
                    f"(policy version {e['policy_version']})",
                    highlight=False,
                )
            if e["type"] == "recording.completed":
                self.console.print(
                    f"recording {e['recording_sid']}: {e['detail']['status']}, destroy after "
                    f"{e['detail']['destroy_after']}",
                    highlight=False,
                )
        self.console.print("audit events:")
        for e in events:
            self.console.print(f"  {e['sequence']}  {e['type']}  {e['actor']}", highlight=False)


def _inbound(call: ConnectCall, options: CallOptions) -> bool:
    call.talk()
    return True


def _payment(call: ConnectCall, options: CallOptions) -> bool:
    call.talk()
    answer = call.act("supervisor presses pause for payment", "payment/start", accept=(200, 503))
    call.talk("caller reads out their card details")
    call.act("supervisor presses payment done", "payment/end")
    return answer.get("confirmed") is True


def _opt_out(call: ConnectCall, options: CallOptions) -> bool:
    call.talk()
    call.act("supervisor records that the caller does not want to be recorded", "opt-out")
    call.talk()
    return True


def _transfer(call: ConnectCall, options: CallOptions) -> bool:
    to = options.to or DEFAULT_TO[Scenario.TRANSFER]
    call.talk()
    call.act(
        f"supervisor asks callguard to transfer to {to}",
        "transfer",
        {"department": to},
        accept=(409,),
    )
    call.transfer_in_ccp(to)
    call.talk()
    return True


def _non_recorded(call: ConnectCall, options: CallOptions) -> bool:
    to = options.to or DEFAULT_TO[Scenario.NON_RECORDED]
    call.talk()
    body = {"non_recorded_line": True, "reason": NON_RECORDED_REASON}
    answer = call.act("supervisor moves the call to the non-recorded line", "transfer", body)
    call.transfer_in_ccp(to)
    call.talk()
    return bool(answer["recording"] == "off")


def _live(call: ConnectCall, options: CallOptions) -> bool:
    call.console.print(f"[bold]the call stays live for {call.talk_seconds:g}s[/bold]")
    time.sleep(call.talk_seconds)
    return True


SCENARIOS = {
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
    endpoint = os.environ.get("AWS_ENDPOINT_URL_CONNECT")
    if not endpoint:
        raise SimulationError(
            "simulate plays Amazon Connect's side against the Connect stand-in only: start it "
            "(python -m tests.connect_fake) and load var/connect-standin.env"
        )
    http = httpx.Client(timeout=20)
    base_url = base_url.rstrip("/")
    standin = StandIn(http, endpoint)
    instance = standin.call("GET", "/instance")
    emulator = Emulator(
        instance["arn"], load_connect_settings().token.get_secret_value(), http, base_url
    )
    try:
        supervisor = supervisor_token(settings, http, base_url, token, console)
    except httpx.HTTPError as exc:
        raise SimulationError(f"callguard is not answering at {base_url}: {exc}") from None
    people = PeopleApi(http, base_url, supervisor)
    department = options.department
    if department is None and scenario is not Scenario.INBOUND:
        department = DEFAULT_DEPARTMENT
    number = options.number or number_for(people.get("/policy"), department)
    call = ConnectCall(emulator, standin, people, console, options.talk)
    call.dial(number, options.caller, options.digits or "")
    call.put_through(options.agent)
    try:
        ok = SCENARIOS[scenario](call, options)
    finally:
        call.hang_up()
    call.report()
    return ok
