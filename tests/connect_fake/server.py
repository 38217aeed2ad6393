"""An Amazon Connect stand-in for tests, checked against Connect's own botocore service model.

Every request is checked before it is served, in the order AWS does: SigV4 (recomputed with
botocore's signer against the stand-in's credentials, `sigv4.py`), the route (method and
requestUri template of an operation in the model), then the input against that operation's
shape (`model.py`: required, unknown, types, lengths, ranges, patterns, enums), then the
rules the model leaves in prose (`state.py`). A refusal gets Connect's restJson1 error
(status from the model's error shape, `x-amzn-ErrorType: <code>`, `{"message": ...}`, so
boto3 raises ClientError with that Error.Code) and is recorded in `violations`. Every
answer is checked against the operation's output shape before it leaves; one that is off
the model is not sent (the caller gets InternalServiceException) and is recorded as a
violation with code "StandInOffModel", so a drifting stand-in fails its test.

Served: StartContactRecording, SuspendContactRecording, ResumeContactRecording,
StopContactRecording, DescribeContact, DescribeUser, ListQueues. Any other operation of the
model is still routed and checked, then refused as not implemented (501, a violation).
"""

from __future__ import annotations

import asyncio
import secrets
import string
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import boto3
from botocore.config import Config
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.loopback import LoopbackServer

from . import answers
from .journal import OFF_MODEL, Injection, Journal, ReceivedRequest, Violation
from .model import COMMON_ERRORS, SerializationError, ServiceIndex, load_index
from .sigv4 import AuthError, SignedRequest, verify
from .state import ConnectError, ConnectState, Contact, Instance, Queue, User

SERVED = (
    "StartContactRecording",
    "SuspendContactRecording",
    "ResumeContactRecording",
    "StopContactRecording",
    "DescribeContact",
    "DescribeUser",
    "ListQueues",
)


@dataclass
class _State:
    """Everything one test sees; replaced, not cleared, by `reset()` so a request still in
    flight from an earlier test cannot touch the next test's state."""

    connect: ConnectState
    journal: Journal = field(default_factory=Journal)


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def _key(alphabet: str, size: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(size))


class FakeConnectServer:
    """Connect's API for one AWS account and region, served by uvicorn on 127.0.0.1 in a
    thread. Point boto3 at `endpoint_url` with `access_key`/`secret_key` and `region`."""

    def __init__(
        self,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "eu-west-2",
        account_id: str = "123456789012",
        recording_bucket: str = "callguard-connect-recordings",
        latency: float = 0.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.access_key = access_key or "AKIA" + _key(string.ascii_uppercase + string.digits, 16)
        self.secret_key = secret_key or _key(string.ascii_letters + string.digits + "+/", 40)
        self.region, self.account_id = region, account_id
        self.recording_bucket, self.latency, self.clock = recording_bucket, latency, clock
        self.index: ServiceIndex = load_index()
        self.endpoint_url = ""
        self._session = boto3.session.Session()
        self._state = self._new_state()
        methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]
        self.app = Starlette(routes=[Route("/{path:path}", self._handle, methods=methods)])
        self._loopback = LoopbackServer(self.app, "fake-connect")

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, port: int = 0) -> None:
        self.endpoint_url = self._loopback.start(port)
        self.reset()

    def stop(self) -> None:
        self._loopback.stop()

    def reset(self) -> None:
        """No instances, an empty request log and violation list, no pending injections."""
        self._state = self._new_state()

    def _new_state(self) -> _State:
        return _State(
            ConnectState(
                self.index,
                region=self.region,
                account_id=self.account_id,
                recording_bucket=self.recording_bucket,
                clock=self.clock,
            )
        )

    # -- clients -----------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment a boto3 process needs to reach this stand-in."""
        return {
            "AWS_ENDPOINT_URL_CONNECT": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
        }

    def client(
        self,
        *,
        attempts: int = 1,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str | None = None,
        **config: Any,
    ) -> Any:
        """A boto3 Connect client for this stand-in: `attempts` in all (1: no retries); the
        keys and region default to the stand-in's; other keywords go to botocore's Config
        (e.g. parameter_validation=False, read_timeout)."""
        return self._session.client(
            "connect",
            endpoint_url=self.endpoint_url,
            region_name=region or self.region,
            aws_access_key_id=access_key or self.access_key,
            aws_secret_access_key=secret_key or self.secret_key,
            config=Config(retries={"total_max_attempts": attempts, "mode": "standard"}, **config),
        )

    # -- driving Connect's state ---------------------------------------------------------

    @property
    def connect(self) -> ConnectState:
        return self._state.connect

    def add_instance(self, instance_id: str | None = None, alias: str = "callguard") -> Instance:
        return self.connect.add_instance(instance_id, alias)

    def add_queue(self, instance_id: str, name: str | None, **kwargs: Any) -> Queue:
        return self.connect.add_queue(instance_id, name, **kwargs)

    def add_contact(self, instance_id: str, **kwargs: Any) -> Contact:
        return self.connect.add_contact(instance_id, **kwargs)

    def add_user(self, instance_id: str, username: str, **kwargs: Any) -> User:
        return self.connect.add_user(instance_id, username, **kwargs)

    def disconnect_contact(self, instance_id: str, contact_id: str, **kwargs: Any) -> str | None:
        return self.connect.disconnect_contact(instance_id, contact_id, **kwargs)

    def write_recording(self, instance_id: str, contact_id: str) -> str:
        return self.connect.write_recording(instance_id, contact_id)

    def contact(self, instance_id: str, contact_id: str) -> Contact:
        return self.connect.contact(instance_id, contact_id)

    @property
    def lenient_repeats(self) -> bool:
        """Whether a suspend of a suspended recording, or a resume of a running one, is
        accepted and changes nothing (False, the default: refused). Reset per test."""
        return self.connect.lenient_repeats

    @lenient_repeats.setter
    def lenient_repeats(self, value: bool) -> None:
        self.connect.lenient_repeats = value

    # -- faults, logs and violations -------------------------------------------------------

    @property
    def requests(self) -> list[ReceivedRequest]:
        return self._state.journal.requests

    def requests_for(self, operation: str) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.operation == operation]

    @property
    def violations(self) -> list[Violation]:
        return self._state.journal.violations

    def inject(
        self,
        operation: str,
        code: str | None = "ThrottlingException",
        *,
        times: int = 1,
        status: int | None = None,
        message: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Make the next `times` valid requests for `operation` fail with error `code` (its
        status from the model unless given), after sleeping `delay` seconds; Connect's state
        does not change. With `code=None` and a delay the request is then served: a client
        with a shorter timeout sees a timeout while the state still changes."""
        if operation not in SERVED:
            raise ValueError(f"the stand-in serves {SERVED}, not {operation!r}")
        if times < 1:
            raise ValueError("times must be at least 1")
        if code is None and delay <= 0:
            raise ValueError("inject needs an error code, a delay, or both")
        if code is not None:
            op = self.index.model.operation_model(operation)
            known = self.index.operation_errors(op) | set(COMMON_ERRORS)
            if code not in known:
                raise ValueError(f"{operation} cannot answer {code}; it answers {sorted(known)}")
            status = status or self.index.error_status(code)
        self._state.journal.add_injection(Injection(operation, code, status, delay, times, message))

    def reset_injections(self) -> None:
        """Drop the faults still pending: the outage is over."""
        self._state.journal.clear_injections()

    def expect_violations(self, *codes: str) -> None:
        """Let this test's violations with these codes (all, if none is given) pass teardown.
        Violations of the stand-in itself (StandInOffModel) always fail it."""
        self._state.journal.expect(codes)

    def take_violations(self) -> list[Violation]:
        """Return and forget the violations so far."""
        return self._state.journal.take_violations()

    def unexpected_violations(self) -> list[Violation]:
        return self._state.journal.unexpected()

    # -- the ASGI endpoint -------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        journal = self._state.journal  # bound once: a reset during a delay must not mix
        connect = self._state.connect  # tests up
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        body = await request.body()
        raw_path = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        raw_query = request.scope.get("query_string", b"").decode("latin-1")
        headers = {k.lower(): v for k, v in request.headers.items()}
        method, operation = request.method, None
        params: dict[str, Any] = {}

        def logged(status: int, code: str | None) -> ReceivedRequest:
            return ReceivedRequest(operation, method, raw_path, params, status, code)

        try:
            self._authenticate(SignedRequest(method, raw_path, raw_query, headers, body))
            matched = self.index.match(method, raw_path)
            if matched is None:
                msg = f"No operation for {method} {raw_path}"
                raise _Refusal(404, "UnknownOperationException", msg)
            op, labels = matched
            operation = op.name
            query = parse_qsl(raw_query, keep_blank_values=True)
            try:
                params, problems = self.index.decode_input(op, labels, query, headers, body)
            except SerializationError as err:
                raise _Refusal(400, "SerializationException", str(err)) from None
            if problems:
                raise _Refusal(400, self.index.validation_error(op), "; ".join(problems))
            injection = journal.take_injection(operation)
            if injection is not None:
                await asyncio.sleep(injection.delay)
                if injection.code is not None:
                    journal.log(logged(injection.status or 400, injection.code))
                    text = injection.message or f"Injected {injection.code} for {operation}"
                    return _error(injection.status or 400, injection.code, text)
            answer = self._serve(connect, op.name, params)
        except _Refusal as ref:
            if ref.code == OFF_MODEL:
                journal.off_model(logged(500, "InternalServiceException"), ref.message)
                return _error(500, "InternalServiceException", ref.message)
            journal.log(logged(ref.status, ref.code), violation=ref.message)
            return _error(ref.status, ref.code, ref.message)
        problems = self.index.output_problems(op, answer)
        if problems:  # the stand-in drifted from the model: never send it, fail the test
            text = f"stand-in answer off the {op.name} output shape: " + "; ".join(problems)
            journal.off_model(logged(500, "InternalServiceException"), text)
            return _error(500, "InternalServiceException", text)
        journal.log(logged(200, None))
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if answer == {} and not (op.output_shape and op.output_shape.members):
            # DOC (e.g. StartContactRecording): "an HTTP 200 response with an empty HTTP body"
            return Response(status_code=200, headers=headers)
        return JSONResponse(answer, headers=headers)

    def _authenticate(self, signed: SignedRequest) -> None:
        try:
            verify(
                signed,
                {self.access_key: self.secret_key},
                region=self.region,
                service=self.index.model.signing_name or "connect",
            )
        except AuthError as err:
            raise _Refusal(403, err.code, err.message) from None

    def _serve(self, connect: ConnectState, operation: str, params: dict[str, Any]) -> Any:
        op = self.index.model.operation_model(operation)
        try:
            match operation:
                case "StartContactRecording":
                    connect.start_recording(params)
                    return {}
                case "SuspendContactRecording":
                    connect.suspend_recording(params)
                    return {}
                case "ResumeContactRecording":
                    connect.resume_recording(params)
                    return {}
                case "StopContactRecording":
                    connect.stop_recording(params)
                    return {}
                case "DescribeContact":
                    contact = connect.describe_contact(params)
                    return {"Contact": answers.contact_json(contact, self.region)}
                case "DescribeUser":
                    user = connect.describe_user(params)
                    return {"User": answers.user_json(user, self.region)}
                case "ListQueues":
                    queues, token = connect.list_queues(params)
                    page: dict[str, Any] = {
                        "QueueSummaryList": [
                            answers.queue_summary_json(q, self.region) for q in queues
                        ]
                    }
                    if token is not None:
                        page["NextToken"] = token
                    return page
        except ConnectError as err:
            status = self.index.error_status(err.code) or 400
            if err.code not in self.index.operation_errors(op) | set(COMMON_ERRORS):
                raise _Refusal(
                    500, OFF_MODEL, f"{operation} cannot answer {err.code}: {err.message}"
                ) from None
            raise _Refusal(status, err.code, err.message) from None
        raise _Refusal(501, "NotImplemented", f"the stand-in does not serve {operation}")


def _error(status: int, code: str, message: str) -> JSONResponse:
    headers = {"x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())}
    return JSONResponse(answers.error_json(message), status_code=status, headers=headers)
