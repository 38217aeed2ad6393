"""The call-control scenarios of `callguard simulate`, each against a live server: what
the people's API answered, and the platform commands callguard issued for the call."""

from __future__ import annotations

import json
import re
import signal
import stat
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from app.platforms.twilio.signature import sign
from tests.e2e.conftest import BIN, Simulate

CREATED = "created the supervisor simulator-supervisor"


def _commands(out: str) -> list[str]:
    """The report's summary line: `platform commands: start, pause, resume`."""
    match = re.search(r"^platform commands: (.*)$", out, re.MULTILINE)
    assert match, out
    return match.group(1).split(", ")


def _inspect(live: dict, out: str) -> dict:
    """The simulator's signed look at the call the output names."""
    match = re.search(r" call (CA[0-9a-f]{32}) to ", out)
    assert match, out
    url = f"{live['env']['CALLGUARD_PUBLIC_BASE_URL']}/simulator/calls/{match.group(1)}/inspect"
    token = (Path(live["cwd"]) / "var" / "dev-token").read_text().strip()
    response = httpx.post(url, data={}, headers={"X-Twilio-Signature": sign(token, url, {})})
    response.raise_for_status()
    return dict(response.json())


def _ok(result) -> str:  # type: ignore[no-untyped-def]
    assert result.returncode == 0, result.stderr + result.stdout
    return str(result.stdout)


def test_payment_and_opt_out(live, simulate: Simulate) -> None:
    payment = _ok(simulate("payment"))
    assert CREATED in payment  # the first run creates the supervisor it acts as
    token_file = Path(live["cwd"]) / "var" / "simulate-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert "paused — confirmed" in payment
    assert "callguard → platform: pause recording RE" in payment
    assert "callguard → platform: resume recording RE" in payment
    assert _commands(payment) == ["start", "pause", "resume"]
    assert "payment.started" in payment and "payment.ended" in payment
    assert "simulator-supervisor" in payment  # the actor of the payment events

    stopped = _ok(simulate("opt-out"))
    assert CREATED not in stopped  # the kept token is used again
    assert "opt-out action: stopped" in stopped
    assert _commands(stopped) == ["start", "stop"]

    advised = _ok(simulate("opt-out", "--department", "revenues-and-benefits"))
    assert "opt-out action: advise_email" in advised
    assert "revenues@harlow.gov.uk" in advised
    assert _commands(advised) == ["start"]  # recording continues


def test_transfers_and_the_non_recorded_line(live, simulate: Simulate) -> None:
    unlisted = _ok(simulate("transfer"))  # to planning, which is not recorded
    assert "redirect the call to /webhooks/twilio/transfer?kind=department" in unlisted
    assert "<Enqueue>planning</Enqueue>" in unlisted  # the TwiML the redirect fetched
    assert _commands(unlisted) == ["start", "redirect", "stop"]
    assert "decision: off — department_not_recorded" in unlisted

    recorded = _ok(simulate("transfer", "--to", "housing-management"))
    assert _commands(recorded) == ["start", "redirect", "stop", "start"]  # a new segment
    assert "(housing-management): completed" in recorded

    sticky = _ok(simulate("non-recorded"))  # then on to housing-management (recorded)
    commands = _commands(sticky)
    assert commands == ["start", "redirect", "stop", "redirect"]
    assert "start" not in commands[commands.index("stop") :]
    assert "puts the caller through to" in sticky
    assert "decision: off — non_recorded_line" in sticky
    assert "recording stayed off after the non-recorded line" in sticky

    # The command log names SIDs and callguard's own URLs, never a phone number.
    logged = _inspect(live, sticky)["commands"]
    assert [c["operation"] for c in logged] == commands
    names = {k for c in logged for k in c["args"]}
    assert names == {"call_sid", "recording_sid", "url", "status_callback"}
    assert "+44" not in json.dumps(logged)


def test_a_refused_token_is_explained_and_a_stale_kept_one_replaced(
    live, simulate: Simulate
) -> None:
    refused = simulate("opt-out", CALLGUARD_TOKEN="cg_not-a-token")
    assert refused.returncode == 1
    assert "refused the token" in refused.stderr

    token_file = Path(live["cwd"]) / "var" / "simulate-token"
    _ok(simulate("opt-out"))
    token_file.write_text("cg_revoked\n", encoding="utf-8")
    replaced = _ok(simulate("opt-out"))
    assert f"{CREATED}-2 " in replaced
    assert token_file.read_text(encoding="utf-8").strip() != "cg_revoked"


def test_live_call_is_assigned_and_stays_up_for_the_console(live, simulate: Simulate) -> None:
    from app.people.users import Role, add_user
    from app.storage.db import make_engine, make_session_factory, unit_of_work

    engine = make_engine(live["env"]["CALLGUARD_DATABASE_URL"])
    with unit_of_work(make_session_factory(engine)) as session:
        add_user(session, "ann", Role.AGENT)
    engine.dispose()
    out = _ok(simulate("live", "--agent", "ann"))
    assert "supervisor assigns the call to ann" in out
    assert "/console" in out
    state = _inspect(live, out)
    assert state["call"]["agent"] == "ann"
    assert state["call"]["status"] == "completed"  # hung up after --talk
    assert _commands(out)[0] == "start"  # recorded while it was up


def test_piped_output_cuts_nothing_and_commands_come_before_their_state(
    live, simulate: Simulate
) -> None:
    """Issue 14 items 7 and 9: piped into a narrow width, every event type, reason and id is
    whole (nothing ends in '…'), and a person's action prints the platform command first,
    then the call state it led to."""
    out = _ok(simulate("payment", COLUMNS="40"))
    assert "…" not in out
    for whole in ("recording.pause_requested", "payment_in_progress", "department_recorded"):
        assert whole in out
    call = _inspect(live, out)
    for recording in call["recordings"]:
        assert recording["recording_sid"] in out
    pause = out.index("callguard → platform: pause recording RE")
    paused_state = out.index("recording state paused")
    assert pause < paused_state


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=lambda s: s.name)
def test_simulate_live_hangs_up_when_terminated(live, signum: signal.Signals) -> None:
    """Issue 14 item 10: `simulate live` stopped with SIGTERM or SIGINT (Ctrl-C) hangs its
    call up first."""

    # Started with SIGINT ignored, as a script's background job is (the child inherits it):
    # Python then raises no KeyboardInterrupt of its own, so only callguard's handler hangs up.
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        process = subprocess.Popen(
            [BIN / "callguard", "simulate", "live", "--talk", "60"],
            env={**live["env"], "COLUMNS": "200"},
            cwd=live["cwd"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, inherited)
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 30
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "call CA" in line:
                break
        time.sleep(1.5)  # queued, recording, assigned: inside the 60 s of talk
        process.send_signal(signum)
        rest, _ = process.communicate(timeout=30)
    finally:
        process.kill()
    out = "".join(lines) + rest
    state = _inspect(live, out)
    assert state["call"]["status"] == "completed", out
    assert all(r["status"] in ("completed", "absent") for r in state["recordings"]), out
