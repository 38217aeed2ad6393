"""The recording decision (P1-P7): a pure function of a call's facts and one policy."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from .model import OptOutAction, Policy


class FailSafe(StrEnum):
    NO_RECORD = "no-record"
    RECORD = "record"


class DesiredState(StrEnum):
    RECORDING = "recording"
    PAUSED = "paused"
    OFF = "off"


class Reason(StrEnum):
    """Reason codes; the README documents them, so the values must not change."""

    CALL_ENDED = "call_ended"
    NON_RECORDED_LINE = "non_recorded_line"
    OPTED_OUT_STOP = "opted_out_stop"
    OPTED_OUT_ADVISE_EMAIL = "opted_out_advise_email"  # informational: recording continues
    PAYMENT_IN_PROGRESS = "payment_in_progress"
    DEPARTMENT_RECORDED = "department_recorded"
    DEPARTMENT_NOT_RECORDED = "department_not_recorded"
    UNKNOWN_DEPARTMENT = "unknown_department"  # id not in this policy version
    NOT_YET_QUEUED = "not_yet_queued"  # notice/IVR not finished: never record yet
    NO_POLICY = "no_policy"
    FAIL_SAFE_NO_RECORD = "fail_safe_no_record"
    FAIL_SAFE_RECORD = "fail_safe_record"


@dataclass(frozen=True)
class CallFacts:
    department: str | None = None  # where the call is now (after a transfer: the target)
    queued: bool = False  # notice played, opt-out offered, call put in the department's queue
    payment_in_progress: bool = False  # agent paused for payment, or call is on the payment line
    opted_out: bool = False  # caller asked not to be recorded (IVR digit or agent)
    non_recorded_line: bool = False  # supervisor moved the call there; never undone
    ended: bool = False
    # An opt-out that once stopped recording keeps it stopped, even after a transfer to a
    # department whose action would be advise_email (set from an earlier decision).
    opt_out_stopped: bool = False


@dataclass(frozen=True)
class Decision:
    state: DesiredState
    reasons: tuple[Reason, ...]  # the decisive reason first
    policy_version: int | None


def decide(
    facts: CallFacts, policy: Policy | None, policy_version: int | None, fail_safe: FailSafe
) -> Decision:
    """Precedence (P6): ended > non-recorded line > not queued > opt-out(stop) > payment >
    department rule; without a policy the fail-safe (P7) replaces the department rule."""

    def off(*reasons: Reason) -> Decision:
        return Decision(DesiredState.OFF, reasons, policy_version)

    if facts.ended:
        return off(Reason.CALL_ENDED)
    if facts.non_recorded_line:
        return off(Reason.NON_RECORDED_LINE)
    # Nothing is recorded before the notice was played and opt-out offered,
    # whatever the fail-safe says. Without a policy no department can be known:
    # the fail-safe queue is enough.
    if not facts.queued or (facts.department is None and policy is not None):
        return off(Reason.NOT_YET_QUEUED)
    if facts.opt_out_stopped:
        return off(Reason.OPTED_OUT_STOP)

    if policy is None:
        # The department's opt-out action is unknown: take the one that stops.
        if facts.opted_out:
            return off(Reason.OPTED_OUT_STOP, Reason.NO_POLICY)
        if facts.payment_in_progress:
            return Decision(
                DesiredState.PAUSED, (Reason.PAYMENT_IN_PROGRESS, Reason.NO_POLICY), policy_version
            )
        if fail_safe is FailSafe.RECORD:
            return Decision(
                DesiredState.RECORDING, (Reason.FAIL_SAFE_RECORD, Reason.NO_POLICY), policy_version
            )
        return off(Reason.FAIL_SAFE_NO_RECORD, Reason.NO_POLICY)

    assert facts.department is not None  # checked with the queue above
    department = policy.department(facts.department)
    # P6: an opt-out whose action is stop outranks the department rule, so it is the
    # decisive reason (and stays in force after a transfer) even where nothing records.
    # An unknown department's action is unknown: take the one that stops.
    if facts.opted_out and (department is None or department.opt_out is OptOutAction.STOP):
        return off(Reason.OPTED_OUT_STOP)
    if department is None:
        return off(Reason.UNKNOWN_DEPARTMENT)
    if not department.recorded:
        return off(Reason.DEPARTMENT_NOT_RECORDED)

    # Only advise_email opt-outs reach here: recording continues, the agent is told.
    advised = (Reason.OPTED_OUT_ADVISE_EMAIL,) if facts.opted_out else ()
    if facts.payment_in_progress:
        return Decision(DesiredState.PAUSED, (Reason.PAYMENT_IN_PROGRESS, *advised), policy_version)
    return Decision(DesiredState.RECORDING, (Reason.DEPARTMENT_RECORDED, *advised), policy_version)
