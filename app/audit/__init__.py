"""The audit log: append-only in code (there is no update or delete function here)."""

from app.audit.log import EventType, append, events_for

__all__ = ["EventType", "append", "events_for"]
