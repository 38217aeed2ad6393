"""Erasing callers' numbers (R6), the retention run's last step (app/retention/run.py): a
call's sealed number is erased, with a `number.erased` event, once every recording of the
call is destroyed (or it never had one) and its department's retention, under the policy
version that last decided the call, has passed since the call ended. A call with no end
status (a lost callback) counts as ended a day after it started."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, exists, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.recording_policy import IsoDuration, add_duration, parse_duration
from app.storage.db import unit_of_work
from app.storage.models import Call, PolicyVersion, Recording, utcnow
from app.storage.policy_versions import active_policy, policy_version

# The notice's period, for a call whose department no policy version knows.
DEFAULT_RETENTION = "P130D"
# A call with no end status (a lost callback) counts as ended this long after it started.
STALE_CALL = timedelta(days=1)


def _lower_bound_days(duration: IsoDuration) -> int:
    """Fewest days the duration can add from any date (months of 28, years of 365)."""
    return duration.years * 365 + duration.months * 28 + duration.days


class NumberErasure:
    """For one retention run: `now` decides what has passed; the run's batch size, actor
    and worker id are reused."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        now: datetime,
        *,
        batch_size: int,
        actor: str,
        worker: str,
    ) -> None:
        self.sessions = sessions
        self.now = now
        self.batch_size = batch_size
        self.actor = actor
        self.worker = worker
        self._retentions: dict[tuple[int | None, str | None], IsoDuration] = {}

    def _retention(self, session: Session, call: Call) -> IsoDuration:
        """The call's department's retention under the version that last decided it."""
        key = (call.policy_version, call.department)
        if key not in self._retentions:
            policy = policy_version(session, call.policy_version) if call.policy_version else None
            if policy is None and (active := active_policy(session)) is not None:
                policy = active.policy
            department = policy.department(call.department) if policy and call.department else None
            self._retentions[key] = (
                department.retention_duration if department else parse_duration(DEFAULT_RETENTION)
            )
        return self._retentions[key]

    def _shortest_retention_days(self, session: Session) -> int:
        days = _lower_bound_days(parse_duration(DEFAULT_RETENTION))
        for version in session.scalars(select(PolicyVersion.version)):
            policy = policy_version(session, version)
            for department in policy.departments if policy else ():
                days = min(days, _lower_bound_days(department.retention_duration))
        return days

    def erasable(self, session: Session) -> Iterator[Call]:
        """Calls whose number is still held and may now be erased, in batches."""
        # No call can be due before this: a cheap filter in SQL, the exact date in Python.
        cutoff = self.now - timedelta(days=self._shortest_retention_days(session))
        ended = func.coalesce(Call.ended_at, Call.started_at)
        undestroyed = exists().where(
            Recording.call_sid == Call.call_sid, Recording.destroyed_at.is_(None)
        )
        after = ""
        while True:
            calls = session.scalars(
                select(Call)
                .where(Call.caller_number_wrapped_key.is_not(None))
                .where(ended <= cutoff)
                .where(or_(Call.ended.is_(True), Call.started_at <= utcnow() - STALE_CALL))
                .where(~undestroyed)
                .where(Call.call_sid > after)
                .order_by(Call.call_sid)
                .limit(self.batch_size)
            ).all()
            if not calls:
                return
            after = calls[-1].call_sid
            for call in calls:
                ended_at = call.ended_at or call.started_at
                if add_duration(ended_at, self._retention(session, call)) <= self.now:
                    yield call

    def erasable_once_destroyed(
        self, session: Session, call_sids: set[str], due: ColumnElement[bool]
    ) -> set[str]:
        """Calls with a number whose every undestroyed recording is `due` and unheld now
        (what a run that destroys those recordings would then erase)."""
        found = set()
        for call_sid in call_sids:
            call = session.get(Call, call_sid)
            if call is None or call.caller_number_wrapped_key is None:
                continue
            blocking = session.scalar(
                select(func.count())
                .select_from(Recording)
                .where(Recording.call_sid == call_sid, Recording.destroyed_at.is_(None))
                .where(~due | (Recording.active_holds > 0))
            )
            ended_at = call.ended_at or call.started_at
            if not blocking and add_duration(ended_at, self._retention(session, call)) <= self.now:
                found.add(call_sid)
        return found

    def erase(self) -> int:
        erased = 0
        with unit_of_work(self.sessions) as session:
            calls = [(c.call_sid, c.department, c.ended_at) for c in self.erasable(session)]
        for start in range(0, len(calls), self.batch_size):
            with unit_of_work(self.sessions) as session:
                for call_sid, department, ended_at in calls[start : start + self.batch_size]:
                    result = session.execute(
                        update(Call)
                        .where(Call.call_sid == call_sid)
                        .where(Call.caller_number_wrapped_key.is_not(None))
                        .values(
                            caller_number_ciphertext=None,
                            caller_number_wrapped_key=None,
                            caller_number_key_id=None,
                            caller_number_hash=None,
                            number_erased_at=utcnow(),
                        )
                        .execution_options(synchronize_session=False)
                    )
                    if cast(CursorResult[Any], result).rowcount:
                        erased += 1
                        audit.append(
                            session,
                            audit.EventType.NUMBER_ERASED,
                            actor=self.actor,
                            call_sid=call_sid,
                            detail={
                                "department": department,
                                "ended_at": ended_at.isoformat() if ended_at else None,
                                "worker": self.worker,
                            },
                        )
        return erased
