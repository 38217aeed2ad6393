"""Replaying journalled webhooks into the database, through the same dedupe keys."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import structlog
from sqlalchemy.exc import DataError

from app.calls.assignment import Assignments
from app.calls.journal import Entry, Journal
from app.calls.platform import PlatformEvents, ivr_key, required, transfer_key, voice_key
from app.errors import DomainError

log = structlog.get_logger(__name__)


class Replayer:
    def __init__(
        self, journal: Journal, platform: PlatformEvents, assignments: Assignments
    ) -> None:
        self.journal = journal
        self.platform = platform
        self.assignments = assignments

    def run_once(self) -> int:
        """Replay the backlog; a database error stops it (kept for the next run)."""
        if not self.journal.backlog():
            return 0
        replayed = self.journal.replay(self.apply)
        if replayed:
            log.info("journal_replayed", entries=replayed)
        return replayed

    def apply(self, entry: Entry) -> None:
        url = urlsplit(entry.path)
        query = dict(parse_qsl(url.query))
        form, token = entry.form, entry.token
        received = datetime.fromtimestamp(entry.received_at_ns / 1e9, UTC)
        try:
            match url.path.removeprefix("/webhooks/twilio/"):
                case "call-status":
                    self.platform.call_status(form, token)
                case "recording-status":
                    self.platform.recording_status(form, token)
                case "assignment":
                    self.assignments.handle(form, token)
                case "voice":
                    key = voice_key(required(form, "CallSid"))
                    self.platform.replay_fail_safe(form, key, "voice", received)
                case "ivr":
                    key = ivr_key(required(form, "CallSid"), int(query.get("step", "1")))
                    self.platform.replay_fail_safe(form, key, "ivr", received)
                case "transfer":
                    key = transfer_key(
                        required(form, "CallSid"),
                        int(query.get("transfer", "1")),
                        query.get("kind", "department"),
                    )
                    self.platform.replay_fail_safe(form, key, "transfer", received)
                case other:
                    log.warning("journal_entry_unknown_path", path=other, entry=entry.name)
        except (DomainError, ValueError, DataError) as exc:
            # Malformed, or a value the database cannot hold: refused live too. Dropped
            # (and logged) rather than blocking every entry behind it.
            log.warning("journal_entry_refused", entry=entry.name, error=str(exc))
