"""The newcomer's path: `callguard serve` on the simulator, then `callguard simulate` from
a second process, against a real uvicorn server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def live(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    port = _free_port()
    env = {
        **os.environ,
        "CALLGUARD_DATABASE_URL": database_url,
        "CALLGUARD_PORT": str(port),
        "CALLGUARD_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
    }
    env.pop("CALLGUARD_TEST_DATABASE_URL", None)
    subprocess.run(
        [BIN / "callguard", "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True
    )
    log = (tmp_path / "serve.log").open("w")
    server = subprocess.Popen(
        [BIN / "callguard", "serve"], env=env, cwd=tmp_path, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise AssertionError((tmp_path / "serve.log").read_text())
            time.sleep(0.2)
        yield {"env": env, "cwd": str(tmp_path)}  # type: ignore[dict-item]
    finally:
        server.terminate()
        server.wait(timeout=10)
        log.close()


def _simulate(live: dict, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BIN / "callguard", "simulate", "inbound", "--talk", "0.2", *args],
        env={**live["env"], "COLUMNS": "200"},
        cwd=live["cwd"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_simulated_calls_are_recorded_or_not_by_department(live) -> None:
    assert (Path(live["cwd"]) / "var" / "dev-token").exists()

    recorded = _simulate(live, "--department", "contact-harlow")
    assert recorded.returncode == 0, recorded.stderr + recorded.stdout
    out = recorded.stdout
    assert "decision: recording — department_recorded (policy version 1)" in out
    assert "decision: off — call_ended" in out  # after the hang-up
    assert "recording RE" in out and "completed, destroy after" in out
    for event in ("call.started", "recording.started", "call.ended", "recording.completed"):
        assert event in out

    unlisted = _simulate(live, "--department", "planning")
    assert unlisted.returncode == 0, unlisted.stderr
    assert "not recorded" in unlisted.stdout
    assert "decision: off — department_not_recorded" in unlisted.stdout
    assert "recording.started" not in unlisted.stdout

    menu = _simulate(live, "--digits", "91")  # opt out, then Contact Harlow (stop)
    assert menu.returncode == 0, menu.stderr
    assert "opt_out.requested" in menu.stdout and "not recorded" in menu.stdout


def test_simulate_explains_an_unknown_department(live) -> None:
    result = _simulate(live, "--department", "nowhere")
    assert result.returncode == 1
    assert "no department 'nowhere'" in result.stderr
