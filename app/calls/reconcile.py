"""Bring the platform to the decided state. Intent, provider call and outcome are each
audited; no database transaction is held open while the provider is asked."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, TypeVar

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.calls.decisions import end_call
from app.calls.locks import CallBusy, CallLocks
from app.calls.provider import Provider, ProviderError, RecordingInfo
from app.calls.state import confirmed_state
from app.calls.store import (
    ACTIVE_RECORDING,
    TERMINAL_RECORDING,
    find_call,
    live,
    recordings_of,
)
from app.config import FailSafe as SettingsFailSafe
from app.storage.db import unit_of_work
from app.storage.models import Call, Recording, utcnow
from app.storage.policy_versions import policy_version

log = structlog.get_logger(__name__)

Kind = Literal["start", "pause", "resume", "stop"]
# How long a start whose answer was lost blocks another start (see _note_failure).
START_UNCERTAIN = timedelta(seconds=60)

_EVENTS = {
    "start": (
        audit.EventType.RECORDING_START_REQUESTED,
        audit.EventType.RECORDING_STARTED,
        audit.EventType.RECORDING_START_FAILED,
    ),
    "pause": (
        audit.EventType.RECORDING_PAUSE_REQUESTED,
        audit.EventType.RECORDING_PAUSED,
        audit.EventType.RECORDING_PAUSE_FAILED,
    ),
    "resume": (
        audit.EventType.RECORDING_RESUME_REQUESTED,
        audit.EventType.RECORDING_RESUMED,
        audit.EventType.RECORDING_RESUME_FAILED,
    ),
    "stop": (
        audit.EventType.RECORDING_STOP_REQUESTED,
        audit.EventType.RECORDING_STOPPED,
        audit.EventType.RECORDING_STOP_FAILED,
    ),
}


@dataclass(frozen=True)
class Action:
    kind: Kind
    recording_sid: str | None = None
    segment_sid: str | None = None  # where a start records (None: the call itself)


@dataclass
class Outcome:
    actions: list[Action] = field(default_factory=list)
    failures: list[tuple[Action, ProviderError]] = field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        return not self.failures


def plan(
    call: Call, recordings: list[Recording], now: datetime, *, startable: bool = True
) -> list[Action]:
    """The provider actions that take the call from its recordings' state to `desired`.
    A running recording owned by another department than the call's, or of another
    segment than the call's current one, is stopped: each recording belongs to one
    department (and one segment). A segment is recorded at most once, and only while it
    is `startable` (not ended)."""
    if call.ended:
        return []  # the platform ends a call's recordings itself
    active = [r for r in recordings if r.status in ACTIVE_RECORDING]

    def owned(r: Recording) -> bool:
        # (A recording made with no department known is owned by "unknown": new_recording.)
        department = call.department or "unknown"
        return r.department == department and r.segment_sid == call.segment_sid

    foreign = [r for r in active if not owned(r)]
    own = [r for r in active if owned(r)]
    actions = [Action("stop", r.recording_sid) for r in foreign]
    if call.desired == "recording":
        actions += [Action("resume", r.recording_sid) for r in own if r.status == "paused"]
        pending = call.start_pending_until is not None and call.start_pending_until > now
        recorded = call.segment_sid is not None and any(
            r.segment_sid == call.segment_sid for r in recordings
        )
        if not own and not pending and startable and not recorded:
            actions.append(Action("start", segment_sid=call.segment_sid))
    elif call.desired == "paused":
        actions += [Action("pause", r.recording_sid) for r in own if r.status == "in-progress"]
    else:
        actions += [Action("stop", r.recording_sid) for r in own]
    return actions


def new_recording(
    session: Session, call: Call, sid: str, status: str, segment_sid: str | None = None
) -> Recording:
    """A recording owned by the call's current department, with that department's
    retention under the policy version that decided to record it."""
    policy = policy_version(session, call.policy_version) if call.policy_version else None
    department = policy.department(call.department) if policy and call.department else None
    recording = Recording(
        recording_sid=sid,
        call_sid=call.call_sid,
        segment_sid=segment_sid,
        department=call.department or "unknown",
        status=status,
        policy_version=call.policy_version,
        # Unknown department or policy: keep the longest period of the default policy
        # rather than destroy evidence early; governance can review it.
        retention=department.retention if department else "P2Y130D",
    )
    session.add(recording)
    return recording


@dataclass(frozen=True)
class RetryPolicy:
    """How often a transient provider failure is retried within one reconcile. Bounded so an
    agent waiting on a pause gets an answer in a few seconds; the sweep retries later."""

    attempts: int = 4
    first_delay: float = 0.15
    factor: float = 2.0

    def delays(self) -> Iterator[float]:
        delay = self.first_delay
        for _ in range(self.attempts - 1):
            yield delay * (0.75 + random.random() / 2)  # noqa: S311  (jitter, not crypto)
            delay *= self.factor


T = TypeVar("T")


def with_retries(
    operation: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
    *,
    retryable: Callable[[ProviderError], bool] = lambda exc: exc.transient,
    on_retry: Callable[[ProviderError, float], None] = lambda exc, delay: None,
) -> T:
    """Repeat a provider operation on the errors `retryable` allows, within the policy;
    the last error is raised."""
    delays = policy.delays()
    while True:
        try:
            return operation()
        except ProviderError as exc:
            delay = next(delays, None) if retryable(exc) else None
            if delay is None:
                raise
            on_retry(exc, delay)
            sleep(delay)


def _retryable(action: Action, error: ProviderError) -> bool:
    """Pause, resume and stop set an absolute state, so repeating them is harmless. A start
    is repeated only when the platform certainly did not act on it (throttled, busy): after
    a timeout or a 5xx it may have created a recording, and a blind retry could make two."""
    if not error.transient:
        return False
    return action.kind != "start" or error.not_attempted


def _requested(
    session: Session, call: Call, recordings: list[Recording], actor: str
) -> list[Action]:
    """The call's next actions (plan()), each logged as requested in `session`."""
    actions = plan(call, recordings, utcnow(), startable=live(session, call))
    for action in actions:
        audit.append(
            session,
            _EVENTS[action.kind][0],
            actor=actor,
            call_sid=call.call_sid,
            recording_sid=action.recording_sid,
            reasons=call.reasons,
            policy_version=call.policy_version,
        )
    return actions


def _end(
    session: Session, call: Call, status: str, error: ProviderError, detail: dict[str, object]
) -> None:
    call.status = status
    audit.append(
        session,
        audit.EventType.CALL_ENDED,
        actor="platform",
        call_sid=call.call_sid,
        detail={"status": status, "source": "provider", "code": error.code},
    )
    end_call(session, call, utcnow(), SettingsFailSafe.NO_RECORD, "platform")
    detail["call"] = "ended"


class Plan:
    """Handed to a change by Reconciler.changed: called in the change's transaction, with
    the call locked, when the platform may now have to act on the call. Holding the call's
    reconcile lock (`now`), it plans the first pass there, logged as requested, as
    reconcile() would in a transaction of its own; otherwise it notes that a reconcile is
    wanted after the change."""

    def __init__(self, actor: str, *, now: bool) -> None:
        self.actor = actor
        self.now = now
        self.wanted = False
        self.actions: list[Action] = []

    def __call__(self, session: Session, call: Call) -> None:
        self.wanted = True
        if self.now:
            recordings = recordings_of(session, call.call_sid)
            self.actions = _requested(session, call, recordings, self.actor)


class Reconciler:
    MAX_PASSES = 5

    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: Provider,
        locks: CallLocks,
        ended_status: str,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`ended_status` is the platform's own status for an ended call: a call's status
        is always one of its platform's words, even when callguard ends the call itself."""
        self.sessions = sessions
        self.provider = provider
        self.locks = locks
        self.ended_status = ended_status
        self.retry = retry or RetryPolicy()
        self.sleep = sleep

    def reconcile(self, call_sid: str, actor: str) -> Outcome:
        """Bring the platform to the call's desired state, holding the call's reconcile
        lock: concurrent requests queue here, and each plans from the newest facts, so the
        last one to finish leaves what decide() gives for the final facts."""
        with self.locks.hold(call_sid):
            return self._passes(call_sid, self._plan(call_sid, actor), actor)

    def changed(
        self, call_sid: str, actor: str, change: Callable[[Plan], T], *, leave_if_busy: bool
    ) -> T:
        """`change` (a unit of work of the caller's: it calls the Plan it is handed, inside
        its transaction, when the call may now need the platform to act), then the call
        reconciled if it asked. A call busy with another change is then waited for as
        reconcile() does (CallBusy after the lock's timeout, the change made) or, with
        `leave_if_busy` — a webhook's way — left to its lock's holder and the sweep.

        When the call's lock is free it is taken first, and the change's own transaction
        plans the first pass: a transaction fewer than the change and then reconcile()
        (issue 17: the IVR's queueing and its recording's start, a payment's pause). When
        another holds it, the change is made at once all the same — the fact is never kept
        waiting on a lock — and the call is reconciled after, as before."""
        with self.locks.attempt(call_sid) as held:
            if held:
                plan = Plan(actor, now=True)
                result = change(plan)
                self._passes(call_sid, plan.actions, actor)
                return result
        # Not held: the attempt's connection (PostgreSQL) is given back before the change.
        plan = Plan(actor, now=False)
        result = change(plan)
        if plan.wanted:
            if leave_if_busy:
                self.reconcile_or_leave(call_sid, actor)
            else:
                self.reconcile(call_sid, actor)
        return result

    def _passes(self, call_sid: str, actions: list[Action], actor: str) -> Outcome:
        """The planned actions carried out, and the passes they lead to (the caller holds
        the call's lock)."""
        outcome = Outcome()
        for passes_left in reversed(range(self.MAX_PASSES)):
            if not actions:
                break
            outcome.actions += actions
            following: list[Action] = []
            for index, action in enumerate(actions):
                # The next pass is planned in the transaction that records the pass's
                # last outcome, if all went through: a transaction fewer on every
                # reconcile that acts (the IVR's start, a pause; issue 17).
                last = index == len(actions) - 1 and passes_left > 0
                failure, following = self._carry_out(
                    call_sid, action, actor, plan_next=last and not outcome.failures
                )
                if failure is not None:
                    outcome.failures.append(failure)
            if outcome.failures:
                break  # surfaced to the caller and retried by the sweep, not looped on
            actions = following
        return outcome

    def reconcile_or_leave(self, call_sid: str, actor: str) -> None:
        """For a webhook, whose answer does not wait on the platform: reconcile now or, if
        the call is busy, leave it to its lock's holder (who plans from the newest facts)
        and the sweep, rather than answer the platform 503."""
        try:
            self.reconcile(call_sid, actor)
        except CallBusy:
            log.info("reconcile_left_to_sweep", call_sid=call_sid, actor=actor)

    def sweep(self, actor: str = "system") -> int:
        """Reconcile every live call whose confirmed state differs from its desired one
        (a failed resume or stop, or a change whose request found the call busy, is
        retried here, never dropped). A busy call is someone else's to reconcile now and
        checked again on the next pass. Returns how many drifted."""
        with unit_of_work(self.sessions) as session:
            drifted = select(Call.call_sid).where(
                Call.ended.is_(False),
                Call.desired != Call.recording,
                # Paused wanted, nothing recording: already as safe as paused.
                ~((Call.desired == "paused") & (Call.recording == "off")),
            )
            sids = list(session.scalars(drifted))
        for call_sid in sids:
            try:
                self.reconcile(call_sid, actor)
            except CallBusy:
                log.info("sweep_found_call_busy", call_sid=call_sid)
        return len(sids)

    def _plan(self, call_sid: str, actor: str) -> list[Action]:
        with unit_of_work(self.sessions) as session:
            call = find_call(session, call_sid, lock=True)
            if call is None:
                return []
            return _requested(session, call, recordings_of(session, call_sid), actor)

    def _carry_out(
        self, call_sid: str, action: Action, actor: str, *, plan_next: bool
    ) -> tuple[tuple[Action, ProviderError] | None, list[Action]]:
        """The action asked of the platform and its outcome recorded: (its failure, if
        it is one to surface, and the next pass's actions when `plan_next` and it went
        through)."""

        def retrying(exc: ProviderError, delay: float) -> None:
            self._log_failure(call_sid, action, exc, delay)
            self._record_retry(call_sid, action, exc, actor)

        try:
            info = with_retries(
                lambda: self._perform(call_sid, action),
                self.retry,
                self.sleep,
                retryable=lambda exc: _retryable(action, exc),
                on_retry=retrying,
            )
        except ProviderError as exc:
            self._log_failure(call_sid, action, exc, None)
            # A pause, resume or stop of a recording the platform no longer has is not a
            # failure to surface: it is marked absent, and the next pass plans without it.
            tolerated = exc.not_found and action.kind != "start"
            following = self._record_outcome(
                call_sid, action, None, exc, actor, plan_next=plan_next and tolerated
            )
            return (None if tolerated else (action, exc)), following
        return None, self._record_outcome(call_sid, action, info, None, actor, plan_next=plan_next)

    @staticmethod
    def _log_failure(
        call_sid: str, action: Action, exc: ProviderError, retry_in: float | None
    ) -> None:
        log.warning(
            "provider_action_failed",
            call_sid=call_sid,
            action=action.kind,
            status=exc.status,
            code=exc.code,
            transient=exc.transient,
            retry_in=retry_in,
        )

    def _perform(self, call_sid: str, action: Action) -> RecordingInfo:
        _off_the_event_loop()
        if action.kind == "start":
            return self.provider.start_recording(call_sid, action.segment_sid or call_sid)
        assert action.recording_sid is not None
        operation = {
            "pause": self.provider.pause_recording,
            "resume": self.provider.resume_recording,
            "stop": self.provider.stop_recording,
        }[action.kind]
        return operation(call_sid, action.recording_sid)

    def _record_retry(
        self, call_sid: str, action: Action, error: ProviderError, actor: str
    ) -> None:
        with unit_of_work(self.sessions) as session:
            audit.append(
                session,
                audit.EventType.PROVIDER_RETRY,
                actor=actor,
                call_sid=call_sid,
                recording_sid=action.recording_sid,
                detail={"action": action.kind, **_error_detail(error)},
            )

    def _record_outcome(
        self,
        call_sid: str,
        action: Action,
        info: RecordingInfo | None,
        error: ProviderError | None,
        actor: str,
        *,
        plan_next: bool,
    ) -> list[Action]:
        _, succeeded, failed = _EVENTS[action.kind]
        with unit_of_work(self.sessions) as session:
            call = find_call(session, call_sid, lock=True)
            assert call is not None
            # Loaded first, so that the recording acted on is found without a query of its
            # own and the state is worked out in memory: one flush, at commit (issue 17).
            recordings = recordings_of(session, call_sid)
            recording_sid = info.sid if info else action.recording_sid
            detail: dict[str, object] = {}
            if info is not None:
                detail["provider_status"] = str(info.status)
                recording = session.get(Recording, info.sid)
                if recording is None:
                    recording = new_recording(
                        session, call, info.sid, str(info.status), action.segment_sid
                    )
                    recordings.append(recording)
                elif recording.status not in TERMINAL_RECORDING:
                    recording.status = str(info.status)
                call.start_pending_until = None
            elif error is not None:
                detail.update(_error_detail(error))
                self._note_failure(session, call, action, error, detail)
            audit.append(
                session,
                failed if error else succeeded,
                actor=actor,
                call_sid=call_sid,
                recording_sid=recording_sid,
                reasons=call.reasons,
                policy_version=call.policy_version,
                detail=detail,
            )
            call.recording = confirmed_state(call, recordings)
            call.updated_at = utcnow()
            # Planned from the facts as this transaction leaves them, under the call's row
            # lock: what a fresh transaction would read (another change to the call waits
            # for this reconcile's lock, then plans for itself).
            return _requested(session, call, recordings, actor) if plan_next else []

    def _note_failure(
        self,
        session: Session,
        call: Call,
        action: Action,
        error: ProviderError,
        detail: dict[str, object],
    ) -> None:
        if action.kind == "start" and (error.call_over or error.not_found) and not call.ended:
            # The platform says the call is over, and its own report of the end is late
            # or will never come (status callbacks are the operator's to configure): end
            # the call here, or the sweep would try to start a recording on it forever.
            # (A report that came while the start was asked for has ended it already.)
            _end(session, call, self.ended_status, error, detail)
        if action.kind == "start" and error.transient:
            # The platform may have started it anyway: wait for its in-progress callback
            # before starting another (the sweep starts one after this, if none came).
            call.start_pending_until = utcnow() + START_UNCERTAIN
            detail["start_pending_until"] = call.start_pending_until.isoformat()
        if error.not_found and action.recording_sid:
            # Gone at the platform: it can record nothing more. Marked absent, so it is
            # neither paused nor resumed again; a later callback cannot reopen it.
            recording = session.get(Recording, action.recording_sid)
            if recording is not None and recording.status not in TERMINAL_RECORDING:
                recording.status = "absent"
                detail["marked"] = "absent"


def _off_the_event_loop() -> None:
    """A provider call waits on the network. Some webhooks run their units of work on the
    event loop itself (app/storage/db.py's run_transactions), on the promise that they ask
    no provider: one that did would stall every request, or wait forever on a platform
    this same loop serves (a simulated one). The reconciler's recording commands are
    checked here; other provider calls (a transfer, retention's deletes, a platform's own
    webhook starting a recording) are not."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return  # a worker thread, the CLI, a background pass: where it belongs
    raise RuntimeError("a provider call on the event loop: run it on a worker thread")


def _error_detail(error: ProviderError) -> dict[str, object]:
    return {
        "error": str(error),
        "status": error.status,
        "code": error.code,
        "transient": error.transient,
    }
