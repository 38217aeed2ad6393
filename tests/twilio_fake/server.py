"""A Twilio-compatible REST server for tests, checked against Twilio's OpenAPI description.

Every request is checked before it is served: HTTP Basic credentials, the path against
the spec's templated paths (with their path-parameter patterns), the method, the account
in the path, query and form fields against the operation's schema (names, enums,
required fields, `format: uri`), plus rules the description leaves out (PauseBehavior,
callback events, Status of a live recording, Twilio.CURRENT with concurrent recordings;
those live in `SimulatedPlatform`, shared with the simulator). A request the real API
would reject gets Twilio's error JSON and is recorded in `violations`.

Deliberately stricter than Twilio in one respect: Twilio ignores unknown form fields
(warning 20001, "were not recognized and were ignored"); the fake rejects them, since a
field Twilio drops silently is a bug in the caller.

Error statuses and codes: 401/20003 for missing or wrong credentials and for a path
account that is not the authenticated one (twilio.com/docs/api/errors/20003, "Using
subaccount credentials to access master account"); 404/20404 for unknown resources;
ASSUMED 405/20004 for a method the path does not have and 400/20001 for bad fields.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.calls.provider import ProviderError
from app.platforms.simulator.platform import SimulatedPlatform
from app.platforms.simulator.resources import (
    API_VERSION,
    CODE_INVALID_PARAMETER,
    CODE_NOT_FOUND,
    DEFAULT_API_BASE_URL,
    PAUSE_BEHAVIORS,
    SimulatedCall,
    SimulatedRecording,
    new_sid,
    rfc2822,
)
from tests.loopback import LoopbackServer

from .spec import Operation, SpecIndex, load_spec

CODE_AUTH = 20003
MEDIA_BYTES = b"RIFF" + b"\0" * 40  # what the fake serves as any recording's audio
CODE_METHOD_NOT_ALLOWED = 20004
DEFAULT_CODES = {404: CODE_NOT_FOUND, 429: 20429, 500: 20500, 503: 20503}

# What callers name when injecting faults, by the operation the request is for.
OPERATION_NAMES = frozenset(
    {"start", "pause", "resume", "stop", "update", "redirect", "hangup"}
    | {"fetch", "delete", "list", "fetch_call_recording", "fetch_call", "media"}
)
# A recording's audio: the spec describes JSON resources only; Twilio documents the media
# at the same path with the file's extension (.wav by default, or .mp3).
_MEDIA_PATH = re.compile(
    rf"^/{API_VERSION}/Accounts/(?P<AccountSid>AC[0-9a-f]{{32}})"
    r"/Recordings/(?P<Sid>RE[0-9a-f]{32})\.(?P<ext>wav|mp3)$"
)


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    form: list[tuple[str, str]]
    query: list[tuple[str, str]]

    def field(self, name: str) -> str | None:
        return next((v for k, v in self.form if k == name), None)


@dataclass(frozen=True)
class Violation:
    """A request the real API would have refused, and the answer the fake gave."""

    method: str
    path: str
    status: int
    code: int
    message: str


@dataclass
class _Injection:
    operation: str
    status: int | None
    code: int | None
    delay: float
    remaining: int
    message: str | None


@dataclass
class _State:
    """Everything one test sees; replaced, not cleared, by `reset()` so a request still in
    flight from an earlier test (e.g. a delayed one) cannot touch the next test's state."""

    platform: SimulatedPlatform
    requests: list[ReceivedRequest] = field(default_factory=list)
    violations: list[Violation] = field(default_factory=list)
    injections: list[_Injection] = field(default_factory=list)
    media_ranges: list[str | None] = field(default_factory=list)  # each media GET's Range
    # (method, path, seconds) of each answer, in the order given
    handling: list[tuple[str, str, float]] = field(default_factory=list)
    expect_all: bool = False
    expected_codes: set[int] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Reject(Exception):
    def __init__(self, status: int, code: int, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeTwilioServer:
    """Twilio's REST API for one account, served by uvicorn on 127.0.0.1 in a thread.

    `latency` (seconds, settable at any time, kept across `reset()`) is waited before every
    request is answered, as a network and Twilio's own processing would; an injected delay
    comes on top of it."""

    def __init__(
        self, account_sid: str | None = None, auth_token: str | None = None, *, latency: float = 0.0
    ) -> None:
        if latency < 0:
            raise ValueError("latency must not be negative")
        self.account_sid = account_sid or new_sid("AC")
        self.auth_token = auth_token or new_sid("")
        self.latency = latency
        self.spec: SpecIndex = load_spec()
        self.base_url = ""
        self._state = self._new_state()
        self.app = Starlette(
            routes=[
                Route(
                    "/{path:path}",
                    self._handle,
                    methods=["GET", "POST", "DELETE", "PUT", "PATCH"],
                )
            ]
        )
        self._loopback = LoopbackServer(self.app, "fake-twilio")

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        self.base_url = self._loopback.start()
        self.reset()

    def stop(self) -> None:
        self._loopback.stop()

    def reset(self) -> None:
        """A fresh platform, request log, violation list and no pending injections."""
        self._state = self._new_state()

    def _new_state(self) -> _State:
        # Callbacks' RecordingUrl point at this server once it runs, so tests can follow them.
        base = self.base_url or DEFAULT_API_BASE_URL
        return _State(platform=SimulatedPlatform(self.account_sid, api_base_url=base))

    # -- what tests use ----------------------------------------------------------------

    @property
    def platform(self) -> SimulatedPlatform:
        return self._state.platform

    @property
    def requests(self) -> list[ReceivedRequest]:
        return self._state.requests

    @property
    def handling(self) -> list[tuple[str, str, float]]:
        """(method, path, seconds) of each request the fake has answered, in the order it
        answered them, latency included: the platform's own time, which a benchmark of
        callguard's own time takes off its round trips."""
        return self._state.handling

    @property
    def media_ranges(self) -> list[str | None]:
        return self._state.media_ranges

    @property
    def violations(self) -> list[Violation]:
        return self._state.violations

    def inject(
        self,
        operation: str,
        *,
        status: int | None = None,
        code: int | None = None,
        delay: float = 0.0,
        times: int = 1,
        message: str | None = None,
    ) -> None:
        """Make the next `times` valid requests for `operation` fail with `status` (and
        Twilio `code`, by default 20404/20429/20500/20503 for 404/429/500/503), after
        sleeping `delay` seconds; with a delay and no status the request is then served
        normally (a client with a shorter timeout sees a timeout, the state still changes,
        as it might on Twilio)."""
        if operation not in OPERATION_NAMES:
            raise ValueError(
                f"unknown operation {operation!r}; expected one of {sorted(OPERATION_NAMES)}"
            )
        if status is None and delay <= 0:
            raise ValueError("inject needs a status, a delay, or both")
        if times < 1:
            raise ValueError("times must be at least 1")
        if status is not None and code is None:
            code = DEFAULT_CODES.get(status, status)
        with self._state.lock:
            self._state.injections.append(
                _Injection(operation, status, code, delay, times, message)
            )

    def reset_injections(self) -> None:
        """Drop the injected failures still pending: the outage is over."""
        with self._state.lock:
            self._state.injections.clear()

    def expect_violations(self, *codes: int) -> None:
        """Let this test's violations pass teardown: those with the given Twilio codes, or
        all of them when no code is given."""
        if codes:
            self._state.expected_codes.update(codes)
        else:
            self._state.expect_all = True

    def take_violations(self) -> list[Violation]:
        """Return and forget the violations so far."""
        with self._state.lock:
            taken = list(self._state.violations)
            self._state.violations.clear()
        return taken

    def unexpected_violations(self) -> list[Violation]:
        state = self._state
        if state.expect_all:
            return []
        return [v for v in state.violations if v.code not in state.expected_codes]

    def requests_for(self, method: str, path_suffix: str) -> list[ReceivedRequest]:
        return [r for r in self.requests if r.method == method and r.path.endswith(path_suffix)]

    # -- the ASGI endpoint -------------------------------------------------------------

    async def _handle(self, request: Request) -> Response:
        state = self._state  # bound once: a reset during a delay must not mix tests up
        started = time.perf_counter()
        try:
            return await self._answer(request, state)
        finally:
            took = time.perf_counter() - started
            with state.lock:
                state.handling.append((request.method, request.url.path, took))

    async def _answer(self, request: Request, state: _State) -> Response:
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        body = (await request.body()).decode("utf-8", "replace")
        content_type = request.headers.get("content-type", "")
        form = parse_qsl(body, keep_blank_values=True) if body else []
        query = parse_qsl(request.url.query, keep_blank_values=True)
        received = ReceivedRequest(request.method, request.url.path, form, query)
        with state.lock:
            state.requests.append(received)
        media = _MEDIA_PATH.match(received.path)
        if media and request.method == "GET":
            return await self._media(state, request, received, media)
        try:
            op, params = self._check(request, received, content_type, bool(body))
            name = _operation_name(op, received)
            injection = self._take_injection(state, name)
            if injection is not None:
                if injection.delay > 0:
                    await asyncio.sleep(injection.delay)
                if injection.status is not None:
                    code = injection.code or injection.status
                    text = injection.message or f"Injected fault for {name}"
                    return _error_response(injection.status, code, text)
            status, payload = self._serve(state.platform, op, params, received)
        except _Reject as rej:
            with state.lock:
                state.violations.append(
                    Violation(received.method, received.path, rej.status, rej.code, rej.message)
                )
            headers = (
                {"WWW-Authenticate": 'Basic realm="Twilio API"'} if rej.status == 401 else None
            )
            return _error_response(rej.status, rej.code, rej.message, headers)
        if payload is None:
            return Response(status_code=status)
        schema = op.responses.get(str(status))
        problems = self.spec.response_problems(schema, payload) if schema else []
        if problems:  # the fake itself drifted from the spec: fail the test loudly
            with state.lock:
                state.violations.append(
                    Violation(
                        received.method, received.path, 500, 0, f"fake answer off-spec: {problems}"
                    )
                )
        return JSONResponse(payload, status_code=status)

    async def _media(
        self, state: _State, request: Request, received: ReceivedRequest, match: re.Match[str]
    ) -> Response:
        try:
            self._check_auth(request.headers.get("authorization"))
            if match["AccountSid"] != self.account_sid:
                raise _Reject(401, CODE_AUTH, "Authenticate")
            injection = self._take_injection(state, "media")
            if injection is not None:
                await asyncio.sleep(injection.delay)
                if injection.status is not None:
                    code = injection.code or injection.status
                    return _error_response(injection.status, code, injection.message or "media")
            try:
                state.platform.fetch_recording(match["Sid"])
            except ProviderError as err:
                raise _Reject(err.status or 500, err.code or 0, str(err)) from err
        except _Reject as rej:
            if rej.status != 404:  # a missing recording is an answer, not a bad request
                with state.lock:
                    state.violations.append(
                        Violation(received.method, received.path, rej.status, rej.code, rej.message)
                    )
            return _error_response(rej.status, rej.code, rej.message)
        kind = "audio/mpeg" if match["ext"] == "mp3" else "audio/x-wav"
        with state.lock:
            state.media_ranges.append(request.headers.get("range"))
        return _media_range(request.headers.get("range"), kind)

    def _take_injection(self, state: _State, name: str) -> _Injection | None:
        with state.lock:
            for inj in state.injections:
                if inj.operation == name and inj.remaining > 0:
                    inj.remaining -= 1
                    return inj
        return None

    # -- checks against the spec -------------------------------------------------------

    def _check(
        self, request: Request, received: ReceivedRequest, content_type: str, has_body: bool
    ) -> tuple[Operation, dict[str, str]]:
        self._check_auth(request.headers.get("authorization"))
        op, params = self._route(received)
        if params.get("AccountSid") not in (None, self.account_sid):
            raise _Reject(
                401,
                CODE_AUTH,
                "Authenticate: the path's AccountSid is not the authenticated account",
            )
        self._check_fields("query parameter", op.query_params, received.query, set())
        if op.form_fields is None:
            if received.form:
                raise _Reject(400, CODE_INVALID_PARAMETER, f"{op.operation_id} takes no body")
        else:
            if has_body and not content_type.startswith("application/x-www-form-urlencoded"):
                raise _Reject(
                    400, CODE_INVALID_PARAMETER, f"Unsupported Content-Type {content_type!r}"
                )
            self._check_fields("parameter", op.form_fields, received.form, op.required_fields)
        # Rules the description leaves in prose: PauseBehavior "Can be: skip or silence".
        pause = received.field("PauseBehavior")
        if (
            op.operation_id == "UpdateCallRecording"
            and pause is not None
            and pause not in PAUSE_BEHAVIORS
        ):
            raise _Reject(
                400, CODE_INVALID_PARAMETER, f"PauseBehavior must be skip or silence, not {pause!r}"
            )
        return op, params

    def _check_auth(self, header: str | None) -> None:
        if not header or not header.startswith("Basic "):
            raise _Reject(401, CODE_AUTH, "Authenticate")
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise _Reject(401, CODE_AUTH, "Authenticate") from None
        if user != self.account_sid or password != self.auth_token:
            raise _Reject(401, CODE_AUTH, "Authenticate")

    def _route(self, received: ReceivedRequest) -> tuple[Operation, dict[str, str]]:
        matches = self.spec.match(received.path)
        if not matches:
            raise _Reject(
                404, CODE_NOT_FOUND, f"The requested resource {received.path} was not found"
            )
        problems = []
        for route, params in matches:
            op = route.operations.get(received.method)
            if op is None:
                continue
            bad = [
                f"{name}: {problem}"
                for name, value in params.items()
                if name in op.path_params and (problem := op.path_params[name].problem(value))
            ]
            if not bad:
                return op, params
            problems += bad
        if not problems:
            raise _Reject(405, CODE_METHOD_NOT_ALLOWED, f"Method {received.method} not allowed")
        # A malformed SID names no resource: Twilio answers 404.
        raise _Reject(
            404,
            CODE_NOT_FOUND,
            f"The requested resource {received.path} was not found ({problems[0]})",
        )

    def _check_fields(
        self,
        what: str,
        schema: dict[str, Any],
        pairs: list[tuple[str, str]],
        required: set[str] | frozenset[str],
    ) -> None:
        seen: set[str] = set()
        for name, value in pairs:
            spec = schema.get(name)
            if spec is None:
                raise _Reject(400, CODE_INVALID_PARAMETER, f"Unknown {what} {name}")
            if name in seen and spec.type != "array":
                raise _Reject(
                    400, CODE_INVALID_PARAMETER, f"{what.capitalize()} {name} given more than once"
                )
            seen.add(name)
            if problem := spec.problem(value):
                raise _Reject(400, CODE_INVALID_PARAMETER, f"Invalid {what} {name}: {problem}")
        if missing := sorted(required - seen):
            raise _Reject(
                400,
                CODE_INVALID_PARAMETER,
                f"Missing required {what} {missing[0]} in the post body",
            )

    # -- serving the operations the adapter uses ------------------------------------------

    def _serve(
        self,
        platform: SimulatedPlatform,
        op: Operation,
        params: dict[str, str],
        req: ReceivedRequest,
    ) -> tuple[int, dict[str, Any] | None]:
        try:
            return self._serve_op(platform, op, params, req)
        except ProviderError as err:
            raise _Reject(err.status or 500, err.code or err.status or 500, str(err)) from err

    def _serve_op(
        self,
        platform: SimulatedPlatform,
        op: Operation,
        params: dict[str, str],
        req: ReceivedRequest,
    ) -> tuple[int, dict[str, Any] | None]:
        base = self.base_url
        match op.operation_id:
            case "CreateCallRecording":
                # One space-separated field or repeated fields: both name events.
                values = [v for k, v in req.form if k == "RecordingStatusCallbackEvent"]
                events = [event for value in values for event in value.split()]
                rec = platform.create_recording(
                    params["CallSid"],
                    status_callback=req.field("RecordingStatusCallback"),
                    status_callback_method=req.field("RecordingStatusCallbackMethod") or "POST",
                    callback_events=events or ["completed"],
                    channels=req.field("RecordingChannels") or "mono",
                    track=req.field("RecordingTrack") or "both",
                )
                return 201, call_recording_json(rec)
            case "UpdateCallRecording":
                rec = platform.update_recording(
                    params["CallSid"],
                    params["Sid"],
                    req.field("Status") or "",
                    pause_behavior=req.field("PauseBehavior"),
                )
                return 200, call_recording_json(rec)
            case "FetchCallRecording":
                return 200, call_recording_json(
                    platform.fetch_call_recording(params["CallSid"], params["Sid"])
                )
            case "ListCallRecording":
                recs = platform.list_call_recordings(params["CallSid"])
                return 200, recording_page_json(self.account_sid, params["CallSid"], recs)
            case "FetchRecording":
                return 200, recording_json(platform.fetch_recording(params["Sid"]), base)
            case "DeleteRecording":
                platform.delete_recording(params["Sid"])
                return 204, None
            case "FetchCall":
                return 200, call_json(platform.call(params["Sid"]))
            case "UpdateCall":
                if req.field("Status") is not None:  # completed / canceled: hang up
                    platform.hangup(params["Sid"])
                    return 200, call_json(platform.call(params["Sid"]))
                url = req.field("Url") or req.field("Twiml") or ""
                call = platform.redirect_call(params["Sid"], url, req.field("Method") or "POST")
                return 200, call_json(call)
        raise _Reject(501, 0, f"the fake does not implement {op.operation_id}")


def _operation_name(op: Operation, req: ReceivedRequest) -> str:
    if op.operation_id == "UpdateCallRecording":
        status = req.field("Status")
        return {"paused": "pause", "in-progress": "resume", "stopped": "stop"}.get(
            status or "", "update"
        )
    if op.operation_id == "UpdateCall":
        return "hangup" if req.field("Status") is not None else "redirect"
    return {
        "CreateCallRecording": "start",
        "FetchRecording": "fetch",
        "DeleteRecording": "delete",
        "ListCallRecording": "list",
        "FetchCallRecording": "fetch_call_recording",
        "FetchCall": "fetch_call",
    }.get(op.operation_id, op.operation_id)


def _media_range(header: str | None, kind: str) -> Response:
    """One `bytes=a-b`, `bytes=a-` or `bytes=-n` range as Twilio's media storage answers it
    (206 or 416); no header or any other form: the whole."""
    size = len(MEDIA_BYTES)
    found = re.fullmatch(r"bytes=(\d*)-(\d*)", header or "")
    if found is None or found.groups() == ("", ""):
        return Response(MEDIA_BYTES, media_type=kind, headers={"Accept-Ranges": "bytes"})
    first, last = found.groups()
    start = size - int(last) if not first else int(first)
    end = size - 1 if not first or not last else min(int(last), size - 1)
    if start >= size or start < 0:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    return Response(
        MEDIA_BYTES[start : end + 1],
        status_code=206,
        media_type=kind,
        headers={"Content-Range": f"bytes {start}-{end}/{size}", "Accept-Ranges": "bytes"},
    )


def _error_response(
    status: int, code: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    # Twilio's error body for API v2010 (see the 408 schema of UpdateCallRecording).
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return JSONResponse(body, status_code=status, headers=headers)


# -- JSON shaped like the spec's response schemas --------------------------------------


def _account_path(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}"


def call_recording_json(rec: SimulatedRecording) -> dict[str, Any]:
    """api.v2010.account.call.call_recording"""
    return {
        "account_sid": rec.account_sid,
        "api_version": API_VERSION,
        "call_sid": rec.call_sid,
        "conference_sid": None,
        "date_created": rfc2822(rec.date_created),
        "date_updated": rfc2822(rec.date_updated),
        "start_time": rfc2822(rec.start_time),
        "duration": None if rec.duration is None else str(rec.duration),
        "sid": rec.sid,
        "price": None,
        "uri": f"{_account_path(rec.account_sid)}/Calls/{rec.call_sid}/Recordings/{rec.sid}.json",
        "encryption_details": None,
        "price_unit": None,
        "status": rec.status.value,
        "channels": rec.channels,
        "source": rec.source,
        "error_code": rec.error_code,
        "track": rec.track,
    }


def recording_json(rec: SimulatedRecording, base_url: str) -> dict[str, Any]:
    """api.v2010.account.recording"""
    path = f"{_account_path(rec.account_sid)}/Recordings/{rec.sid}"
    return {
        "account_sid": rec.account_sid,
        "api_version": API_VERSION,
        "call_sid": rec.call_sid,
        "conference_sid": None,
        "date_created": rfc2822(rec.date_created),
        "date_updated": rfc2822(rec.date_updated),
        "start_time": rfc2822(rec.start_time),
        "duration": None if rec.duration is None else str(rec.duration),
        "sid": rec.sid,
        "price": None,
        "price_unit": None,
        "status": rec.status.value,
        "channels": rec.channels,
        "source": rec.source,
        "error_code": rec.error_code,
        "uri": f"{path}.json",
        "encryption_details": None,
        "subresource_uris": {
            "add_on_results": f"{path}/AddOnResults.json",
            "transcriptions": f"{path}/Transcriptions.json",
        },
        "media_url": f"{base_url or DEFAULT_API_BASE_URL}{path}",
    }


def recording_page_json(
    account_sid: str, call_sid: str, recs: list[SimulatedRecording]
) -> dict[str, Any]:
    """ListCallRecordingResponse: one page holding everything."""
    uri = f"{_account_path(account_sid)}/Calls/{call_sid}/Recordings.json?PageSize=50&Page=0"
    return {
        "end": max(len(recs) - 1, 0),
        "first_page_uri": uri,
        "next_page_uri": None,
        "page": 0,
        "page_size": 50,
        "previous_page_uri": None,
        "start": 0,
        "uri": uri,
        "recordings": [call_recording_json(r) for r in recs],
    }


def call_json(call: SimulatedCall) -> dict[str, Any]:
    """api.v2010.account.call"""
    path = f"{_account_path(call.account_sid)}/Calls/{call.sid}"
    duration = None if call.end_time is None else str(round(call.end_time - call.date_created))
    return {
        "sid": call.sid,
        "date_created": rfc2822(call.date_created),
        "date_updated": rfc2822(call.date_updated),
        "parent_call_sid": None,
        "account_sid": call.account_sid,
        "to": "+15005550006",
        "to_formatted": "(500) 555-0006",
        "from": "+15005550001",
        "from_formatted": "(500) 555-0001",
        "phone_number_sid": None,
        "status": "completed" if call.ended else "in-progress",
        "start_time": rfc2822(call.date_created),
        "end_time": None if call.end_time is None else rfc2822(call.end_time),
        "duration": duration,
        "price": None,
        "price_unit": "USD",
        "direction": "inbound",
        "answered_by": None,
        "api_version": API_VERSION,
        "forwarded_from": None,
        "group_sid": None,
        "caller_name": None,
        "queue_time": "0",
        "trunk_sid": None,
        "uri": f"{path}.json",
        "subresource_uris": {
            "recordings": f"{path}/Recordings.json",
            "notifications": f"{path}/Notifications.json",
        },
    }
