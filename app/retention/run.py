"""The retention run (R3, R6): destroy what is due, exactly once, on any number of workers.

1. Claim a batch of due recordings (destroy_after passed, not destroyed, no active hold)
   in one short transaction: a lease (claimed_by, claimed_until) on each row. PostgreSQL
   takes the rows with `FOR UPDATE SKIP LOCKED`, so concurrent workers get disjoint
   batches; SQLite has one writer, which serialises the claims.
2. With no transaction open, delete each at the provider on a bounded thread pool, then
   fetch it: only a fetch answering 404 proves it gone (a 204 to the DELETE is not enough).
3. Finish in one short transaction per group: destroyed_at and a `recording.destroyed`
   event with the provider's evidence, or a `recording.destroy_failed` event and the
   lease dropped, so the recording stays due and the next run retries it.

A recording this run failed on keeps claimed_by (with no lease), so this run does not
retry it in a loop; another run, with another worker id, does. A hold is refused while a
lease is live (app/retention/holds.py), and a claim skips rows with active holds, both
under the row lock: a held recording is never deleted.

Then callers' numbers are erased (R6) for calls whose recordings are all destroyed (or
never existed) and whose department's retention has passed since the call ended
(app/retention/erasure.py).
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

import structlog
from sqlalchemy import ColumnElement, CursorResult, case, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.calls.provider import ProviderError, RecordingStore
from app.retention.erasure import NumberErasure
from app.runtime.metrics import RETENTION
from app.storage.db import unit_of_work
from app.storage.models import Recording, utcnow

log = structlog.get_logger(__name__)

DEFAULT_CONCURRENCY = 4
DEFAULT_BATCH = 100
# Longer than any one delete-and-confirm, so a live worker never loses its claim; a dead
# worker's claims become claimable again after it.
LEASE = timedelta(minutes=10)
SYSTEM = "system"


@dataclass
class Summary:
    due: int = 0  # due and not held when the run started (on every worker's share)
    held: int = 0  # due but kept by a legal hold
    destroyed: int = 0  # by this worker
    failed: int = 0  # by this worker: still due, retried by the next run
    numbers_erased: int = 0

    @property
    def ok(self) -> bool:
        return self.failed == 0


@dataclass(frozen=True)
class Due:
    recording_sid: str
    call_sid: str
    department: str
    destroy_after: datetime


_DUE_COLUMNS = (
    Recording.recording_sid,
    Recording.call_sid,
    Recording.department,
    Recording.destroy_after,
)


def _as_due(row: Any) -> Due:
    sid, call_sid, department, destroy_after = row
    assert destroy_after is not None  # selected by destroy_after <= now
    return Due(sid, call_sid, department, destroy_after)


@dataclass(frozen=True)
class Attempt:
    due: Due
    gone: bool
    evidence: dict[str, Any]


@dataclass
class Preview:
    """What a run would do now (--dry-run): nothing is claimed, changed or logged."""

    recordings: list[Due] = field(default_factory=list)
    held: int = 0
    numbers: list[str] = field(default_factory=list)


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


def _error(exc: ProviderError) -> dict[str, Any]:
    return {"error": str(exc), "status": exc.status, "code": exc.code, "transient": exc.transient}


class RetentionRun:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: RecordingStore,
        *,
        now: datetime | None = None,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch_size: int = DEFAULT_BATCH,
        lease: timedelta = LEASE,
        worker: str | None = None,
        actor: str = SYSTEM,
    ) -> None:
        if concurrency < 1 or batch_size < 1:
            raise ValueError("concurrency and batch size must be at least 1")
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        # `now` decides what is due (--now replays a later date); leases and destroyed_at
        # always use the real clock, because that is when things really happen.
        self.now = now or utcnow()
        self.sessions = sessions
        self.provider = provider
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.lease = lease
        self.worker = worker or worker_id()
        self.actor = actor
        self._postgres = sessions.kw["bind"].dialect.name == "postgresql"
        self.numbers = NumberErasure(
            sessions, self.now, batch_size=batch_size, actor=actor, worker=self.worker
        )

    # -- selection ---------------------------------------------------------------------

    def _due(self) -> ColumnElement[bool]:
        return (Recording.destroyed_at.is_(None)) & (Recording.destroy_after <= self.now)

    def _counts(self, session: Session) -> tuple[int, int]:
        """(due and free, due but held)."""
        held = case((Recording.active_holds > 0, 1), else_=0)
        total, kept = session.execute(
            select(func.count(), func.coalesce(func.sum(held), 0)).where(self._due())
        ).one()
        return total - kept, kept

    def counts(self) -> tuple[int, int]:
        with unit_of_work(self.sessions) as session:
            return self._counts(session)

    def _claim(self) -> list[Due]:
        wall = utcnow()
        query = (
            select(*_DUE_COLUMNS)
            .where(self._due())
            .where(Recording.active_holds == 0)
            .where(or_(Recording.claimed_until.is_(None), Recording.claimed_until < wall))
            .where(or_(Recording.claimed_by.is_(None), Recording.claimed_by != self.worker))
            .order_by(Recording.destroy_after, Recording.recording_sid)
            .limit(self.batch_size)
        )
        if self._postgres:
            query = query.with_for_update(skip_locked=True)
        with unit_of_work(self.sessions) as session:
            claimed = [_as_due(row) for row in session.execute(query)]
            if claimed:
                session.execute(
                    update(Recording)
                    .where(Recording.recording_sid.in_([d.recording_sid for d in claimed]))
                    .values(claimed_by=self.worker, claimed_until=wall + self.lease)
                    .execution_options(synchronize_session=False)
                )
        return claimed

    # -- the provider's side (no transaction open) ---------------------------------------

    def _destroy(self, due: Due) -> Attempt:
        sid = due.recording_sid
        evidence: dict[str, Any] = {}
        try:
            try:
                self.provider.delete_recording(sid)
                evidence["delete"] = {"status": 204}
            except ProviderError as exc:
                if not exc.not_found:
                    return Attempt(due, False, {"stage": "delete", **_error(exc)})
                evidence["delete"] = {"status": exc.status, "code": exc.code}
            try:
                info = self.provider.fetch_recording(sid)
            except ProviderError as exc:
                if exc.not_found:
                    evidence["fetch"] = {"status": exc.status, "code": exc.code}
                    return Attempt(due, True, evidence)
                return Attempt(due, False, {"stage": "confirm", **evidence, **_error(exc)})
            # The DELETE was accepted, yet the provider still has it: not destroyed.
            evidence["fetch"] = {"status": 200, "recording_status": str(info.status)}
            return Attempt(due, False, {"stage": "confirm", **evidence, "error": "still_present"})
        except Exception as exc:  # a bug or a transport surprise must not end the run
            log.exception("retention_destroy_error", recording_sid=sid)
            return Attempt(due, False, {"stage": "error", "error": f"{type(exc).__name__}: {exc}"})

    # -- finishing ------------------------------------------------------------------------

    def _finish(self, attempts: list[Attempt], summary: Summary) -> None:
        if not attempts:
            return
        wall = utcnow()
        with unit_of_work(self.sessions) as session:
            for attempt in attempts:
                due = attempt.due
                this = Recording.recording_sid == due.recording_sid
                detail = {
                    **attempt.evidence,
                    "worker": self.worker,
                    "destroy_after": due.destroy_after.isoformat(),
                }
                if attempt.gone:
                    # Whoever's lease it is: the provider has shown it is gone. Only the
                    # first to record that writes the event.
                    result = session.execute(
                        update(Recording)
                        .where(this, Recording.destroyed_at.is_(None))
                        .values(destroyed_at=wall, claimed_until=None)
                        .execution_options(synchronize_session=False)
                    )
                    if cast(CursorResult[Any], result).rowcount:
                        summary.destroyed += 1
                        audit.append(
                            session,
                            audit.EventType.RECORDING_DESTROYED,
                            actor=self.actor,
                            call_sid=due.call_sid,
                            recording_sid=due.recording_sid,
                            detail=detail,
                        )
                    continue
                summary.failed += 1
                log.warning("retention_destroy_failed", recording_sid=due.recording_sid, **detail)
                session.execute(
                    update(Recording)
                    .where(this, Recording.claimed_by == self.worker)
                    .values(claimed_until=None)
                    .execution_options(synchronize_session=False)
                )
                audit.append(
                    session,
                    audit.EventType.RECORDING_DESTROY_FAILED,
                    actor=self.actor,
                    call_sid=due.call_sid,
                    recording_sid=due.recording_sid,
                    detail=detail,
                )

    def _destroy_due(self, summary: Summary, advance: Callable[[int], None]) -> None:
        """Claims batches as the pool runs dry, so the provider always has `concurrency`
        requests in flight; results are finished in groups of about a batch or a second."""
        finished: list[Attempt] = []
        last_finish = time.monotonic()
        more = True
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix="retention") as pool:
            in_flight: set[Future[Attempt]] = set()
            while more or in_flight:
                if more and len(in_flight) <= self.concurrency:
                    claimed = self._claim()
                    more = bool(claimed)
                    in_flight.update(pool.submit(self._destroy, due) for due in claimed)
                if not in_flight:
                    continue
                done, in_flight = wait(in_flight, timeout=1.0, return_when=FIRST_COMPLETED)
                finished.extend(future.result() for future in done)
                flush = len(finished) >= self.batch_size or time.monotonic() - last_finish > 1
                if finished and (flush or not (more or in_flight)):
                    self._finish(finished, summary)
                    advance(len(finished))
                    finished, last_finish = [], time.monotonic()
        self._finish(finished, summary)
        advance(len(finished))

    # -- entry points --------------------------------------------------------------------

    def preview(self) -> Preview:
        preview = Preview()
        with unit_of_work(self.sessions) as session:
            _, preview.held = self._counts(session)
            preview.recordings = [
                _as_due(row)
                for row in session.execute(
                    select(*_DUE_COLUMNS)
                    .where(self._due(), Recording.active_holds == 0)
                    .order_by(Recording.destroy_after, Recording.recording_sid)
                )
            ]
            # Numbers whose recordings are all due now would be erased by the same run.
            due_calls = {d.call_sid for d in preview.recordings}
            preview.numbers = [c.call_sid for c in self.numbers.erasable(session)]
            preview.numbers += sorted(
                self.numbers.erasable_once_destroyed(session, due_calls, self._due())
            )
        return preview

    def run(self, advance: Callable[[int], None] = lambda _n: None) -> Summary:
        summary = Summary()
        summary.due, summary.held = self.counts()
        self._destroy_due(summary, advance)
        summary.numbers_erased = self.numbers.erase()
        with unit_of_work(self.sessions) as session:
            audit.append(
                session,
                audit.EventType.RETENTION_RUN,
                actor=self.actor,
                detail={**asdict(summary), "now": self.now.isoformat(), "worker": self.worker},
            )
        for result in ("destroyed", "held", "failed"):
            RETENTION.labels(result).inc(getattr(summary, result))
        log.info("retention_run", **asdict(summary), worker=self.worker)
        return summary
