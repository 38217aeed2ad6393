"""Shared by the fuzz tests: how many examples, and what the database holds.

CALLGUARD_FUZZ_EXAMPLES (default 50, the quick mode CI runs; 500 for the full mode) is read
at import: the suite's autouse fixture clears CALLGUARD_* variables before each test."""

from __future__ import annotations

import os

from sqlalchemy import func, select

from app.runtime.services import Services
from app.storage.models import AuditEvent, Call, Recording, WebhookReceipt

EXAMPLES = int(os.environ.get("CALLGUARD_FUZZ_EXAMPLES", "50"))


def row_counts(services: Services) -> dict[str, int]:
    """Rows in every table a webhook or an action could write to, and journal entries."""
    with services.sessions() as session:
        counts = {
            model.__tablename__: session.scalar(select(func.count()).select_from(model)) or 0
            for model in (Call, Recording, WebhookReceipt, AuditEvent)
        }
    counts["journal"] = services.journal.backlog()
    return counts
