"""E3 under real faults: PostgreSQL stopped mid-run while webhooks keep arriving, and the
server killed with SIGKILL while events wait in its journal (written and fsync'd, not yet
in the database). After the database and the server are back, every event is in the
audit log exactly once and the chain verifies."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url
from twilio.request_validator import RequestValidator

from app.audit.verify import verify_chain
from app.storage.db import make_engine, make_session_factory
from app.storage.models import AuditEvent
from tests.e2e.conftest import BIN, Server, free_port
from tests.factories import MAIN_NUMBER, new_call_sid

PG_URL = os.environ.get("CALLGUARD_TEST_DATABASE_URL") or ""
pytestmark = pytest.mark.skipif(
    not PG_URL.startswith("postgresql")
    or make_url(PG_URL).host not in ("127.0.0.1", "localhost")
    or shutil.which("pg_ctlcluster") is None
    or os.geteuid() != 0,
    reason="stops and restarts the local PostgreSQL cluster (CI's PostgreSQL pass, as root)",
)


def _cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    command = ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action]
    if action == "stop":
        command += ["-m", "fast"]
    subprocess.run(command, check=True, capture_output=True, timeout=60)
    if action == "start":
        deadline = time.monotonic() + 60
        while subprocess.run(["pg_isready", "-h", "127.0.0.1", "-q"], check=False).returncode:
            assert time.monotonic() < deadline, "PostgreSQL did not come back"
            time.sleep(0.2)


@pytest.mark.parametrize("kill", [False, True], ids=["server-survives", "server-sigkilled"])
def test_nothing_is_lost_while_postgres_is_down(database_url: str, tmp_path: Path, kill: bool):
    port = free_port()
    token = "outage-token"
    env = {
        **os.environ,
        "CALLGUARD_DATABASE_URL": database_url,
        "CALLGUARD_PORT": str(port),
        "CALLGUARD_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "TWILIO_AUTH_TOKEN": token,
        "CALLGUARD_JOURNAL_DIR": str(tmp_path / "journal"),
    }
    env.pop("CALLGUARD_TEST_DATABASE_URL", None)
    subprocess.run(
        [BIN / "callguard", "migrate"], env=env, cwd=tmp_path, check=True, capture_output=True
    )
    server = Server(env, tmp_path, port)
    validator = RequestValidator(token)

    def webhook(path: str, params: dict[str, str]) -> httpx.Response:
        signature = validator.compute_signature(server.url + path, params)
        return httpx.post(
            server.url + path, data=params, headers={"X-Twilio-Signature": signature}, timeout=30
        )

    before, during = new_call_sid(), new_call_sid()
    server.start()
    try:
        webhook("/webhooks/twilio/voice", {"CallSid": before, "To": MAIN_NUMBER})
        assert (
            "<Enqueue>"
            in webhook("/webhooks/twilio/ivr?step=1", {"CallSid": before, "Digits": "1"}).text
        )

        _cluster("stop")
        try:
            answer = webhook("/webhooks/twilio/voice", {"CallSid": during, "To": MAIN_NUMBER})
            assert answer.status_code == 200
            assert "<Enqueue>callguard-fallback</Enqueue>" in answer.text  # the fail-safe
            ended = {"CallSid": before, "CallStatus": "completed", "SequenceNumber": "3"}
            assert webhook("/webhooks/twilio/call-status", ended).status_code == 204
            assert webhook("/webhooks/twilio/call-status", ended).status_code == 204  # retry
            state = server.wait(lambda r: r.status_code == 503)
            assert state["journal_backlog"] == 3
            if kill:
                server.stop(signal.SIGKILL)  # between the journal's fsync and the database
        finally:
            _cluster("start")
        if kill:
            server.start()
        state = server.wait(lambda r: r.status_code == 200 and r.json()["journal_backlog"] == 0)
        assert state["checks"]["database"] == "ok"
    finally:
        server.stop()

    engine = make_engine(database_url)
    try:
        with make_session_factory(engine)() as session:

            def count(call_sid: str, type_: str) -> int:
                return session.scalar(
                    select(func.count())
                    .select_from(AuditEvent)
                    .where(AuditEvent.call_sid == call_sid, AuditEvent.type == type_)
                )

            assert count(before, "call.started") == 1
            assert count(before, "call.ended") == 1
            assert count(during, "call.started") == 1
            assert count(during, "call.fail_safe_answered") == 1
            assert verify_chain(session).ok
    finally:
        engine.dispose()
