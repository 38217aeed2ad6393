"""Issue 14 items 3 and 6 through `callguard serve`'s real uvicorn configuration: a local
client's made-up X-Forwarded-For does not escape the failed-token limit (uvicorn's
proxy_headers would have believed it from 127.0.0.1), it is believed only from
CALLGUARD_TRUSTED_PROXIES, and nothing the server logs holds a media link's token."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import BIN, free_port

LIMIT = 3


class Served:
    def __init__(self, url: str, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.url, self.env, self.cwd, self.log = url, env, cwd, log

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [BIN / "callguard", *args],
            env={**self.env, "COLUMNS": "200"},
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )

    def me(self, token: str, forwarded_for: str | None = None) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        return httpx.get(f"{self.url}/api/v1/me", headers=headers).status_code


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Served]]:
    processes: list[subprocess.Popen[bytes]] = []

    def start(**extra: str) -> Served:
        port = free_port()
        cwd = tmp_path / f"serve-{port}"
        cwd.mkdir()
        env = {
            **os.environ,
            "CALLGUARD_DATABASE_URL": database_url,
            "CALLGUARD_PORT": str(port),
            "CALLGUARD_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "CALLGUARD_AUTH_FAILURE_LIMIT": str(LIMIT),
            **extra,
        }
        env.pop("CALLGUARD_TEST_DATABASE_URL", None)
        subprocess.run([BIN / "callguard", "migrate"], env=env, cwd=cwd, check=True)
        log = cwd / "serve.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                [BIN / "callguard", "serve"], env=env, cwd=cwd, stdout=out, stderr=out
            )
        processes.append(process)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log.read_text())
            time.sleep(0.2)
        return Served(f"http://127.0.0.1:{port}", env, cwd, log)

    yield start
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=10)


def wrong() -> str:
    return "cg_" + secrets.token_urlsafe(32)


def test_media_tokens_stay_out_of_the_log_and_spoofed_addresses_are_one_client(serve) -> None:
    # uvicorn reads FORWARDED_ALLOW_IPS itself: even "*" must not make it believe a header.
    served = serve(FORWARDED_ALLOW_IPS="*")
    added = served.cli("users", "add", "ig", "--role", "governance")
    assert added.returncode == 0, added.stderr
    governance = {"Authorization": f"Bearer {added.stdout.strip().splitlines()[-1]}"}
    call = served.cli("simulate", "inbound", "--department", "contact-harlow", "--talk", "0.2")
    assert call.returncode == 0, call.stderr + call.stdout
    [recording_sid] = re.findall(r"recording (RE[0-9a-f]{32})", call.stdout)[:1]

    granted = httpx.post(
        f"{served.url}/api/v1/recordings/{recording_sid}/access",
        json={"purpose": "complaint"},
        headers=governance,
    )
    assert granted.status_code == 200, granted.text
    media_url = served.url + granted.json()["media_url"]
    token = media_url.rsplit("/", 1)[1]
    assert httpx.get(media_url, headers={"Range": "bytes=0-1"}).status_code == 206
    assert httpx.get(media_url).status_code == 200
    assert httpx.get(media_url + "/").status_code in (307, 404)
    assert httpx.get(f"{media_url}?x=1", headers={"Range": "bytes=99999999-"}).status_code == 416

    # A local client making up a new X-Forwarded-For for every guess is still one client.
    statuses = [served.me(wrong(), f"198.51.100.{n}") for n in range(4 * LIMIT)]
    assert statuses == [401] * LIMIT + [429] * (3 * LIMIT), statuses
    assert served.me(wrong()) == 429

    time.sleep(0.5)  # the server's last lines written
    logs = served.log.read_text()
    assert token not in logs and token[:12] not in logs
    assert logs.count('"path": "/api/v1/media/{token}"') == 3, logs
    assert "198.51.100." not in logs  # the made-up addresses were never the client


def test_forwarded_for_is_believed_from_a_trusted_proxy_only(serve) -> None:
    served = serve(CALLGUARD_TRUSTED_PROXIES="127.0.0.1")
    # Through the trusted proxy each forwarded address is a client of its own…
    for n in range(2 * LIMIT):
        assert served.me(wrong(), f"198.51.100.{n}") == 401
    # …with its own limit; the proxy's other clients are not affected.
    statuses = [served.me(wrong(), "203.0.113.7") for _ in range(LIMIT + 1)]
    assert statuses == [401] * LIMIT + [429]
    assert served.me(wrong(), "203.0.113.8") == 401
