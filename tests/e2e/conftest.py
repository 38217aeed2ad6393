"""A real `callguard serve` on the simulator, and `callguard simulate` run against it
from a second process, as in the README."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent

Simulate = Callable[..., subprocess.CompletedProcess[str]]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def serve_env() -> dict[str, str]:
    """More environment for the live service; a module overrides it to serve another
    platform (its provider and settings). None: the simulator."""
    return {}


@pytest.fixture
def live(database_url: str, tmp_path: Path, serve_env: dict[str, str]) -> Iterator[dict[str, str]]:
    port = free_port()
    env = {
        **os.environ,
        **serve_env,
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


@pytest.fixture
def simulate(live: dict) -> Simulate:
    """`callguard simulate SCENARIO --talk 0.2 ARGS…` in the server's directory."""

    def run(scenario: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BIN / "callguard", "simulate", scenario, "--talk", "0.2", *args],
            env={**live["env"], "COLUMNS": "200", **env},
            cwd=live["cwd"],
            capture_output=True,
            text=True,
            timeout=60,
        )

    return run


class Server:
    def __init__(self, env: dict[str, str], cwd: Path, port: int) -> None:
        self.env, self.cwd, self.port = env, cwd, port
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.cwd / f"serve-{time.monotonic_ns()}.log").open("w")
        self.process = subprocess.Popen(
            [BIN / "callguard", "serve"], env=self.env, cwd=self.cwd, stdout=log, stderr=log
        )
        self.wait(lambda r: r.status_code == 200)

    def wait(self, ready, timeout: float = 30) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = httpx.get(f"{self.url}/readyz", timeout=5)
                if ready(response):
                    return response.json()
            except httpx.HTTPError:
                pass
            assert self.process and self.process.poll() is None, "the server died"
            assert time.monotonic() < deadline, "timed out waiting for the server"
            time.sleep(0.2)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)
