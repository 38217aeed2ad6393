"""A new call's first webhook, in one INSERT: the hottest path callguard has.

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

What the two paths write must stay the same: tests/api/test_arrival.py compares the rows
and events of both, call for call.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.audit import log as audit
from app.callers.numbers import sealed_columns
from app.calls.answers import Answer, DepartmentNotice, Menu
from app.calls.inputs import CallArrived
from app.config import Settings
from app.routing.router import ToDepartment, ToMenu, route_inbound
from app.storage.driver import NewRow
from app.storage.models import Call, table_of
from app.storage.policy_versions import ActivePolicy

PLATFORM = "platform"
_NEW_CALL = NewRow(table_of(Call), "call_sid")  # sent to the driver: app/storage/driver.py


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
    if not _NEW_CALL.run(session.connection(), row):
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
