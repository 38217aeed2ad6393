"""Where an inbound call goes, and what an IVR key press means. Pure: no I/O, no clock."""

from __future__ import annotations

from dataclasses import dataclass

from app.recording_policy import Department, Policy

MAX_MENU_ATTEMPTS = 3


@dataclass(frozen=True)
class ToMenu:
    """A main number (or an unknown one): notice, then the department menu."""


@dataclass(frozen=True)
class ToDepartment:
    department: Department


@dataclass(frozen=True)
class OptOut:
    """The caller pressed the opt-out digit."""


@dataclass(frozen=True)
class Retry:
    """Nothing valid pressed: ask again."""


Inbound = ToMenu | ToDepartment
Choice = ToDepartment | OptOut | Retry


def route_inbound(policy: Policy, dialled: str) -> Inbound:
    department = policy.department_for_number(dialled)
    if department is not None and not policy.is_main_number(dialled):
        return ToDepartment(department)
    return ToMenu()


def choose(
    policy: Policy, digits: str | None, preset: str | None, attempt: int, opted_out: bool
) -> Choice:
    """Interpret a key press at IVR `attempt` (1-based).

    With a preset department (the number dialled was the department's), anything but the
    opt-out digit sends the call on to that queue. From the menu, after MAX_MENU_ATTEMPTS
    without a valid choice the caller goes to the policy's fallback department rather
    than being cut off.
    """
    if digits == policy.opt_out_digit and not opted_out:
        return OptOut()
    if preset is not None:
        department = policy.department(preset)
        if department is not None:
            return ToDepartment(department)
    chosen = policy.department_for_digit(digits) if digits else None
    if chosen is not None:
        return ToDepartment(chosen)
    if attempt >= MAX_MENU_ATTEMPTS:
        fallback = policy.department(policy.fallback_department)
        assert fallback is not None  # the policy validates that it exists
        return ToDepartment(fallback)
    return Retry()
