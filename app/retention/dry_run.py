"""`callguard policy dry-run` (P8, R1): how a candidate policy would have decided past calls
and which destruction dates it would give, without changing anything. Dates already set
never move: a new policy applies to recordings completed under it.

Each call's stored facts are replayed as they stood before it ended (an ended call is
always `off`, which says nothing), through the version that decided it and through the
candidate, with the same engine (`decide()`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.calls.state import facts_of
from app.config import FailSafe as SettingsFailSafe
from app.recording_policy import Decision, FailSafe, Policy, add_duration, decide
from app.storage.models import Call, Recording
from app.storage.policy_versions import policy_version

BATCH = 500


@dataclass(frozen=True)
class CallChange:
    call_sid: str
    department: str | None
    before: Decision
    after: Decision


@dataclass(frozen=True)
class DateChange:
    recording_sid: str
    call_sid: str
    department: str
    current: datetime | None
    candidate: datetime | None
    note: str  # why the candidate differs


@dataclass
class DryRun:
    calls: int = 0
    recordings: int = 0
    decisions: list[CallChange] = dataclasses.field(default_factory=list)
    dates: list[DateChange] = dataclasses.field(default_factory=list)


def _date_change(recording: Recording, candidate: Policy) -> DateChange | None:
    if recording.completed_at is None or recording.destroyed_at is not None:
        return None  # no date yet, or nothing left to keep
    department = candidate.department(recording.department)
    new: datetime | None = None
    if department is None:
        note = "department not in the candidate policy"
    elif not department.recorded:
        note = "the candidate would not have recorded it"
    else:
        new = add_duration(recording.completed_at, department.retention_duration)
        if new == recording.destroy_after:
            return None
        note = f"retention {recording.retention} -> {department.retention}"
    return DateChange(
        recording.recording_sid,
        recording.call_sid,
        recording.department,
        recording.destroy_after,
        new,
        note,
    )


def dry_run(session: Session, candidate: Policy, fail_safe: SettingsFailSafe) -> DryRun:
    """Read-only: the caller's session is never flushed with changes."""
    safe = FailSafe(fail_safe.value)
    report = DryRun()
    calls = select(Call).order_by(Call.call_sid).execution_options(yield_per=BATCH)
    for call in session.scalars(calls):
        report.calls += 1
        facts = dataclasses.replace(facts_of(call), ended=False)
        version = call.policy_version
        before = decide(facts, policy_version(session, version) if version else None, version, safe)
        after = decide(facts, candidate, None, safe)
        if (before.state, before.reasons) != (after.state, after.reasons):
            report.decisions.append(CallChange(call.call_sid, call.department, before, after))
    recordings = (
        select(Recording).order_by(Recording.recording_sid).execution_options(yield_per=BATCH)
    )
    for recording in session.scalars(recordings):
        report.recordings += 1
        change = _date_change(recording, candidate)
        if change is not None:
            report.dates.append(change)
    return report
