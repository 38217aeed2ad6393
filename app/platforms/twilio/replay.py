"""Twilio webhooks journalled while the database was down, applied once it is back through
their usual dedupe keys. A caller-facing one was already answered with the fail-safe
TwiML: what happened is recorded (and an opt-out key press honoured), not answered again."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import structlog

from app.calls.journal import Entry
from app.platforms.twilio import forms
from app.platforms.twilio.answers import assignment_instruction
from app.runtime.services import Services

log = structlog.get_logger(__name__)


def replay(services: Services, entry: Entry) -> None:
    url = urlsplit(entry.path)
    query = dict(parse_qsl(url.query))
    form, token = entry.form, entry.token
    received = datetime.fromtimestamp(entry.received_at_ns / 1e9, UTC)
    calls = services.calls
    match url.path.removeprefix("/webhooks/twilio/"):
        case "call-status":
            calls.progressed(forms.call_status(form, token))
        case "recording-status":
            calls.recording_reported(forms.recording_status(form, token))
        case "assignment":
            offer, worker = forms.assignment(form, token)
            services.assignments.offered(offer, assignment_instruction(worker))
        case "voice":
            arrived = forms.voice(form, token)
            calls.replay_fail_safe(
                arrived.call_sid,
                arrived.dialled,
                None,
                arrived.delivery.key,
                "voice",
                received,
            )
        case "ivr":
            answered = forms.ivr(form, int(query.get("step", "1")), token)
            calls.replay_fail_safe(
                answered.call_sid,
                forms.dialled_number(form),
                answered.digits,
                answered.delivery.key,
                "ivr",
                received,
            )
        case "transfer":
            leg = forms.transfer(
                form,
                query.get("kind", "department"),
                int(query.get("transfer", "1")),
                query.get("department", ""),
                token,
            )
            calls.replay_fail_safe(
                leg.call_sid,
                forms.dialled_number(form),
                None,
                leg.delivery.key,
                "transfer",
                received,
            )
        case other:
            log.warning("journal_entry_unknown_path", path=other, entry=entry.name)
