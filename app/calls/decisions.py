"""Ask the pure engine about a call and remember the answer (audited when it changes)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.audit import log as audit
from app.calls.state import facts_of
from app.config import FailSafe as SettingsFailSafe
from app.recording_policy import Decision, FailSafe, Reason, decide
from app.runtime.metrics import DECISIONS
from app.storage.models import Call
from app.storage.policy_versions import ActivePolicy, active_policy


def redecide(
    session: Session,
    call: Call,
    active: ActivePolicy | None,
    fail_safe: SettingsFailSafe,
    actor: str,
) -> Decision:
    decision = decide(
        facts_of(call),
        active.policy if active else None,
        active.version if active else None,
        FailSafe(fail_safe.value),
    )
    if Reason.OPTED_OUT_STOP in decision.reasons:
        call.opt_out_stopped = True  # sticky: see CallFacts.opt_out_stopped
    reasons = [str(r) for r in decision.reasons]
    if (call.desired, call.reasons, call.policy_version) != (
        str(decision.state),
        reasons,
        decision.policy_version,
    ):
        DECISIONS.labels(str(decision.state), reasons[0]).inc()
        call.desired = str(decision.state)
        call.reasons = reasons
        call.policy_version = decision.policy_version
        audit.append(
            session,
            audit.EventType.DECISION,
            actor=actor,
            call_sid=call.call_sid,
            reasons=reasons,
            policy_version=decision.policy_version,
            detail={"desired": str(decision.state)},
        )
    return decision


def end_call(
    session: Session, call: Call, at: datetime, fail_safe: SettingsFailSafe, actor: str
) -> None:
    """The call is over (the platform reported its end, or refused a command as over): decided
    off (ended comes before everything, whatever the fail-safe), nothing left to start."""
    call.ended, call.ended_at = True, at
    call.start_pending_until = None
    redecide(session, call, active_policy(session), fail_safe, actor)
    call.recording = "off"
