"""What the caller hears next, in callguard's own words: the call-control service decides
it, the platform package renders it in its own form (XML, a flow's flat JSON answer…).
What is spoken comes from app/routing/prompts.py, the same on every platform."""

from __future__ import annotations

from dataclasses import dataclass

from app.calls.provider import TransferLeg
from app.recording_policy import Policy


@dataclass(frozen=True)
class Menu:
    """Speak `preface`, then offer the menu for step `step`: the recording notice first when
    `notice` (with the opt-out offer), else the opt-out offer alone when `offer_opt_out`. The
    platform sends the choice (or a timeout) back as MenuAnswered for `step`."""

    policy: Policy
    step: int
    notice: bool
    offer_opt_out: bool
    preface: tuple[str, ...] = ()


@dataclass(frozen=True)
class DepartmentNotice:
    """A recorded department dialled directly: the notice and opt-out offer, then step
    `step` (one key or a timeout) decides."""

    policy: Policy
    step: int


@dataclass(frozen=True)
class Queue:
    """Put the caller in the department's queue (the fallback queue when None)."""

    department: str | None
    call_sid: str
    recorded: bool
    preface: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dial:
    """Put the caller through to another line (the non-recorded phone, the payment line);
    with `returns`, the platform reports that leg when the caller comes back."""

    number: str
    preface: tuple[str, ...] = ()
    returns: TransferLeg | None = None


@dataclass(frozen=True)
class FailSafe:
    """callguard cannot decide (no database, no valid policy): the caller still reaches a
    person in the fallback queue, recorded only when `record` (CALLGUARD_FAIL_SAFE)."""

    record: bool


Answer = Menu | DepartmentNotice | Queue | Dial | FailSafe
FALLBACK_QUEUE = "callguard-fallback"
