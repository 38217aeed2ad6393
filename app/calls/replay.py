"""Replaying journalled webhooks into the database once it is back. Each entry is applied
by the platform package that journalled it (it alone can read its own payloads), through
the same dedupe keys as live, so an entry applied just before a crash is a duplicate."""

from __future__ import annotations

from collections.abc import Callable

import structlog
from sqlalchemy.exc import DataError

from app.calls.journal import Entry, Journal
from app.errors import DomainError

log = structlog.get_logger(__name__)


class Replayer:
    def __init__(self, journal: Journal, apply: Callable[[Entry], None]) -> None:
        self.journal = journal
        self._apply = apply

    def run_once(self) -> int:
        """Replay the backlog; a database error stops it (kept for the next run)."""
        if not self.journal.backlog():
            return 0
        replayed = self.journal.replay(self.apply)
        if replayed:
            log.info("journal_replayed", entries=replayed)
        return replayed

    def apply(self, entry: Entry) -> None:
        try:
            self._apply(entry)
        except (DomainError, ValueError, DataError) as exc:
            # Malformed, or a value the database cannot hold: refused live too. Dropped
            # (and logged) rather than blocking every entry behind it.
            log.warning("journal_entry_refused", entry=entry.name, error=str(exc))
