"""`callguard simulate`'s scenarios: what the supervisor does between the caller being
queued and hanging up (drive.py holds the caller and the supervisor; report.py prints)."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console

from app.calls.controls import PAUSE_NOT_CONFIRMED
from app.config import Settings
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
from app.platforms.simulator.drive import LiveCall, Platform, signing_token
from app.platforms.simulator.report import report

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
    platform = Platform(base_url, settings.public_base_url, signing_token(settings))
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
        scenario, options.number or number_for(policy, department), options.caller, options.digits
    )
    try:
        with _interrupts_as_errors():
            ok = SCENARIOS[scenario](call, options)
    except (SimulationError, KeyboardInterrupt):
        call.hang_up()  # else the call would stay live on the simulator for ever
        raise
    report(console, call.hang_up())
    return ok


@contextmanager
def _interrupts_as_errors() -> Iterator[None]:
    """SIGTERM (a `kill`, a closed terminal's supervisor) and SIGINT (Ctrl-C) hang the call
    up before the process goes, rather than leave it `initiated`/`recording` for ever. SIGINT
    is taken here too because a process started in the background by a script inherits it
    ignored, and Python then raises no KeyboardInterrupt of its own."""

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {s: signal.signal(s, interrupted) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
