"""`callguard simulate`: a caller on the simulated platform. It sends the signed voice and
IVR webhooks Twilio would send, follows the TwiML, hangs up, and prints what callguard
decided and logged."""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
from rich.console import Console
from rich.table import Table

from app.config import Settings
from app.services import DEV_TOKEN_FILE
from app.simulated_platform import sign

ACCOUNT_SID = "AC" + "0" * 32
TERMINAL = ("completed", "absent", "failed")


class SimulationError(Exception):
    pass


@dataclass
class Step:
    says: list[str]
    gather_action: str | None
    redirect: str | None
    queue: str | None
    records_by_twiml: bool


def parse_twiml(body: str) -> Step:
    root = ET.fromstring(body)  # noqa: S314  (our own service's TwiML)
    says = [el.text or "" for el in root.iter("Say")]
    gather = root.find("Gather")
    redirect = root.find("Redirect")
    enqueue = root.find("Enqueue")
    queue = None
    if enqueue is not None:
        queue = (enqueue.text or "").strip() or f"workflow {enqueue.get('workflowSid')}"
    return Step(
        says=says,
        gather_action=gather.get("action") if gather is not None else None,
        redirect=(redirect.text or "").strip() if redirect is not None else None,
        queue=queue,
        records_by_twiml=root.find("Start/Recording") is not None,
    )


class Platform:
    """Signs like Twilio: the signature is over the public URL the service expects."""

    def __init__(self, base_url: str, public_base_url: str, token: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.public = public_base_url.rstrip("/")
        self.token = token
        self.http = httpx.Client(timeout=20)

    def post(self, url_or_path: str, params: dict[str, str]) -> httpx.Response:
        parts = urlsplit(url_or_path)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        public_url = self.public + path
        response = self.http.post(
            self.base_url + path,
            data=params,
            headers={"X-Twilio-Signature": sign(self.token, public_url, params)},
        )
        if response.status_code >= 400:
            raise SimulationError(f"{path} answered {response.status_code}: {response.text}")
        return response


def _token(settings: Settings) -> str:
    if settings.twilio_auth_token:
        return settings.twilio_auth_token
    if not DEV_TOKEN_FILE.exists():
        raise SimulationError(
            f"no {DEV_TOKEN_FILE}: start the service first (make run) in this directory"
        )
    return DEV_TOKEN_FILE.read_text(encoding="utf-8").strip()


def run_inbound(
    settings: Settings,
    *,
    base_url: str,
    department: str | None,
    number: str | None,
    caller: str,
    digits: str | None,
    talk: float,
    console: Console,
) -> bool:
    platform = Platform(base_url, settings.public_base_url, _token(settings))
    try:
        platform.http.get(platform.base_url + "/healthz").raise_for_status()
    except httpx.HTTPError as exc:
        raise SimulationError(f"callguard is not answering at {base_url}: {exc}") from None
    policy = platform.post("/simulator/policy", {}).json()
    dialled = number or _number_for(policy, department)
    call_sid = "CA" + secrets.token_hex(16)
    console.rule(f"inbound call {call_sid} to {dialled}")
    base = {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "ApiVersion": "2010-04-01"}
    response = platform.post(
        "/webhooks/twilio/voice",
        {**base, "From": caller, "To": dialled, "CallStatus": "ringing", "Direction": "inbound"},
    )
    step = parse_twiml(response.text)
    keys = list(digits or "")
    for _ in range(10):
        _show(console, step)
        if step.queue is not None:
            break
        action = step.gather_action or step.redirect
        if action is None:
            raise SimulationError("the TwiML neither queues the call nor asks for input")
        params = {**base, "CallStatus": "in-progress"}
        if keys and step.gather_action:
            params["Digits"] = keys.pop(0)
            console.print(f"[cyan]caller presses {params['Digits']}[/cyan]")
        else:
            console.print("[cyan]caller presses nothing[/cyan]")
        step = parse_twiml(platform.post(action, params).text)
    else:
        raise SimulationError("the IVR did not queue the call after 10 steps")
    time.sleep(talk)
    console.print("[cyan]caller hangs up[/cyan]")
    platform.post(f"/simulator/calls/{call_sid}/hangup", {})
    state = _settled(platform, call_sid)
    _report(console, state)
    return True


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
        state: dict[str, Any] = platform.post(f"/simulator/calls/{call_sid}/inspect", {}).json()
        done = state["call"] and state["call"]["status"] == "completed"
        finished = all(
            r["status"] in ("completed", "absent", "failed") for r in state["recordings"]
        )
        if (done and finished) or time.monotonic() > deadline:
            return state
        time.sleep(0.2)


def _show(console: Console, step: Step) -> None:
    for text in step.says:
        console.print(f"  [dim]says:[/dim] {text}", highlight=False)
    if step.gather_action:
        console.print("  [dim]waits for a key[/dim]")
    if step.queue:
        console.print(f"  [green]queued:[/green] {step.queue}", highlight=False)


def _report(console: Console, state: dict[str, Any]) -> None:
    call = state["call"]
    console.print(f"department: {call['department']}", highlight=False)
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
