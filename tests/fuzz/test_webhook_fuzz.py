"""Hypothesis-generated Twilio webhooks, on every webhook path.

Signed correctly, any form (known and unknown fields, unicode, empty values, repeated keys)
gets an answer the platform can use or a 4xx JSON error: never a 5xx, never a 403, and
never a journal entry (the journal is for the database being down, not for bad input).

Signed, then tampered with in transit (a value changed, a field added or removed, the
path or query changed, the signature altered or left out): always 403, and nothing is
written. The untampered original is then sent and passes the signature check, so each
refusal is the tamper's doing."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, replace
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import RequestValidator

from app.calls.provider import TRANSFER_KINDS as KINDS
from app.recording_policy import DEFAULT_POLICY_PATH, load_policy_file
from app.runtime.services import Services
from tests.factories import ACCOUNT_SID, MAIN_NUMBER, Platform
from tests.fuzz.common import EXAMPLES, row_counts

pytestmark = pytest.mark.fuzz

POLICY = load_policy_file(DEFAULT_POLICY_PATH)
NUMBERS = [MAIN_NUMBER, *(n for d in POLICY.departments for n in d.numbers)]
DEPARTMENTS = [d.id for d in POLICY.departments]
FORM = "application/x-www-form-urlencoded"
Pairs = list[tuple[str, str]]

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    # One database per test function, shared by its examples: that is the point (later
    # examples meet the calls earlier ones created).
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- values ----------------------------------------------------------------------------

# Unicode (no surrogates: a form is UTF-8), control characters and NUL included.
text = st.text(max_size=40)
# Header values: printable ASCII.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)


def sids(prefix: str) -> st.SearchStrategy[str]:
    return st.text("0123456789abcdef", min_size=32, max_size=32).map(lambda h: prefix + h)


# A few SIDs shared by all examples, so that examples meet each other's calls.
call_sids = st.sampled_from([f"CA{i:032x}" for i in range(4)]) | sids("CA")
recording_sids = st.sampled_from(["RE" + "1" * 32, "RE" + "2" * 32]) | sids("RE")
numbers = st.sampled_from(NUMBERS) | st.sampled_from(["+447700900123", "anonymous", "", "0"])
call_statuses = st.sampled_from(
    ["queued", "initiated", "ringing", "in-progress", "completed", "busy", "failed", "no-answer"]
)
recording_statuses = st.sampled_from(["in-progress", "completed", "absent", "failed"])
digits = st.sampled_from(["1", "2", "3", "9", "0", "*", "#", "91", ""]) | st.text(
    alphabet="0123456789*#w", max_size=6
)
integers = st.integers(min_value=-(2**70), max_value=2**70).map(str)
timestamps = st.sampled_from(["Tue, 10 Aug 2010 03:45:01 +0000", "Mon, 01 Jan 2024 00:00:00"])
json_values: st.SearchStrategy[object] = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
task_attributes = st.builds(
    lambda sid, department, extra: json.dumps({"call_sid": sid, "department": department, **extra}),
    call_sids | text,
    st.sampled_from(DEPARTMENTS) | text,
    st.dictionaries(text, json_values, max_size=2),
) | json_values.map(json.dumps)
worker_attributes = st.builds(
    lambda user, contact: json.dumps({"callguard_user": user, "contact_uri": contact}),
    st.sampled_from(["ann", "nobody", ""]) | text,
    st.sampled_from(["client:ann", "client:nobody"]) | text,
) | json_values.map(json.dumps)

# What a well-formed value of each field Twilio sends looks like.
KNOWN: dict[str, st.SearchStrategy[str]] = {
    "AccountSid": st.just(ACCOUNT_SID),
    "CallSid": call_sids,
    "From": numbers,
    "To": numbers,
    "Caller": numbers,
    "Called": numbers,
    "CallStatus": call_statuses,
    "Direction": st.sampled_from(["inbound", "outbound-api", "outbound-dial"]),
    "ApiVersion": st.just("2010-04-01"),
    "Digits": digits,
    "SequenceNumber": st.integers(min_value=0, max_value=20).map(str),
    "Timestamp": timestamps,
    "CallbackSource": st.just("call-progress-events"),
    "RecordingSid": recording_sids,
    "RecordingStatus": recording_statuses,
    "RecordingDuration": st.integers(min_value=0, max_value=10_000).map(str),
    "RecordingStartTime": timestamps,
    "RecordingUrl": st.just("https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/RE1"),
    "RecordingChannels": st.sampled_from(["1", "2"]),
    "ErrorCode": st.sampled_from(["0", "16108"]),
    "ReservationSid": sids("WR"),
    "TaskSid": sids("WT"),
    "WorkerSid": st.just("WK" + "4" * 32),
    "WorkspaceSid": st.just("WS" + "2" * 32),
    "TaskAttributes": task_attributes,
    "WorkerAttributes": worker_attributes,
}


def garbage(name: str) -> st.SearchStrategy[str]:
    """Anything at all in a field: what breaks a naive parser, what no column can hold
    (NUL, which PostgreSQL refuses in text; more than any column's length)."""
    odd = ["", " ", "\x00", "%", "+", "-1", "1.5", " 7 ", "0x10", "\u0661\u0662", "null", "{}"]
    return st.one_of(
        st.sampled_from([*odd, name * 30, "9" * 30]),
        KNOWN[name].map(lambda v: v + "\x00"),
        text,
        st.text(min_size=60, max_size=300),
        integers,
    )


# -- webhooks --------------------------------------------------------------------------


@dataclass(frozen=True)
class Hook:
    path: str
    fields: tuple[str, ...]  # a well-formed delivery's fields
    query: Callable[[], st.SearchStrategy[dict[str, str]]]
    ok: frozenset[int]  # its 2xx answers


def _no_query() -> st.SearchStrategy[dict[str, str]]:
    return st.just({})


def _ivr_query() -> st.SearchStrategy[dict[str, str]]:
    step = st.integers(min_value=1, max_value=6).map(str) | integers | text
    return st.fixed_dictionaries({"step": step}) | st.just({})


def _transfer_query() -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={
            "kind": st.sampled_from(KINDS) | text,
            "transfer": st.integers(min_value=1, max_value=3).map(str) | integers | text,
            "department": st.sampled_from(DEPARTMENTS) | text,
        },
    )


CALL = ("AccountSid", "CallSid")
HOOKS = {
    hook.path.rsplit("/", 1)[1]: hook
    for hook in (
        Hook(
            "/webhooks/twilio/voice",
            (*CALL, "From", "To", "Caller", "Called", "CallStatus", "Direction", "ApiVersion"),
            _no_query,
            frozenset({200}),
        ),
        Hook("/webhooks/twilio/ivr", (*CALL, "CallStatus", "Digits"), _ivr_query, frozenset({200})),
        Hook(
            "/webhooks/twilio/call-status",
            (*CALL, "CallStatus", "SequenceNumber", "Timestamp", "CallbackSource", "To"),
            _no_query,
            frozenset({204}),
        ),
        Hook(
            "/webhooks/twilio/recording-status",
            (
                *CALL,
                "RecordingSid",
                "RecordingStatus",
                "RecordingDuration",
                "RecordingStartTime",
                "RecordingUrl",
                "RecordingChannels",
                "ErrorCode",
            ),
            _no_query,
            frozenset({204}),
        ),
        Hook("/webhooks/twilio/transfer", (*CALL, "CallStatus"), _transfer_query, frozenset({200})),
        Hook(
            "/webhooks/twilio/assignment",
            (
                "AccountSid",
                "WorkspaceSid",
                "TaskSid",
                "ReservationSid",
                "WorkerSid",
                "TaskAttributes",
                "WorkerAttributes",
            ),
            _no_query,
            frozenset({200}),
        ),
    )
}


@dataclass(frozen=True)
class Delivery:
    """One webhook request as sent: the URL's path and query, the form's pairs in order."""

    path: str
    query: str
    pairs: Pairs

    @property
    def target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    def signature(self, base_url: str, token: str) -> str:
        return RequestValidator(token).compute_signature(
            base_url + self.target, ImmutableMultiDict(self.pairs)
        )


@st.composite
def well_formed(draw: st.DrawFn, hook: Hook) -> Delivery:
    """A delivery Twilio could send, plus possibly a few fields it does not."""
    pairs = [(name, draw(KNOWN[name])) for name in hook.fields]
    extra = draw(st.lists(st.tuples(text.filter(lambda k: k not in KNOWN), text), max_size=3))
    return Delivery(hook.path, urlencode(draw(hook.query())), pairs + extra)


@st.composite
def anything(draw: st.DrawFn, hook: Hook) -> Delivery:
    """A delivery with one to three of its fields dropped, emptied or garbled (the rest
    well-formed, so each garbled value reaches the code that reads it); then known and
    unknown fields in any number, repeated keys included; an odd query now and then."""
    spoilt = draw(st.sets(st.sampled_from(hook.fields), min_size=1, max_size=3))
    pairs: Pairs = []
    for name in hook.fields:
        how = draw(st.sampled_from(["drop", "empty", "garble"])) if name in spoilt else "keep"
        if how == "keep":
            pairs.append((name, draw(KNOWN[name])))
        elif how == "empty":
            pairs.append((name, ""))
        elif how == "garble":
            pairs.append((name, draw(garbage(name))))
    names = st.sampled_from(sorted(KNOWN)) | text
    extra = draw(
        st.lists(names.flatmap(lambda n: st.tuples(st.just(n), KNOWN.get(n, text))), max_size=6)
    )
    repeats = draw(
        st.lists(st.sampled_from(pairs).map(lambda p: (p[0], p[1] + "x")), max_size=2)
        if pairs
        else st.just([])
    )
    position = draw(st.integers(min_value=0, max_value=len(pairs)))
    pairs[position:position] = extra
    query = draw(hook.query() | st.dictionaries(text, text, max_size=2))
    return Delivery(hook.path, urlencode(query), pairs + repeats)


def post(
    client: TestClient, delivery: Delivery, signature: str | None, token: str | None = None
) -> Response:
    headers = {"Content-Type": FORM}
    if signature is not None:
        headers["X-Twilio-Signature"] = signature
    if token is not None:
        headers["I-Twilio-Idempotency-Token"] = token
    return client.post(delivery.target, content=urlencode(delivery.pairs), headers=headers)


def assert_error_body(response: Response) -> dict[str, object]:
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("detail"), str) and body["detail"], body
    return body


def assert_usable(hook: Hook, response: Response) -> None:
    """A 2xx the platform can act on: TwiML for a caller, TaskRouter's instruction, or an
    empty acknowledgement."""
    assert response.status_code in hook.ok, (response.status_code, response.text)
    if response.status_code == 204:
        assert response.content == b""
    elif hook.path.endswith("/assignment"):
        instruction = response.json()
        assert instruction["instruction"] == "dequeue", instruction
    else:
        assert response.headers["content-type"].startswith("application/xml")
        assert ET.fromstring(response.text).tag == "Response"  # our own answer


# -- correctly signed: any content -----------------------------------------------------


@pytest.mark.parametrize("name", list(HOOKS))
@FUZZ
@given(data=st.data())
def test_signed_webhook_never_fails_the_server(
    platform: Platform, services: Services, name: str, data: st.DataObject
) -> None:
    hook = HOOKS[name]
    delivery = data.draw(anything(hook) | well_formed(hook), label="delivery")
    token = data.draw(
        st.none() | st.sampled_from(["tok-1", "tok-2", "t" * 300]) | header_text,
        label="idempotency",
    )
    signature = delivery.signature(platform.settings.public_base_url, "test-auth-token")
    journalled = services.journal.backlog()
    response = post(platform.client, delivery, signature, token or None)
    assert response.status_code < 500, response.text
    assert response.status_code != 403, "a correctly signed webhook was refused"
    if response.status_code >= 400:
        # Bad content is the sender's problem, said plainly: 400 (a field), 422 (the query).
        assert response.status_code in (400, 422), response.text
        assert_error_body(response)
    else:
        assert_usable(hook, response)
    assert services.journal.backlog() == journalled, (
        "bad input journalled as if the database were down"
    )


# -- tampered in transit: refused, nothing written -------------------------------------


@dataclass(frozen=True)
class Tamper:
    kind: str
    delivery: Delivery  # what arrives
    signature: str | None  # the header that arrives


def _different(values: list[str]) -> st.SearchStrategy[str]:
    return text.filter(lambda v: v not in values)


@st.composite
def tampered(draw: st.DrawFn, original: Delivery, signature: str) -> Tamper:
    pairs = original.pairs
    names = sorted({k for k, _ in pairs})
    kinds = ["value_changed", "field_added", "field_removed", "path_changed", "query_changed"]
    kinds += ["signature_altered", "signature_missing"]
    kind = draw(st.sampled_from(kinds))
    arriving = original
    sent: str | None = signature
    if kind == "value_changed":
        name = draw(st.sampled_from(names))
        value = draw(_different([v for k, v in pairs if k == name]))
        changed = [(k, value if k == name else v) for k, v in pairs]
        arriving = replace(original, pairs=changed)
    elif kind == "field_added":
        name = draw(st.sampled_from(names) | text)
        value = draw(_different([v for k, v in pairs if k == name]))
        at = draw(st.integers(min_value=0, max_value=len(pairs)))
        arriving = replace(original, pairs=[*pairs[:at], (name, value), *pairs[at:]])
    elif kind == "field_removed":
        name = draw(st.sampled_from(names))
        arriving = replace(original, pairs=[(k, v) for k, v in pairs if k != name])
    elif kind == "path_changed":
        others = [h.path for h in HOOKS.values() if h.path != original.path]
        arriving = replace(original, path=draw(st.sampled_from(others)))
    elif kind == "query_changed":
        query = draw(
            st.sampled_from(["step=2", "step=1&x=1", "kind=payment", "transfer=2", "x=", ""])
            | st.dictionaries(text, text, min_size=1, max_size=2).map(urlencode)
        )
        assume(query != original.query)
        arriving = replace(original, query=query)
    elif kind == "signature_altered":
        sent = draw(
            st.sampled_from(
                [
                    "",
                    signature[:-2],
                    signature + "A",
                    signature.swapcase(),
                    signature[::-1],
                    original.signature("https://callguard.example.org", "someone-elses-token"),
                    original.signature("http://internal:9000", "test-auth-token"),
                ]
            )
            | st.builds(
                lambda i, c: signature[:i] + c + signature[i + 1 :],
                st.integers(min_value=0, max_value=len(signature) - 1),
                st.sampled_from("ABCabc0123+/="),
            )
            | header_text
        )
        assume(sent != signature)
    else:
        sent = None
    return Tamper(kind, arriving, sent)


@pytest.mark.parametrize("name", list(HOOKS))
@FUZZ
@given(data=st.data())
def test_tampered_webhook_is_refused_and_writes_nothing(
    platform: Platform, services: Services, name: str, data: st.DataObject
) -> None:
    base_url = platform.settings.public_base_url
    hook = HOOKS[name]
    original = data.draw(well_formed(hook), label="original")
    signature = original.signature(base_url, "test-auth-token")
    tamper = data.draw(tampered(original, signature), label="tamper")
    if tamper.delivery != original:
        # Twilio's scheme signs the sorted set of each field's values: a change that leaves
        # that unchanged is no change to it.
        assume(tamper.delivery.signature(base_url, "test-auth-token") != signature)

    before = row_counts(services)
    response = post(platform.client, tamper.delivery, tamper.signature)
    assert response.status_code == 403, (tamper.kind, response.status_code, response.text)
    assert assert_error_body(response)["error"] == "forbidden"
    assert row_counts(services) == before, tamper.kind

    # The same request untampered gets past the signature check.
    untampered = post(platform.client, original, signature)
    assert untampered.status_code not in (403, 413), untampered.text
    assert untampered.status_code < 500, untampered.text
