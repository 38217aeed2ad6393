"""What agents and supervisors do to a live call: pause for payment, record an opt-out,
assign. Each records a fact, asks the engine, and reconciles the platform; the person is
the actor of every event it causes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.calls import views
from app.calls.decisions import redecide
from app.calls.locks import CallBusy
from app.calls.reconcile import Plan, Reconciler
from app.calls.store import recordings_of
from app.config import Settings
from app.errors import BadRequest, Conflict, DomainError
from app.people.users import Role
from app.recording_policy import Reason
from app.runtime.metrics import PAUSE_ROUND_TRIP
from app.storage.db import unit_of_work
from app.storage.models import Call, User
from app.storage.policy_versions import active_policy, policy_version

PAUSE_NOT_CONFIRMED = "NOT paused — do not take card details"


class PauseNotConfirmed(DomainError):
    """CONTRACT.md's answer to a pause that is not confirmed, whatever the cause; a call
    busy with another change adds `"busy": true` and Retry-After (try again shortly)."""

    status = 503
    code = "pause_not_confirmed"

    def __init__(self, *, busy: bool = False) -> None:
        super().__init__(PAUSE_NOT_CONFIRMED, confirmed=False, **({"busy": True} if busy else {}))
        if busy:
            self.headers["Retry-After"] = "1"


def locked_call_for(session: Session, user: User, call_sid: str) -> Call:
    """The call, row-locked, if this person may act on it (same 404 otherwise)."""
    call = views.call_for(session, user, call_sid, lock=True)
    if call.ended:
        raise Conflict(f"call {call_sid} has ended")
    return call


class CallControls:
    def __init__(
        self, settings: Settings, sessions: sessionmaker[Session], reconciler: Reconciler
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.reconciler = reconciler

    def change(
        self,
        user: User,
        call_sid: str,
        apply: Callable[[Session, Call], None],
    ) -> None:
        """Record a fact and the decision it leads to, in one transaction, then bring the
        platform to it (Reconciler.changed: planned in that transaction when the call's
        lock is free; CallBusy, the fact kept, when another change holds it too long)."""

        def record(plan: Plan) -> None:
            with unit_of_work(self.sessions) as session:
                call = locked_call_for(session, user, call_sid)
                apply(session, call)
                redecide(session, call, active_policy(session), self.settings.fail_safe, user.name)
                plan(session, call)

        self.reconciler.changed(call_sid, user.name, record, leave_if_busy=False)

    def view(self, call_sid: str) -> dict[str, Any]:
        with unit_of_work(self.sessions) as session:
            call = session.get(Call, call_sid)
            assert call is not None
            return views.call_object(call)

    # -- payment ---------------------------------------------------------------------

    def start_payment(self, user: User, call_sid: str, source: str = "agent") -> dict[str, Any]:
        """Pause for payment. Confirmed only when the platform has confirmed that no
        recording of the call is running; otherwise PauseNotConfirmed (503)."""

        def apply(session: Session, call: Call) -> None:
            if not call.payment_in_progress:
                call.payment_in_progress = True
                self._event(session, call, user, audit.EventType.PAYMENT_STARTED, source=source)

        started = time.perf_counter()
        busy = False
        try:
            self.change(user, call_sid, apply)
        except CallBusy:
            # Another change holds the call: its reconcile plans from our fact too, so the
            # pause may be confirmed all the same; if not, the answer says busy.
            busy = True
        with unit_of_work(self.sessions) as session:
            running = [r for r in recordings_of(session, call_sid) if r.status == "in-progress"]
            call = session.get(Call, call_sid)
            assert call is not None
            if running or not call.payment_in_progress:
                # Not paused — or the payment was ended meanwhile: never claim a pause.
                audit.append(
                    session,
                    audit.EventType.PAYMENT_PAUSE_UNCONFIRMED,
                    actor=user.name,
                    call_sid=call_sid,
                    reasons=call.reasons,
                    policy_version=call.policy_version,
                    detail={"running": [r.recording_sid for r in running], "busy": busy},
                )
                unconfirmed = True
            else:
                unconfirmed = False
                result = {**views.call_object(call), "confirmed": True}
        PAUSE_ROUND_TRIP.labels(str(not unconfirmed).lower()).observe(time.perf_counter() - started)
        if unconfirmed:
            raise PauseNotConfirmed(busy=busy)
        return result

    def end_payment(self, user: User, call_sid: str, source: str = "agent") -> dict[str, Any]:
        """Payment over: recording resumes only if the policy still says record."""

        def apply(session: Session, call: Call) -> None:
            if call.payment_in_progress:
                call.payment_in_progress = False
                self._event(session, call, user, audit.EventType.PAYMENT_ENDED, source=source)

        self.change(user, call_sid, apply)
        return self.view(call_sid)

    # -- opt-out ---------------------------------------------------------------------

    def opt_out(self, user: User, call_sid: str) -> dict[str, Any]:
        """The caller asked not to be recorded: the department's policy says what happens."""

        def apply(session: Session, call: Call) -> None:
            if not call.opted_out:
                call.opted_out = True
                self._event(session, call, user, audit.EventType.OPT_OUT_REQUESTED, source="agent")

        self.change(user, call_sid, apply)
        with unit_of_work(self.sessions) as session:
            call = session.get(Call, call_sid)
            assert call is not None
            result = views.call_object(call)
            # The engine's reasons say which action the department's policy took.
            if Reason.OPTED_OUT_ADVISE_EMAIL not in call.reasons:
                return {**result, "action": "stopped"}
            policy = policy_version(session, call.policy_version) if call.policy_version else None
            department = policy.department(call.department) if policy and call.department else None
        email = department.email if department else None
        return {**result, "action": "advise_email", "email": email}

    # -- assignment ------------------------------------------------------------------

    def assign(self, user: User, call_sid: str, agent_name: str) -> dict[str, Any]:
        with unit_of_work(self.sessions) as session:
            agent = session.scalars(select(User).where(User.name == agent_name)).one_or_none()
            if agent is None or agent.disabled_at is not None:
                raise BadRequest(f"no active user named {agent_name!r}")
            if agent.role not in (Role.AGENT, Role.SUPERVISOR):
                raise BadRequest(f"{agent_name} is not an agent or supervisor")
            call = locked_call_for(session, user, call_sid)
            assign_call(session, call, agent.name, actor=user.name, source="supervisor")
            return views.call_object(call)

    @staticmethod
    def _event(
        session: Session, call: Call, user: User, type_: audit.EventType, **detail: object
    ) -> None:
        audit.append(
            session,
            type_,
            actor=user.name,
            call_sid=call.call_sid,
            policy_version=call.policy_version,
            detail={"role": user.role, **detail},
        )


def assign_call(session: Session, call: Call, agent: str, *, actor: str, source: str) -> None:
    if call.agent == agent:
        return
    previous, call.agent = call.agent, agent
    audit.append(
        session,
        audit.EventType.CALL_ASSIGNED,
        actor=actor,
        call_sid=call.call_sid,
        policy_version=call.policy_version,
        detail={"agent": agent, "previous": previous, "source": source},
    )
