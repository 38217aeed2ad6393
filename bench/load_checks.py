"""The checks of bench/load.py, read from the database once the load is over: nothing lost,
nothing applied twice, every loaded call's final state equal to its scenario's in-order
reference, and the audit chain intact.

Kept apart from the load itself (bench/load.py), which only plays the calls and times them.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from load import Scenario

CALL_STATUSES = ("initiated", "ringing", "in-progress", "completed")
# The fingerprint pass runs every 10 s on each server and drains what is waiting.
FINGERPRINT_WAIT = 60.0


def final_state(session: Any, call_sid: str) -> dict[str, Any]:
    """What must not depend on delivery order: the call, its recordings, its events' types
    (stale callbacks and their applied twins aside)."""
    from sqlalchemy import select

    from app.storage.models import AuditEvent, Call, Recording

    call = session.get(Call, call_sid)
    recordings = session.scalars(select(Recording).where(Recording.call_sid == call_sid))
    events = session.scalars(select(AuditEvent.type).where(AuditEvent.call_sid == call_sid))
    # A callback that arrives after a later one is recorded as ignored instead of applied.
    order_dependent = {
        "call.status",
        "call.status_ignored",
        "recording.status",
        "recording.status_ignored",
    }
    return {
        "call": {
            "status": call.status,
            "ended": call.ended,
            "recording": call.recording,
            "desired": call.desired,
            "reasons": list(call.reasons),
            "department": call.department,
            "payment_in_progress": call.payment_in_progress,
            "opted_out": call.opted_out,
        },
        "recordings": sorted((r.department, r.status, r.retention) for r in recordings),
        "events": dict(sorted(Counter(t for t in events if t not in order_dependent).items())),
    }


def exactly_once(session: Any, call_sid: str) -> list[str]:
    """Each distinct callback applied, or recorded as stale, exactly once."""
    from sqlalchemy import func, select

    from app.storage.models import AuditEvent, WebhookReceipt

    problems = []
    events = list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.call_sid == call_sid).order_by(AuditEvent.sequence)
        )
    )
    statuses = Counter(
        (e.detail["status"], e.detail.get("sequence"))
        for e in events
        if e.type in ("call.status", "call.status_ignored", "call.ended")
    )
    expected = Counter((s, n) for n, s in enumerate(CALL_STATUSES))
    if statuses != expected:
        problems.append(f"call-status events {dict(statuses)} != one of each")
    recording_callbacks = Counter(
        (e.recording_sid, e.detail["status"])
        for e in events
        if (
            e.type in ("recording.started", "recording.status")
            and e.detail.get("source") == "callback"
        )
        or e.type in ("recording.completed", "recording.status_ignored")
    )
    if any(n != 1 for n in recording_callbacks.values()):
        problems.append(f"recording callbacks applied {dict(recording_callbacks)}")
    types = Counter(e.type for e in events)
    if types["call.ended"] != 1:
        problems.append(f"call.ended {types['call.ended']} times")
    receipts = session.scalar(
        select(func.count()).select_from(WebhookReceipt).where(WebhookReceipt.call_sid == call_sid)
    )
    distinct = 2 + len(CALL_STATUSES) + len(recording_callbacks)  # voice, ivr, callbacks
    if receipts != distinct:
        problems.append(f"{receipts} webhook receipts for {distinct} distinct deliveries")
    return problems


def fingerprints_settled(sessions: Any) -> list[str]:
    """Wait for the servers' background fingerprint pass to reach every completed
    recording: its `recording.fingerprinted` events belong to each call's final state, and
    a loaded call completes later than its reference did."""
    from sqlalchemy import func, select

    from app.storage.models import Recording

    waiting = (
        select(func.count())
        .select_from(Recording)
        .where(Recording.status == "completed")
        .where(Recording.destroyed_at.is_(None))
        .where(Recording.fingerprinted_at.is_(None))
    )
    deadline = time.monotonic() + FINGERPRINT_WAIT
    while True:
        with sessions() as session:
            left = session.scalar(waiting)
        if not left:
            return []
        if time.monotonic() > deadline:
            return [f"{left} completed recordings not fingerprinted after {FINGERPRINT_WAIT} s"]
        time.sleep(0.5)


def check(
    database_url: str, references: dict[Scenario, str], calls: list[tuple[str, Scenario]]
) -> list[str]:
    from app.audit.verify import verify_chain
    from app.storage.db import make_engine, make_session_factory, read_only_session

    engine = make_engine(database_url)
    problems: list[str] = []
    try:
        sessions = make_session_factory(engine)
        problems += fingerprints_settled(sessions)
        with sessions() as session:
            expected = {s: final_state(session, sid) for s, sid in references.items()}
            for scenario, sid in references.items():
                problems += [f"reference {scenario.name}: {p}" for p in exactly_once(session, sid)]
            for sid, scenario in calls:
                state = final_state(session, sid)
                if state != expected[scenario]:
                    problems.append(
                        f"{sid} ({scenario.name}): {state} != in-order {expected[scenario]}"
                    )
                problems += [f"{sid} ({scenario.name}): {p}" for p in exactly_once(session, sid)]
        with read_only_session(engine) as session:
            verdict = verify_chain(session)
        if not verdict.ok:
            problems.append(f"audit chain broken: {verdict.as_dict()}")
        else:
            print(f"audit chain verifies: {verdict.events} events", flush=True)
    finally:
        engine.dispose()
    return problems
