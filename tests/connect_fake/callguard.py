"""callguard on Amazon Connect, in-process, for tests: CALLGUARD_PROVIDER=connect with boto3
pointed at the Connect stand-in and at moto's S3 server (a real HTTP endpoint, versioning
on), the app behind FastAPI's TestClient, and `ConnectCallguard` to play Connect's side
(the flow's Lambda calls and EventBridge's contact events, app/platforms/connect/emulate.py)
while the stand-in holds the contacts and their recordings.

Fixtures: `s3_endpoint` (one moto server per process) and `connect_callguard`;
`council_instance` sets up an instance as a council would.
"""

from __future__ import annotations

import io
import logging
import threading
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from fastapi.testclient import TestClient
from moto.server import ThreadedMotoServer

from app.audit.log import events_for
from app.config import load_settings
from app.main import create_app
from app.platforms.connect.aws import AwsClients
from app.platforms.connect.client import ConnectClient, build_client
from app.platforms.connect.emulate import Contact, Emulator
from app.platforms.connect.settings import load_connect_settings
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.runtime.services import Services, build_services
from app.storage.models import Call, CallSegment, Recording

from .server import FakeConnectServer
from .state import Instance

TOKEN = "connect-test-token-0123456789abcdef"
CALLER = "+447700900123"
MAIN_NUMBER = "+441632960655"
FALLBACK = "callguard-fallback"

_moto: ThreadedMotoServer | None = None
_moto_lock = threading.Lock()


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    global _moto
    with _moto_lock:
        if _moto is None:
            logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
            _moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            _moto.start()
    host, port = _moto.get_host_and_port()
    return f"http://{host}:{port}"


def s3_client(endpoint: str, server: FakeConnectServer) -> Any:
    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name=server.region,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        config=Config(retries={"total_max_attempts": 1}),
    )


def wav(seconds: float = 1.0) -> bytes:
    """A silent mono WAV: what Connect writes, near enough."""
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\0\0" * int(8000 * seconds))
    return out.getvalue()


def ensure_bucket(s3: Any, bucket: str, region: str) -> None:
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    if bucket not in existing:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})


@dataclass
class ConnectCallguard:
    server: FakeConnectServer
    instance: str
    s3: Any
    services: Services
    client: TestClient
    emulator: Emulator
    queues: dict[str, str] = field(default_factory=dict)  # name -> ARN

    @property
    def connect(self) -> ConnectClient:
        client: ConnectClient = self.services.provider
        return client

    # -- Connect's side ------------------------------------------------------------------

    def new_call(self, dialled: str = MAIN_NUMBER, caller: str = CALLER) -> Contact:
        """A caller's first contact, live at the stand-in."""
        made = self.server.add_contact(self.instance)
        return Contact(made.id, made.id, dialled=dialled, caller=caller)

    def flow(self, contact: Contact, step: str, digits: str | None = None, menu: str = "") -> Any:
        return self.emulator.flow(contact, step, digits, menu)

    def answer(self, contact: Contact, step: str = "arrive", digits: str | None = None) -> dict:
        response = self.flow(contact, step, digits, self._menu.get(contact.id, ""))
        assert response.status_code == 200, response.text
        body: dict[str, str] = response.json()
        self._menu[contact.id] = body.get("menu_step", "")
        return body

    def queue_call(self, dialled: str = MAIN_NUMBER, digits: str = "") -> tuple[Contact, dict]:
        """A new call through the flow until callguard answers `queue`."""
        contact = self.new_call(dialled)
        body = self.answer(contact)
        presses = list(digits)
        while body["next"] == "menu":
            body = self.answer(contact, "digits", presses.pop(0) if presses else "")
        return contact, body

    def transfer(self, contact: Contact, queue: str, method: str = "TRANSFER") -> Contact:
        """An agent's quick-connect transfer to `queue`: a new contact through the flow."""
        made = self.server.add_contact(
            self.instance,
            initiation_method=method,
            previous_contact_id=contact.id,
            queue=queue,
        )
        return Contact(
            made.id,
            contact.initial_id,
            method=method,
            previous_id=contact.id,
            queue_name=queue,
            queue_arn=self.queues.get(queue),
        )

    def event(self, contact: Contact, event_type: str, **kwargs: Any) -> Any:
        response = self.emulator.event(contact, event_type, **kwargs)
        assert response.status_code == 204, response.text
        return response

    def hang_up(self, contact: Contact, audio: bytes | None = None) -> str | None:
        """The contact ends at Connect; a recorded one's audio is written to S3."""
        location = self.server.disconnect_contact(self.instance, contact.id)
        if location is not None:
            bucket, _, key = location.partition("/")
            self.s3.put_object(Bucket=bucket, Key=key, Body=audio or wav(), ContentType="audio/wav")
        return location

    def agent(self, login: str) -> str:
        """An agent's ARN at the stand-in."""
        return self.server.add_user(self.instance, login).arn

    # -- callguard's side ----------------------------------------------------------------

    def call_row(self, call_sid: str) -> Call:
        with self.services.sessions() as session:
            call = session.get(Call, call_sid)
            assert call is not None
            return call

    def recordings(self, call_sid: str) -> list[Recording]:
        with self.services.sessions() as session:
            return list(
                session.query(Recording)
                .filter(Recording.call_sid == call_sid)
                .order_by(Recording.started_at)
            )

    def segments(self, call_sid: str) -> dict[str, CallSegment]:
        with self.services.sessions() as session:
            rows = session.query(CallSegment).filter(CallSegment.call_sid == call_sid)
            return {s.segment_sid: s for s in rows}

    def audit_types(self, call_sid: str) -> list[str]:
        with self.services.sessions() as session:
            return [e.type for e in events_for(session, call_sid=call_sid)]

    def recording_state(self, contact: Contact) -> str | None:
        rec = self.server.contact(self.instance, contact.id).recording
        return None if rec is None else str(rec.state)

    _menu: dict[str, str] = field(default_factory=dict)


def council_instance(server: FakeConnectServer) -> tuple[Instance, dict[str, str]]:
    """An instance at the stand-in with a queue per department of the default policy, named
    by its id, plus callguard-fallback (as a council sets it up): it and the queues' ARNs."""
    instance = server.add_instance()
    queues = {FALLBACK: server.add_queue(instance.id, FALLBACK).arn}
    for department in load_policy_file(DEFAULT_POLICY_PATH).departments:
        queues[department.id] = server.add_queue(instance.id, department.id).arn
    return instance, queues


@pytest.fixture
def connect_callguard(
    connect_server: FakeConnectServer,
    s3_endpoint: str,
    migrated_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ConnectCallguard]:
    monkeypatch.chdir(tmp_path)
    instance, queues = council_instance(connect_server)
    monkeypatch.setenv("CALLGUARD_CONNECT_INSTANCE_ID", instance.id)
    monkeypatch.setenv("CALLGUARD_CONNECT_TOKEN", TOKEN)
    settings = load_settings(
        database_url=migrated_url,
        provider="connect",
        public_base_url="https://calls.example.gov.uk",
        env="test",
    )
    s3 = s3_client(s3_endpoint, connect_server)
    ensure_bucket(s3, connect_server.recording_bucket, connect_server.region)
    aws = AwsClients(connect=connect_server.client(), s3=s3)
    client = build_client(load_connect_settings(), migrated_url, aws)
    services = build_services(settings, provider=client)
    with TestClient(create_app(settings, services), base_url=settings.public_base_url) as http:
        emulator = Emulator(instance.arn, TOKEN, http)
        yield ConnectCallguard(connect_server, instance.id, s3, services, http, emulator, queues)
    services.close()
