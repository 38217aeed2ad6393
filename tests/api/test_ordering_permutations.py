"""Delivery orders of a call's status callbacks and its recording's status callbacks.

For each order a recorded call is built for real: the voice webhook to Contact Harlow's
number and the IVR step that queues it (callguard then starts the recording by REST on the
simulated platform, which answers with the recording's SID), then the caller hangs up on
the simulated platform. Only then are its six callbacks delivered, signed, through the real
webhooks, in the order under test:

* the call's status callbacks `initiated`, `ringing`, `in-progress`, `completed` with
  Twilio's `SequenceNumber` 0, 1, 2, 3, and
* the callbacks the simulated platform queued for the call's real recording SID:
  `in-progress`, then its ending.

In-order delivery is the order they happen in: initiated, ringing, in-progress, the
recording's in-progress, the call's completed, the recording's ending. It runs first, on a
call of its own, and is checked against fixed expectations; every other order must leave
the same final state.

Endings. `completed` and `absent` are alternative endings of one recording (Twilio sends
one or the other, never both), so each ending is its own case: the orders of
[in-progress, completed] and of [in-progress, absent] interleaved with the four call
statuses. Sending both endings to one recording is an order the platform never produces;
a second terminal callback is simply stale, which the in-progress-after-ending orders
already cover.

Which orders. All 6! = 720 orders per ending (1440 in all, each on a call of its own in
one database) take about 70 s on SQLite and 165 s on PostgreSQL on a 2-core machine: too
slow for every run. By default each ending runs the in-order delivery plus a fixed
covering subset of 137 other orders, chosen so that for ANY five of the six callbacks
every one of their 120 relative orders occurs (a strength-5 sequence covering array, built
greedily and deterministically below). So every order of the four call statuses occurs,
with each placement and order of the two recording callbacks around them; an error needs
all six callbacks in one particular order to escape it. Set CALLGUARD_FULL=1 to run all
720 per ending.

For each order the test checks:

1. the final call and recording equal those of in-order delivery: the call `completed`,
   sequence 3, ended at the `completed` callback's time, desired and confirmed `off` for
   `call_ended`; one recording row, `completed` (or `absent`) with its duration, media URL,
   completion time and `destroy_after` (completion + the department's retention);
2. the audit events after the recording's start are exactly what the ordering rules give:
   a call status is applied (`call.status`, or `call.ended` then one `decision`) only when
   its sequence is later than every one applied before; any other is `call.status_ignored`
   naming the status the call was at; a recording callback after its ending is
   `recording.status_ignored`. And, independently of that model: applied call statuses
   only move forward, `call.ended` appears once, `recording.completed` once (carrying the
   `destroy_after` stored on the row: written once), `recording.started` once (no callback
   makes a second recording);
3. every delivery is answered 204: no 5xx, no exception. A failing order is reported with
   the order and what went wrong, and the other orders still run, so one run lists them.
"""

from __future__ import annotations

import functools
import itertools
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from sqlalchemy import select

from app.platforms.simulator.provider import SimulatorProvider
from app.recording_policy import (
    DEFAULT_POLICY_PATH,
    add_duration,
    load_policy_file,
    parse_duration,
)
from app.runtime.services import Services
from app.storage.models import AuditEvent, Call, Recording
from tests.factories import ACCOUNT_SID, DEFAULT_CALLER, Platform

DEPARTMENT = load_policy_file(DEFAULT_POLICY_PATH).department("contact-harlow")
assert DEPARTMENT is not None and DEPARTMENT.recorded
NUMBER = DEPARTMENT.numbers[0]

# Twilio's call status callbacks in the order it sends them; SequenceNumber = index.
CALL_STATUSES = ("initiated", "ringing", "in-progress", "completed")
# When each call status happened (the callbacks' Timestamp), in the same order.
CALL_TIMES = tuple(
    datetime(2024, 5, 1, 10, 0, tzinfo=UTC) + timedelta(seconds=s) for s in (0, 2, 5, 65)
)
ENDINGS = ("completed", "absent")
RECORDING_PATH = "/webhooks/twilio/recording-status"
FAILURES_SHOWN = 5
# Read at import: the conftest clears CALLGUARD_* variables before each test runs.
FULL = os.environ.get("CALLGUARD_FULL") == "1"
# Without CALLGUARD_FULL: every relative order of any STRENGTH of the six callbacks.
STRENGTH = 5


@pytest.fixture
def simulator() -> SimulatorProvider:
    """The simulated platform's clock stands still: a recording's duration is its time
    between the start and the hang-up, which on a loaded machine crossed half a second
    (a duration of 1, not 0) in one order and not in the in-order reference."""
    moment = time.time()
    return SimulatorProvider(clock=lambda: moment)


@dataclass(frozen=True)
class Delivery:
    """One callback: a call status (with its sequence number) or a recording status."""

    kind: str  # "call" or "recording"
    status: str
    sequence: int | None = None

    def __str__(self) -> str:
        if self.kind == "call":
            return f"call {self.status}#{self.sequence}"
        return f"recording {self.status}"


def natural_order(ending: str) -> tuple[Delivery, ...]:
    """The order in which things happen: the recording starts while the call is in
    progress and ends as the call does."""
    initiated, ringing, in_progress, completed = (
        Delivery("call", status, n) for n, status in enumerate(CALL_STATUSES)
    )
    recording = Delivery("recording", "in-progress")
    return (initiated, ringing, in_progress, recording, completed, Delivery("recording", ending))


def orders_for(ending: str) -> list[tuple[Delivery, ...]]:
    """The natural order first, then every other permutation (CALLGUARD_FULL=1) or the
    covering subset of them (the default)."""
    natural = natural_order(ending)
    if FULL:
        others = [order for order in itertools.permutations(natural) if order != natural]
    else:
        others = [tuple(natural[i] for i in order) for order in covering_orders()[1:]]
    return [natural, *others]


@functools.cache
def covering_orders(size: int = 6, strength: int = STRENGTH) -> list[tuple[int, ...]]:
    """Permutations of range(size), the identity first, such that for any `strength` of
    the items every one of their relative orders occurs in one of them (a sequence
    covering array). Greedy and deterministic: each step takes the first permutation, in
    lexicographic order, that covers the most orders not yet covered."""
    permutations = list(itertools.permutations(range(size)))
    covers = {p: set(itertools.combinations(p, strength)) for p in permutations}
    chosen = [permutations[0]]
    missing = set().union(*covers.values()) - covers[permutations[0]]
    while missing:
        best = max(permutations, key=lambda p: len(covers[p] & missing))
        chosen.append(best)
        missing -= covers[best]
    return chosen


def describe(order: tuple[Delivery, ...]) -> str:
    return " > ".join(str(delivery) for delivery in order)


@dataclass
class BuiltCall:
    """A call built for real, its recording's SID, and its callbacks' forms."""

    call_sid: str
    recording_sid: str
    recording_forms: dict[str, dict[str, str]]


def build_call(platform: Platform, ending: str) -> BuiltCall:
    """A recorded call queued through the real webhooks, then hung up on the simulated
    platform; nothing of its status or recording callbacks delivered yet."""
    call_sid = platform.queue_call(NUMBER)
    recordings = platform.simulator.recordings(call_sid)
    assert len(recordings) == 1, f"expected one recording started, got {recordings}"
    recording_sid = recordings[0].sid
    forms = take_callbacks(platform, call_sid)
    if ending == "absent":
        platform.simulator.platform.mark_absent(recording_sid)
    platform.simulator.hangup(call_sid)
    forms.update(take_callbacks(platform, call_sid))
    assert sorted(forms) == sorted(["in-progress", ending]), forms
    assert all(form["RecordingSid"] == recording_sid for form in forms.values())
    return BuiltCall(call_sid, recording_sid, forms)


def take_callbacks(platform: Platform, call_sid: str) -> dict[str, dict[str, str]]:
    """The recording callbacks the simulated platform has queued, by status."""
    forms: dict[str, dict[str, str]] = {}
    while not platform.simulator.outbox.empty():
        callback = platform.simulator.outbox.get_nowait()
        assert callback.url == platform.settings.public_base_url + RECORDING_PATH, callback
        assert callback.params["CallSid"] == call_sid, callback
        forms[callback.params["RecordingStatus"]] = dict(callback.params)
    return forms


def deliver(platform: Platform, call: BuiltCall, delivery: Delivery) -> int:
    if delivery.kind == "recording":
        return platform.post(RECORDING_PATH, call.recording_forms[delivery.status]).status_code
    assert delivery.sequence is not None
    return platform.call_status(
        call.call_sid,
        delivery.status,
        delivery.sequence,
        Timestamp=format_datetime(CALL_TIMES[delivery.sequence]),
        CallbackSource="call-progress-events",
        Direction="inbound",
        From=DEFAULT_CALLER,
        To=NUMBER,
        ApiVersion="2010-04-01",
        AccountSid=ACCOUNT_SID,
    ).status_code


# -- what should have happened -----------------------------------------------------------


def expected_events(
    order: tuple[Delivery, ...], ending: str, destroy_after: str | None
) -> list[tuple[str, dict[str, Any]]]:
    """The events the ordering rules give for `order`: (type, the detail's fields)."""
    events: list[tuple[str, dict[str, Any]]] = []
    applied = -1  # the latest call status applied (by sequence); none yet
    recording = "in-progress"  # as the REST start left it
    for delivery in order:
        if delivery.kind == "call":
            assert delivery.sequence is not None
            detail = {"status": delivery.status, "sequence": delivery.sequence}
            if delivery.sequence <= applied:
                events.append(
                    ("call.status_ignored", {**detail, "current": CALL_STATUSES[applied]})
                )
                continue
            applied = delivery.sequence
            if delivery.status == "completed":
                events.append(("call.ended", detail))
                events.append(("decision", {"desired": "off"}))
            else:
                events.append(("call.status", detail))
        elif recording != "in-progress":
            events.append(
                ("recording.status_ignored", {"status": delivery.status, "current": recording})
            )
        elif delivery.status == "in-progress":
            events.append(("recording.status", {"status": "in-progress", "source": "callback"}))
        else:
            recording = delivery.status
            events.append(
                (
                    "recording.completed",
                    {
                        "status": ending,
                        "retention": DEPARTMENT.retention,
                        "destroy_after": destroy_after,
                    },
                )
            )
    return events


def brief(type_: str, detail: dict[str, Any]) -> str:
    """An audit event in a few words: `call.status_ignored(ringing#1, current=completed)`."""
    words = [str(detail[k]) for k in ("status", "desired") if k in detail]
    if "sequence" in detail:
        words[-1] += f"#{detail['sequence']}"
    if "current" in detail:
        words.append(f"current={detail['current']}")
    return f"{type_}({', '.join(words)})"


def final_state(
    call: Call, recording: Recording, forms: dict[str, dict[str, str]]
) -> dict[str, Any]:
    """What in-order delivery must leave, in terms comparable between two calls."""
    ending = forms.get("completed") or forms["absent"]
    assert recording.completed_at is not None
    started = datetime.strptime(ending["RecordingStartTime"], "%a, %d %b %Y %H:%M:%S %z")
    return {
        "call.status": call.status,
        "call.status_sequence": call.status_sequence,
        "call.ended": call.ended,
        "call.ended_at": call.ended_at,
        "call.desired": call.desired,
        "call.reasons": call.reasons,
        "call.recording": call.recording,
        "call.department": call.department,
        "call.queued": call.queued,
        "call.start_pending_until": call.start_pending_until,
        "recording.status": recording.status,
        "recording.department": recording.department,
        "recording.retention": recording.retention,
        "recording.duration_seconds": recording.duration_seconds,
        "recording.completed_at - start": recording.completed_at - started,
        "recording.media_url is the callback's": recording.media_url == ending["RecordingUrl"],
        "recording.destroy_after - completed_at": (
            None
            if recording.destroy_after is None
            else recording.destroy_after - recording.completed_at
        ),
        "recording.destroyed_at": recording.destroyed_at,
    }


def check_in_order_baseline(state: dict[str, Any], ending: str) -> None:
    """In-order delivery, against fixed expectations (the other orders must equal it)."""
    expected = {
        "call.status": "completed",
        "call.status_sequence": 3,
        "call.ended": True,
        "call.ended_at": CALL_TIMES[3],
        "call.desired": "off",
        "call.reasons": ["call_ended"],
        "call.recording": "off",
        "call.department": DEPARTMENT.id,
        "call.queued": True,
        "call.start_pending_until": None,
        "recording.status": ending,
        "recording.department": DEPARTMENT.id,
        "recording.retention": DEPARTMENT.retention,
        "recording.media_url is the callback's": True,
        "recording.destroyed_at": None,
    }
    assert {k: state[k] for k in expected} == expected
    assert state["recording.duration_seconds"] is not None
    assert state["recording.completed_at - start"] == timedelta(
        seconds=state["recording.duration_seconds"]
    )
    if ending == "completed":
        # Retention runs from completion: the department's period, written at completion.
        assert state["recording.destroy_after - completed_at"] == timedelta(days=130)
        assert parse_duration(DEPARTMENT.retention).days == 130


def problems_of(
    services: Services, call: BuiltCall, order: tuple[Delivery, ...], ending: str
) -> tuple[dict[str, Any] | None, list[str]]:
    """The call's final state and what is wrong with its audit events and rows."""
    problems: list[str] = []
    with services.sessions() as session:
        row = session.get(Call, call.call_sid)
        recordings = list(
            session.scalars(select(Recording).where(Recording.call_sid == call.call_sid))
        )
        events = list(
            session.scalars(
                select(AuditEvent)
                .where(AuditEvent.call_sid == call.call_sid)
                .order_by(AuditEvent.sequence)
            )
        )
    if row is None or [r.recording_sid for r in recordings] != [call.recording_sid]:
        found = [r.recording_sid for r in recordings]
        return None, [f"expected the call and exactly its recording {call.recording_sid}: {found}"]
    recording = recordings[0]
    types = [e.type for e in events]
    for type_, count in (("recording.started", 1), ("call.ended", 1), ("recording.completed", 1)):
        if types.count(type_) != count:
            problems.append(f"{type_} {types.count(type_)} times, expected {count}")
    if "recording.started" not in types:
        return None, problems
    after = events[types.index("recording.started") + 1 :]  # the build's last event

    # Independent of the model: applied statuses only move forward.
    applied = [e.detail["sequence"] for e in after if e.type in ("call.status", "call.ended")]
    if applied != sorted(set(applied)):
        problems.append(f"call moved backwards: applied sequences {applied}")
    completed = [e for e in after if e.type == "recording.completed"]
    destroy_after = completed[0].detail.get("destroy_after") if completed else None
    stored = recording.destroy_after.isoformat() if recording.destroy_after else None
    if destroy_after != stored:
        problems.append(f"destroy_after {stored} on the row, {destroy_after} in the event")
    if ending == "completed" and recording.completed_at is not None:
        due = add_duration(recording.completed_at, parse_duration(recording.retention))
        if recording.destroy_after != due:
            problems.append(f"destroy_after {recording.destroy_after}, expected {due}")

    expected = expected_events(order, ending, destroy_after)
    actual = [(e.type, e.detail) for e in after]
    wrong = [
        n
        for n, ((a_type, a_detail), (e_type, e_detail)) in enumerate(
            zip(actual, expected, strict=False)
        )
        if a_type != e_type or any(a_detail.get(k) != v for k, v in e_detail.items())
    ]
    if wrong or len(actual) != len(expected):
        at = wrong[0] if wrong else min(len(actual), len(expected))
        problems.append(
            f"audit events after the start differ from event {at + 1} on:"
            f"\n      got      {', '.join(brief(*event) for event in actual)}"
            f"\n      expected {', '.join(brief(*event) for event in expected)}"
        )
        if wrong:
            problems.append(f"event {at + 1}: got {actual[at]}, expected {expected[at]}")
    for event in after:
        if event.recording_sid not in (None, call.recording_sid):
            problems.append(f"event {event.type} names recording {event.recording_sid}")
    if recording.completed_at is None:
        problems.append(f"recording {recording.status} has no completed_at")
        return None, problems
    return final_state(row, recording, call.recording_forms), problems


@pytest.mark.parametrize("ending", ENDINGS)
def test_every_callback_order_ends_as_in_order_delivery(
    ending: str, platform: Platform, services: Services
) -> None:
    orders = orders_for(ending)
    baseline: dict[str, Any] | None = None
    failures: list[str] = []
    for order in orders:
        try:
            call = build_call(platform, ending)
            answers = [deliver(platform, call, delivery) for delivery in order]
        except Exception as exc:  # reported with its order; the other orders still run
            failures.append(f"{describe(order)}\n    raised {exc!r}")
            continue
        problems = [
            f"{delivery} answered {status}"
            for delivery, status in zip(order, answers, strict=True)
            if status != 204
        ]
        state, found = problems_of(services, call, order, ending)
        problems += found
        if baseline is None:
            assert not problems, f"in-order delivery {describe(order)}: {problems}"
            assert state is not None
            check_in_order_baseline(state, ending)
            baseline = state
            continue
        if state is not None and state != baseline:
            differ = {k: (state[k], baseline[k]) for k in state if state[k] != baseline[k]}
            problems.append(f"final state differs from in-order (got, in-order): {differ}")
        if problems:
            failures.append(describe(order) + "".join(f"\n    {p}" for p in problems))
    assert not failures, (
        f"{len(failures)} of {len(orders)} orders (ending {ending}) went wrong; the first:\n"
        + "\n".join(failures[:FAILURES_SHOWN])
    )
