"""A call's facts for the engine, and the recording state the platform last confirmed."""

from __future__ import annotations

from collections.abc import Iterable

from app.recording_policy import CallFacts
from app.storage.models import Call, Recording


def facts_of(call: Call) -> CallFacts:
    return CallFacts(
        department=call.department,
        queued=call.queued,
        payment_in_progress=call.payment_in_progress,
        opted_out=call.opted_out,
        non_recorded_line=call.non_recorded_line,
        ended=call.ended,
        opt_out_stopped=call.opt_out_stopped,
    )


def confirmed_state(call: Call, recordings: Iterable[Recording]) -> str:
    """`recording` if any recording is running, else `paused` if one is paused, else `off`."""
    if call.ended:
        return "off"
    statuses = {r.status for r in recordings}
    if "in-progress" in statuses:
        return "recording"
    if "paused" in statuses:
        return "paused"
    return "off"
