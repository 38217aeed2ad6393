"""Bring the platform to the decided state. Intent, provider call and outcome are each
audited; no database transaction is held open while the provider is asked."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import structlog
from sqlalchemy.orm import Session, sessionmaker

from app import audit
from app.calls.state import confirmed_state
from app.calls.store import ACTIVE_RECORDING, find_call, recordings_of
from app.db import unit_of_work
from app.models import Call, Recording, utcnow
from app.policy_store import policy_version
from app.providers.base import Provider, ProviderError, RecordingInfo

log = structlog.get_logger(__name__)

Kind = Literal["start", "pause", "resume", "stop"]

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


@dataclass
class Outcome:
    actions: list[Action] = field(default_factory=list)
    failures: list[tuple[Action, ProviderError]] = field(default_factory=list)

    @property
    def confirmed(self) -> bool:
        return not self.failures


def plan(call: Call, recordings: list[Recording]) -> list[Action]:
    """The provider actions that take the call from its recordings' state to `desired`.
    A running segment owned by another department than the call's is stopped: each
    recording belongs to one department."""
    if call.ended:
        return []  # the platform ends a call's recordings itself
    active = [r for r in recordings if r.status in ACTIVE_RECORDING]
    foreign = [r for r in active if r.department != call.department]
    own = [r for r in active if r.department == call.department]
    actions = [Action("stop", r.recording_sid) for r in foreign]
    if call.desired == "recording":
        actions += [Action("resume", r.recording_sid) for r in own if r.status == "paused"]
        if not own:
            actions.append(Action("start"))
    elif call.desired == "paused":
        actions += [Action("pause", r.recording_sid) for r in own if r.status == "in-progress"]
    else:
        actions += [Action("stop", r.recording_sid) for r in own]
    return actions


def new_recording(session: Session, call: Call, sid: str, status: str) -> Recording:
    """A recording owned by the call's current department, with that department's
    retention under the policy version that decided to record it."""
    policy = policy_version(session, call.policy_version) if call.policy_version else None
    department = policy.department(call.department) if policy and call.department else None
    recording = Recording(
        recording_sid=sid,
        call_sid=call.call_sid,
        department=call.department or "unknown",
        status=status,
        policy_version=call.policy_version,
        # Unknown department or policy: keep the longest period of the default policy
        # rather than destroy evidence early; governance can review it.
        retention=department.retention if department else "P2Y130D",
    )
    session.add(recording)
    return recording


class Reconciler:
    def __init__(
        self, sessions: sessionmaker[Session], provider: Provider, recording_callback: str
    ) -> None:
        self.sessions = sessions
        self.provider = provider
        self.recording_callback = recording_callback

    def reconcile(self, call_sid: str, actor: str) -> Outcome:
        with unit_of_work(self.sessions) as session:
            call = find_call(session, call_sid, lock=True)
            if call is None:
                return Outcome()
            actions = plan(call, recordings_of(session, call_sid))
            for action in actions:
                audit.append(
                    session,
                    _EVENTS[action.kind][0],
                    actor=actor,
                    call_sid=call_sid,
                    recording_sid=action.recording_sid,
                    reasons=call.reasons,
                    policy_version=call.policy_version,
                )
        outcome = Outcome(actions=actions)
        for action in actions:
            try:
                info: RecordingInfo | None = self._perform(call_sid, action)
                error = None
            except ProviderError as exc:
                info, error = None, exc
                outcome.failures.append((action, exc))
                log.warning(
                    "provider_action_failed",
                    call_sid=call_sid,
                    action=action.kind,
                    status=exc.status,
                    code=exc.code,
                    transient=exc.transient,
                )
            self._record_outcome(call_sid, action, info, error, actor)
        return outcome

    def _perform(self, call_sid: str, action: Action) -> RecordingInfo:
        if action.kind == "start":
            return self.provider.start_recording(call_sid, self.recording_callback)
        assert action.recording_sid is not None
        operation = {
            "pause": self.provider.pause_recording,
            "resume": self.provider.resume_recording,
            "stop": self.provider.stop_recording,
        }[action.kind]
        return operation(call_sid, action.recording_sid)

    def _record_outcome(
        self,
        call_sid: str,
        action: Action,
        info: RecordingInfo | None,
        error: ProviderError | None,
        actor: str,
    ) -> None:
        _, succeeded, failed = _EVENTS[action.kind]
        with unit_of_work(self.sessions) as session:
            call = find_call(session, call_sid, lock=True)
            assert call is not None
            recording_sid = info.sid if info else action.recording_sid
            if info is not None:
                recording = session.get(Recording, info.sid)
                if recording is None:
                    recording = new_recording(session, call, info.sid, str(info.status))
                elif recording.status not in ("completed", "absent", "failed"):
                    recording.status = str(info.status)
            detail: dict[str, object] = {"provider_status": str(info.status)} if info else {}
            if error is not None:
                detail = {
                    "error": str(error),
                    "status": error.status,
                    "code": error.code,
                    "transient": error.transient,
                }
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
            session.flush()
            call.recording = confirmed_state(call, recordings_of(session, call_sid))
            call.updated_at = utcnow()
