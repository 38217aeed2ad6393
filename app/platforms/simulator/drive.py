"""`callguard simulate`'s caller and supervisor: a caller on the simulated platform sends
the signed webhooks Twilio would send, follows the TwiML (redirects included) and hangs
up; in the call-control scenarios (scenarios.py) a supervisor uses the people's API."""

from __future__ import annotations

import secrets
import time
from typing import Any

import httpx
from rich.console import Console

from app.config import Settings
from app.platforms.simulation import PeopleApi, SimulationError
from app.platforms.simulator.dev_token import DEV_TOKEN_FILE
from app.platforms.simulator.report import (
    Step,
    command_text,
    heading,
    parse_twiml,
    show,
    show_call,
    url_path,
)
from app.platforms.twilio.signature import sign

ACCOUNT_SID = "AC" + "0" * 32
TERMINAL = ("completed", "absent", "failed")


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
        path = url_path(url_or_path)
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


def signing_token(settings: Settings) -> str:
    if settings.twilio_auth_token:
        return settings.twilio_auth_token
    if not DEV_TOKEN_FILE.exists():
        raise SimulationError(
            f"no {DEV_TOKEN_FILE}: start the service first (make run) in this directory"
        )
    return DEV_TOKEN_FILE.read_text(encoding="utf-8").strip()


def settled(platform: Platform, call_sid: str, timeout: float = 15.0) -> dict[str, Any]:
    """Wait until the platform's callbacks have landed: call ended, recordings finished."""
    deadline = time.monotonic() + timeout
    while True:
        state = platform.inspect(call_sid)
        done = state["call"] and state["call"]["status"] == "completed"
        finished = all(r["status"] in TERMINAL for r in state["recordings"])
        if (done and finished) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


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
        heading(self.console, f"{title} call {self.sid} to {number}")
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
            show(self.console, step)
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
        self.console.print(
            f"[cyan]{what}[/cyan]  [dim]POST /api/v1/calls/{self.sid}/{action}[/dim]",
            highlight=False,
        )
        answer = self.people.post(f"/calls/{self.sid}/{action}", body, accept)
        self.show_commands()  # what callguard told the platform, then the state it led to
        if "call_sid" in answer:
            show_call(self.console, answer)
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
        self.console.print(f"[cyan]the platform follows the redirect: POST {url_path(url)}[/cyan]")
        twiml = self.platform.post(url, {**self.params, "CallStatus": "in-progress"}).text
        self.console.print(f"  [dim]TwiML: {twiml.split('?>')[-1].strip()}[/dim]", highlight=False)
        self._follow(parse_twiml(twiml), [])

    def hang_up(self) -> dict[str, Any]:
        self.console.print("[cyan]caller hangs up[/cyan]")
        self.platform.post(f"/simulator/calls/{self.sid}/hangup", {})
        state = settled(self.platform, self.sid)
        self._show_new(state["commands"])
        return state

    def show_commands(self) -> None:
        self._show_new(self.platform.inspect(self.sid)["commands"])

    def _show_new(self, commands: list[dict[str, Any]]) -> None:
        for command in commands[len(self.commands) :]:
            self.console.print(
                f"  [magenta]callguard → platform:[/magenta] {command_text(command)}",
                highlight=False,
            )
        self.commands = commands
