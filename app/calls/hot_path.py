"""The webhooks every call sends, without the ORM: callguard's hot path (issue 17).

A new call's first webhook is inserted in one statement: the hottest path callguard has.

Every call starts here, and its caller hears nothing until it answers. The general path
(CallEvents.arrived) creates the call row, loads it into the ORM locked, seals the number
on the object, and lets the ORM's flush write the changes back: three statements and the
ORM's unit of work for a row nobody else can yet know. Here, in the common case — a call
not seen before, routed to the menu or to a recorded department's notice, where nothing
is decided yet (the caller has not heard the notice) — the whole row is built first and
inserted once; if the call turns out to exist already (a repeated webhook under another
key, a call the platform told us of earlier), nothing is written and the general path
takes it. The INSERT goes to the driver (app/storage/driver.py: SQLAlchemy's processing of
a 28-column insert cost more than the database's work).

The platform's status reports of a live call (ringing, in progress: most of a call's
callbacks, each delivered more than once) move the same way: `progress` reads the call's
three ordering columns, decides stale or applied, and updates them, with no ORM object; a
report that ends the call ends it through the ORM (app/calls/decisions.py's end_call).

What the two paths write must stay the same: tests/api/test_hot_path.py compares the rows
and events of both, call for call.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.audit import log as audit
from app.callers.numbers import sealed_columns
from app.calls.answers import Answer, DepartmentNotice, Menu
from app.calls.inputs import CallArrived, CallProgressed
from app.calls.store import insert_call
from app.config import Settings
from app.routing.router import ToDepartment, ToMenu, route_inbound
from app.storage.driver import Sql, stored_time
from app.storage.models import utcnow
from app.storage.policy_versions import ActivePolicy

PLATFORM = "platform"
# Sent to the driver (app/storage/driver.py).
_ORDER = Sql(
    "SELECT status, status_sequence, ended FROM calls WHERE call_sid = :call_sid",
    postgresql_suffix=" FOR UPDATE",  # SQLite: BEGIN IMMEDIATE holds the one write lock
)
_MOVE = Sql(
    "UPDATE calls SET status = :status, status_sequence = :sequence, updated_at = :now"
    " WHERE call_sid = :call_sid"
)


def arrive_new(
    session: Session, event: CallArrived, active: ActivePolicy | None, settings: Settings
) -> Answer | None:
    """The caller's first answer, the call inserted whole with its events queued; None,
    having written nothing, when this is not a new call to the menu or to a recorded
    department's notice (the general path then takes it)."""
    if active is None or event.segment_sid is not None:
        return None
    dialled = event.dialled or None
    route = route_inbound(active.policy, dialled or "")
    answer: Answer
    if isinstance(route, ToMenu):
        department, answer = None, Menu(active.policy, 1, notice=True, offer_opt_out=True)
    elif isinstance(route, ToDepartment) and route.department.recorded:
        department, answer = route.department.id, DepartmentNotice(active.policy, 1)
    else:
        return None  # queued at once, which decides: the general path
    row = {"call_sid": event.call_sid, "dialled_number": dialled, "ivr_step": 1}
    row["department"] = department
    row |= sealed_columns(
        event.call_sid, event.caller, settings.number_key, settings.default_region
    )
    if not insert_call(session.connection(), row):
        return None  # the call exists: the general path locks and updates it
    for type_, detail in (
        (audit.EventType.CALL_STARTED, {"dialled": event.dialled, "direction": event.direction}),
        (audit.EventType.CALL_ROUTED, {"to": department or "menu"}),
    ):
        audit.append(
            session,
            type_,
            actor=PLATFORM,
            call_sid=event.call_sid,
            policy_version=active.version,
            detail=detail,
        )
    return answer


def stale(event: CallProgressed, status: str, sequence: int, ended: bool) -> bool:
    """A status the call has already passed (or an older sequence of the same one), or any
    report once the call has ended: recorded as ignored, never applied."""
    current = event.ranks.get(status, 0)
    return ended or event.rank < current or (event.rank == current and sequence >= event.sequence)


def ignored(session: Session, event: CallProgressed, current: str) -> None:
    audit.append(
        session,
        audit.EventType.CALL_STATUS_IGNORED,
        actor=PLATFORM,
        call_sid=event.call_sid,
        occurred_at=event.occurred_at,
        detail={"status": event.status, "sequence": event.sequence, "current": current},
    )


def applied(session: Session, event: CallProgressed) -> None:
    audit.append(
        session,
        audit.EventType.CALL_ENDED if event.ended else audit.EventType.CALL_STATUS,
        actor=PLATFORM,
        call_sid=event.call_sid,
        occurred_at=event.occurred_at,
        detail={"status": event.status, "sequence": event.sequence},
    )


def progress(session: Session, event: CallProgressed) -> None:
    """A live call's status report (not its end): the call created if unknown, then the
    report applied in order or recorded as stale."""
    connection = session.connection()
    insert_call(connection, {"call_sid": event.call_sid, "dialled_number": event.dialled or None})
    ((status, sequence, ended),) = _ORDER.run(connection, {"call_sid": event.call_sid}).fetchall()
    if stale(event, status, sequence, bool(ended)):
        ignored(session, event, status)
        return
    _MOVE.run(
        connection,
        {
            "call_sid": event.call_sid,
            "status": event.status,
            "sequence": event.sequence,
            "now": stored_time(connection, utcnow()),
        },
    )
    applied(session, event)
