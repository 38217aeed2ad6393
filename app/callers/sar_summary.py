"""summary.html of a subject-access bundle: the export (app/callers/subject_access.py) in
plain words for the caller — printable, inline CSS, no script, no reason codes.

Written call by call to a text stream, so a long history is never one string in memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any, TextIO

from app.recording_policy.engine import Reason
from app.recording_policy.wording import REASON_TEXT

# Reasons that say nothing about why a call was or was not recorded.
_NOISE = {Reason.CALL_ENDED.value, Reason.NOT_YET_QUEUED.value}

_PURPOSES = {
    "quality_monitoring": "checking the quality of our service",
    "complaint": "looking into a complaint",
    "crime_prevention": "preventing or detecting crime",
    "staff_safety": "the safety of our staff",
    "subject_access": "answering a request for your information",
}

_STYLE = """
body { font: 11pt/1.45 Georgia, "Times New Roman", serif; color: #111; max-width: 46em;
  margin: 2em auto; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: .2em; }
h2 { font-size: 1.25em; border-bottom: 1px solid #999; padding-bottom: .15em; margin-top: 2em; }
h3 { font-size: 1.05em; margin: 1.2em 0 .3em; }
dl { display: grid; grid-template-columns: 12em 1fr; gap: .2em 1em; margin: .3em 0; }
dt { font-weight: bold; }
dd { margin: 0; }
ul { margin: 0; padding-left: 1.2em; }
.gone { font-style: italic; }
@media print { body { margin: 0; max-width: none; } section, .recording {
  break-inside: avoid; } }
"""


@dataclass(frozen=True)
class Audio:
    """What became of one recording's audio in this bundle."""

    file: str | None  # its name in the ZIP, or None when there is no audio to give
    missing: str | None = None  # why not, in words
    gone: bool = False  # the platform lost it before its destruction date


def when(text: str | None) -> str:
    """An ISO-8601 moment as a person writes it: 2 December 2026 at 00:31 UTC."""
    if not text:
        return "not known"
    moment = datetime.fromisoformat(text)
    return f"{moment.day} {moment:%B %Y} at {moment:%H:%M} UTC"


def _day(text: str | None) -> str:
    return when(text).split(" at ")[0]


def reasons_in_words(codes: list[str]) -> list[str]:
    """Each distinct reason once, in words; an unknown code is left out, never shown raw."""
    words: list[str] = []
    for code in codes:
        if code in _NOISE or code not in REASON_TEXT:
            continue
        text = REASON_TEXT[Reason(code)]
        if text not in words:
            words.append(text)
    return words


def _dl(rows: list[tuple[str, str]]) -> str:
    """Rows of (label, HTML already escaped)."""
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in rows) + "</dl>"


def _ul(items: list[str]) -> str:
    return "<ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _destruction(recording: dict[str, Any], audio: Audio) -> str:
    if recording["destroyed_at"]:
        return f"Destroyed on {escape(_day(recording['destroyed_at']))}."
    active = [h for h in recording["holds"] if h["active"]]
    due = recording["destroy_after"]
    if audio.gone:
        planned = f" on or after {escape(_day(due))}" if due else ""
        return f"The audio no longer exists; it was due to be destroyed{planned}."
    if not due:
        return "A date will be set when the recording is complete."
    text = f"To be destroyed on or after {escape(_day(due))}."
    if active:
        text += " It is being kept beyond that date while a legal hold (below) is in place."
    return text


def _hold(hold: dict[str, Any]) -> str:
    text = (
        f"Kept for investigation {escape(hold['case_reference'])} from "
        f"{escape(when(hold['placed_at']))}, because: {escape(hold['reason'])}"
    )
    if hold["released_at"]:
        text += f". The hold ended on {escape(when(hold['released_at']))}."
    return text


def _disclosure(disclosure: dict[str, Any]) -> str:
    return (
        f"Shared with {escape(disclosure['recipient'])} on "
        f"{escape(when(disclosure['disclosed_at']))} under data sharing agreement "
        f"{escape(disclosure['agreement_reference'])}"
        + (
            f"; legal basis: {escape(disclosure['legal_basis'])}"
            if disclosure["legal_basis"]
            else ""
        )
    )


def _access(access: dict[str, Any]) -> str:
    purpose = _PURPOSES.get(access["purpose"], "another purpose the privacy notice names")
    return f"Opened on {escape(when(access['accessed_at']))} for {escape(purpose)}"


def _recording(recording: dict[str, Any], audio: Audio) -> str:
    if audio.file:
        audio_text = f"In this bundle as <code>{escape(audio.file)}</code>."
    else:
        audio_text = f'<span class="gone">{escape(audio.missing or "Not available.")}</span>'
    rows = [
        ("Started", escape(when(recording["started_at"]))),
        ("Audio", audio_text),
        ("Destruction", _destruction(recording, audio)),
    ]
    if recording["holds"]:
        rows.append(("Legal holds", _ul([_hold(h) for h in recording["holds"]])))
    if recording["disclosures"]:
        rows.append(("Shared", _ul([_disclosure(d) for d in recording["disclosures"]])))
    if recording["accesses"]:
        rows.append(("Listened to", _ul([_access(a) for a in recording["accesses"]])))
    return (
        f'<div class="recording"><h3>Recording {escape(recording["recording_sid"])}</h3>'
        f"{_dl(rows)}</div>"
    )


def _told(notification: dict[str, Any]) -> str:
    if notification["pending"]:
        return (
            "We are to tell you that a recording of this call is being kept for an investigation."
        )
    return (
        f"We told you on {escape(when(notification['told_at']))} "
        f"({escape(notification['method'] or 'method not recorded')}) that a recording of "
        "this call was being kept for an investigation."
    )


def _call(call: dict[str, Any], audio: dict[str, Audio], names: dict[str, str]) -> str:
    recordings = call["recordings"]
    codes = list(call["reasons"])
    for event in call["events"]:
        codes.extend(event["reasons"])
    why = reasons_in_words(codes)
    department = call["department"]
    rows = [
        ("Ended", escape(when(call["ended_at"])) if call["ended_at"] else "still in progress"),
        ("Department", escape(names.get(department, department)) if department else "not chosen"),
        ("Number called", escape(call["dialled_number"] or "not known")),
        ("Recorded", f"Yes ({len(recordings)} recording(s))" if recordings else "No"),
    ]
    if why:
        rows.append(("Why", _ul([escape(w[0].upper() + w[1:]) for w in why])))
    if call["notifications"]:
        rows.append(("Telling you", _ul([_told(n) for n in call["notifications"]])))
    parts = [f"<section><h2>Call on {escape(when(call['started_at']))}</h2>", _dl(rows)]
    parts.extend(_recording(r, audio[r["recording_sid"]]) for r in recordings)
    parts.append("</section>\n")
    return "".join(parts)


def write_summary(
    out: TextIO, export: dict[str, Any], audio: dict[str, Audio], names: dict[str, str]
) -> None:
    """`audio`: for every recording in the export, what the bundle holds of it; `names`:
    departments' names by id."""
    calls = export["calls"]
    recordings = sum(len(c["recordings"]) for c in calls)
    given = sum(1 for a in audio.values() if a.file)
    phone = escape(export["phone"])
    out.write(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>Calls from {phone}: what we hold</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>Calls from {phone}: what we hold</h1>\n"
        f"<p>Prepared on {escape(when(export['generated_at']))}. This lists every call we "
        "hold from this number, whether it was recorded and why, who a recording was shared "
        "with, and when each recording will be (or was) destroyed. The recordings that still "
        "exist are in this bundle's <code>recordings</code> folder; "
        "<code>subject-access.json</code> holds the same information for a computer.</p>\n"
        f"<p>{len(calls)} call(s), {recordings} recording(s), {given} of them with audio in "
        "this bundle.</p>\n"
    )
    if not calls:
        out.write("<p>We hold no calls from this number.</p>\n")
    for call in calls:
        out.write(_call(call, audio, names))
    out.write("</body></html>\n")
