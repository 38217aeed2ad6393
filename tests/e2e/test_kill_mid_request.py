"""Issue 7, faults: the server process is killed (SIGKILL) in the middle of an agent's
pause, after Twilio was asked to pause and before the answer was written down. Twilio
carries the pause out anyway.

What each side sees: the AGENT's request fails (no answer, so no "paused": the console
shows the connection lost and, from the stored state, NOT paused); the CALLER notices
nothing; the AUDIT LOG holds the request and, after the restart, the confirmed pause —
the restarted server's first reconcile pass finds the call not yet confirmed paused and
puts it right. Nothing is lost and the chain verifies."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import httpx
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from app.audit.verify import verify_chain
from app.storage.db import make_engine, make_session_factory
from app.storage.models import AuditEvent, Call
from tests.e2e.conftest import BIN, Server, free_port
from tests.factories import MAIN_NUMBER, new_call_sid


def test_server_killed_during_a_pause(database_url: str, twilio_server, tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CALLGUARD_DATABASE_URL": database_url,
        "CALLGUARD_PORT": str(port),
        "CALLGUARD_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "CALLGUARD_PROVIDER": "twilio",
        "TWILIO_ACCOUNT_SID": twilio_server.account_sid,
        "TWILIO_AUTH_TOKEN": twilio_server.auth_token,
        "CALLGUARD_TWILIO_API_BASE_URL": twilio_server.base_url,
        "CALLGUARD_JOURNAL_DIR": str(tmp_path / "journal"),
    }
    env.pop("CALLGUARD_TEST_DATABASE_URL", None)
    run = {"env": env, "cwd": tmp_path, "check": True, "capture_output": True, "text": True}
    subprocess.run([BIN / "callguard", "migrate"], **run)  # type: ignore[call-overload]
    added = subprocess.run(  # type: ignore[call-overload]
        [BIN / "callguard", "users", "add", "sue", "--role", "supervisor"], **run
    )
    token = added.stdout.strip().splitlines()[-1]
    server = Server(env, tmp_path, port)
    validator = RequestValidator(twilio_server.auth_token)

    def webhook(path: str, params: dict[str, str]) -> httpx.Response:
        signature = validator.compute_signature(server.url + path, params)
        return httpx.post(server.url + path, data=params, headers={"X-Twilio-Signature": signature})

    call_sid = new_call_sid()
    twilio_server.platform.add_call(call_sid)
    server.start()
    try:
        webhook("/webhooks/twilio/voice", {"CallSid": call_sid, "To": MAIN_NUMBER})
        answer = webhook("/webhooks/twilio/ivr?step=1", {"CallSid": call_sid, "Digits": "1"})
        assert "<Enqueue>contact-harlow</Enqueue>" in answer.text
        (recording,) = twilio_server.platform.recordings(call_sid)

        # Twilio takes 2 s to answer the pause; the server dies while it waits.
        twilio_server.inject("pause", delay=2.0)
        agent_saw: list[object] = []

        def press_pause() -> None:
            try:
                agent_saw.append(
                    httpx.post(
                        f"{server.url}/api/v1/calls/{call_sid}/payment/start",
                        headers={"Authorization": f"Bearer {token}"},
                        timeout=30,
                    ).status_code
                )
            except httpx.HTTPError as exc:
                agent_saw.append(type(exc).__name__)

        agent = threading.Thread(target=press_pause)
        agent.start()
        pause_path = f"/Recordings/{recording.sid}.json"
        deadline = time.monotonic() + 10
        while not twilio_server.requests_for("POST", pause_path):
            assert time.monotonic() < deadline, "the pause never reached Twilio"
            time.sleep(0.02)
        server.stop(signal.SIGKILL)
        agent.join(timeout=10)
        # The agent got no answer at all: never a "paused".
        assert agent_saw and agent_saw[0] in ("RemoteProtocolError", "ReadError"), agent_saw

        # Twilio carried the pause out; callguard's database does not know yet.
        deadline = time.monotonic() + 5
        while twilio_server.platform.recordings(call_sid)[0].status.value != "paused":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        engine = make_engine(database_url)
        sessions = make_session_factory(engine)
        with sessions() as session:
            call = session.get(Call, call_sid)
            assert (call.payment_in_progress, call.desired, call.recording) == (
                True,
                "paused",
                "recording",  # what the agent's console shows: NOT paused
            )

        server.start()  # its first reconcile pass runs at once
        deadline = time.monotonic() + 15
        while True:
            with sessions() as session:
                if session.get(Call, call_sid).recording == "paused":
                    break
            assert time.monotonic() < deadline, "the restarted server did not reconcile"
            time.sleep(0.1)
        response = httpx.get(
            f"{server.url}/api/v1/calls/{call_sid}", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.json()["recording"] == "paused"  # the console: PAUSED FOR PAYMENT
    finally:
        server.stop()

    with sessions() as session:
        types = list(
            session.scalars(
                select(AuditEvent.type)
                .where(AuditEvent.call_sid == call_sid)
                .order_by(AuditEvent.sequence)
            )
        )
        assert types.count("payment.started") == 1
        assert types.count("recording.pause_requested") == 2  # the lost answer, the retry
        assert types[-1] == "recording.paused"
        assert verify_chain(session).ok
    engine.dispose()
    # Twilio saw one recording, paused; nothing was started twice.
    assert [r.status.value for r in twilio_server.platform.recordings(call_sid)] == ["paused"]
