"""The platform offers a call to a person: the call is assigned to them when callguard
knows them (an active user of that name), and the caller is put through either way."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.calls.controls import assign_call
from app.calls.events import PLATFORM
from app.calls.inputs import AssignmentOffered
from app.calls.store import claim_receipt, find_call, keep_response, stored_response
from app.storage.db import unit_of_work
from app.storage.models import Call, User

# Renders the platform's answer from the number the caller dialled (the caller ID of the
# leg to the person), or None when the call is unknown.
RenderAssignment = Callable[[str | None], str]


class Assignments:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def offered(self, event: AssignmentOffered, render: RenderAssignment) -> str:
        """The platform's answer, rendered once and stored: a repeated delivery gets it."""
        call_sid, delivery = event.call_sid, event.delivery
        with unit_of_work(self.sessions) as session:
            receipt = claim_receipt(session, delivery.key, delivery.token, "assignment", call_sid)
            if receipt is None:
                stored = stored_response(session, delivery.key, delivery.token)
                return stored if stored is not None else render(None)
            body = render(self._assign(session, event))
            keep_response(session, receipt, body)
        return body

    def _assign(self, session: Session, event: AssignmentOffered) -> str | None:
        call_sid, name = event.call_sid, event.person
        call = find_call(session, call_sid, lock=True) if call_sid else None
        if call is None:
            # Still connect the caller: a person waiting matters more than our bookkeeping.
            audit.append(
                session,
                audit.EventType.ASSIGNMENT_UNMATCHED,
                actor=PLATFORM,
                call_sid=call_sid or None,
                detail={"problem": "unknown call", "worker": name},
            )
            return None
        assign_named(session, call, name, source=event.source)
        return call.dialled_number


def assign_named(session: Session, call: Call, name: str | None, *, source: str) -> None:
    """Assign the call to the active person of that name, or log that none is."""
    user = session.scalars(select(User).where(User.name == name)).one_or_none() if name else None
    if user is None or user.disabled_at is not None:
        audit.append(
            session,
            audit.EventType.ASSIGNMENT_UNMATCHED,
            actor=PLATFORM,
            call_sid=call.call_sid,
            detail={"problem": "no such active person", "worker": name, "source": source},
        )
    else:
        assign_call(session, call, user.name, actor=PLATFORM, source=source)
