"""The newcomer's path: `callguard serve` on the simulator, then `callguard simulate` from
a second process, against a real uvicorn server."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Simulate


def test_simulated_calls_are_recorded_or_not_by_department(live, simulate: Simulate) -> None:
    assert (Path(live["cwd"]) / "var" / "dev-token").exists()

    recorded = simulate("inbound", "--department", "contact-harlow")
    assert recorded.returncode == 0, recorded.stderr + recorded.stdout
    out = recorded.stdout
    assert "decision: recording — department_recorded (policy version 1)" in out
    assert "decision: off — call_ended" in out  # after the hang-up
    assert "recording RE" in out and "completed, destroy after" in out
    assert "platform commands: start\n" in out
    for event in ("call.started", "recording.started", "call.ended", "recording.completed"):
        assert event in out
    # The inbound scenario needs no person: no supervisor is created for it.
    assert not (Path(live["cwd"]) / "var" / "simulate-token").exists()

    unlisted = simulate("inbound", "--department", "planning")
    assert unlisted.returncode == 0, unlisted.stderr
    assert "not recorded" in unlisted.stdout
    assert "decision: off — department_not_recorded" in unlisted.stdout
    assert "recording.started" not in unlisted.stdout
    assert "platform commands: none" in unlisted.stdout

    menu = simulate("inbound", "--digits", "91")  # opt out, then Contact Harlow (stop)
    assert menu.returncode == 0, menu.stderr
    assert "opt_out.requested" in menu.stdout and "not recorded" in menu.stdout


def test_simulate_explains_unknown_names(simulate: Simulate) -> None:
    department = simulate("inbound", "--department", "nowhere")
    assert department.returncode == 1
    assert "no department 'nowhere'" in department.stderr

    scenario = simulate("refund")
    assert scenario.returncode == 2
    assert "unknown scenario 'refund'" in scenario.stderr
    assert "non-recorded" in scenario.stderr
