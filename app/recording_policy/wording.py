"""Reason codes in words, for people (the console): what an agent reads on a call."""

from __future__ import annotations

from .engine import Reason

REASON_TEXT: dict[Reason, str] = {
    Reason.CALL_ENDED: "the call has ended",
    Reason.NON_RECORDED_LINE: "moved to the non-recorded line by a supervisor",
    Reason.OPTED_OUT_STOP: "the caller asked not to be recorded",
    Reason.OPTED_OUT_ADVISE_EMAIL: (
        "the caller asked not to be recorded: this department advises contact by email"
    ),
    Reason.PAYMENT_IN_PROGRESS: "a card payment is being taken",
    Reason.DEPARTMENT_RECORDED: "calls to this department are recorded",
    Reason.DEPARTMENT_NOT_RECORDED: "calls to this department are not recorded",
    Reason.UNKNOWN_DEPARTMENT: "the department is not in the active policy",
    Reason.NOT_YET_QUEUED: "the caller is still hearing the notice and menu",
    Reason.NO_POLICY: "no recording policy is active",
    Reason.FAIL_SAFE_NO_RECORD: "no decision could be made, so nothing is recorded (fail-safe)",
    Reason.FAIL_SAFE_RECORD: "no decision could be made, so the call is recorded (fail-safe)",
}
