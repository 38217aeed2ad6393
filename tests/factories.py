"""Builders for tests: a signing platform that drives calls through the real webhooks."""

from __future__ import annotations

import io
import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from twilio.request_validator import RequestValidator

from app.config import Settings
from app.people.users import Role, add_user
from app.platforms.simulator.provider import SimulatorProvider
from app.runtime.logging import json_formatter
from app.runtime.services import Services
from app.storage.db import unit_of_work

ACCOUNT_SID = "AC" + "1" * 32
DEFAULT_CALLER = "+447700900123"
MAIN_NUMBER = "+441632960655"


@dataclass
class Clock:
    """A clock that moves only when told: injected where the code takes `clock=`."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def captured_logs(level: int) -> Iterator[io.StringIO]:
    """The JSON log lines written while the block runs, from `level` up."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    previous = root.level
    root.setLevel(level)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def department_number(client: TestClient, token: str, department: str) -> str:
    policy = client.get("/api/v1/policy", headers=bearer(token)).json()
    return next(d["numbers"][0] for d in policy["departments"] if d["id"] == department)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_user(services: Services, name: str, role: Role) -> str:
    with unit_of_work(services.sessions) as session:
        return add_user(session, name, role)


class Platform:
    """Plays Twilio against the app: signs each webhook with the configured token."""

    def __init__(self, client: TestClient, settings: Settings, simulator: SimulatorProvider):
        self.client = client
        self.settings = settings
        self.simulator = simulator
        self.validator = RequestValidator(settings.twilio_auth_token or "")

    def sign(self, path: str, params: dict[str, str]) -> str:
        return self.validator.compute_signature(self.settings.public_base_url + path, params)

    def post(
        self, path: str, params: dict[str, str], headers: dict[str, str] | None = None
    ) -> Response:
        signed = {"X-Twilio-Signature": self.sign(path, params), **(headers or {})}
        return self.client.post(path, data=params, headers=signed)

    def voice(self, call_sid: str, to: str, caller: str = DEFAULT_CALLER, **extra: str) -> Response:
        return self.post(
            "/webhooks/twilio/voice",
            {
                "AccountSid": ACCOUNT_SID,
                "CallSid": call_sid,
                "From": caller,
                "To": to,
                "CallStatus": "ringing",
                "Direction": "inbound",
                **extra,
            },
        )

    def ivr(self, call_sid: str, step: int, digits: str | None = None) -> Response:
        params = {"AccountSid": ACCOUNT_SID, "CallSid": call_sid, "CallStatus": "in-progress"}
        if digits is not None:
            params["Digits"] = digits
        return self.post(f"/webhooks/twilio/ivr?step={step}", params)

    def call_status(self, call_sid: str, status: str, sequence: int, **extra: str) -> Response:
        return self.post(
            "/webhooks/twilio/call-status",
            {
                "AccountSid": ACCOUNT_SID,
                "CallSid": call_sid,
                "CallStatus": status,
                "SequenceNumber": str(sequence),
                **extra,
            },
        )

    def recording_status(
        self, call_sid: str, recording_sid: str, status: str, **extra: str
    ) -> Response:
        return self.post(
            "/webhooks/twilio/recording-status",
            {
                "AccountSid": ACCOUNT_SID,
                "CallSid": call_sid,
                "RecordingSid": recording_sid,
                "RecordingStatus": status,
                **extra,
            },
        )

    def deliver_callbacks(self) -> list[Response]:
        """Send what the simulated platform has queued, in order, as Twilio would."""
        responses = []
        while not self.simulator.outbox.empty():
            callback = self.simulator.outbox.get_nowait()
            path = callback.url.removeprefix(self.settings.public_base_url)
            responses.append(self.post(path, dict(callback.params)))
        return responses

    def queue_call(self, to: str, digits: list[str] | None = None) -> str:
        """A new call that dials `to`, presses `digits` through the IVR until queued."""
        call_sid = new_call_sid()
        response = self.voice(call_sid, to)
        assert response.status_code == 200, response.text
        step = 1
        presses = list(digits or [])
        while "<Enqueue" not in response.text:
            response = self.ivr(call_sid, step, presses.pop(0) if presses else None)
            assert response.status_code == 200, response.text
            step += 1
        return call_sid

    def hangup(self, call_sid: str, sequence: int = 5) -> Any:
        self.simulator.hangup(call_sid)
        response = self.call_status(call_sid, "completed", sequence)
        assert response.status_code == 204, response.text
        return self.deliver_callbacks()
