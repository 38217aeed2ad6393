"""Transfers: to another department, to the payment line, or to the non-recorded line.

The live call is moved first (the provider's transfer_call; the platform then reports
the new leg's arrival); only when the platform accepted the move do the call's facts
change and the recordings follow. A failed move leaves the call and its recording as they
were, and says so."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.audit import log as audit
from app.calls.answers import Answer, Dial, FailSafe
from app.calls.controls import CallControls, locked_call_for
from app.calls.events import PLATFORM, CallEvents, Render, Reply
from app.calls.inputs import TransferLegArrived
from app.calls.provider import (
    TRANSFER_KINDS,
    Provider,
    ProviderError,
    TransferLeg,
    TransferUnsupported,
)
from app.calls.reconcile import Reconciler, RetryPolicy, with_retries
from app.calls.store import claim_receipt, keep_response, lock_call, stored_response
from app.errors import BadRequest, Conflict, DomainError, Forbidden, Unavailable
from app.people.users import Role
from app.routing.prompts import TRANSFERRING
from app.storage.db import unit_of_work
from app.storage.models import Call, User
from app.storage.policy_versions import active_policy


class TransferFailed(DomainError):
    status = 502
    code = "transfer_failed"


class TransferNotHere(DomainError):
    """The platform cannot move the call for callguard: the detail says what a person
    does instead (at the platform), and nothing was changed."""

    status = 409
    code = "transfer_unsupported"


class Transfers:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: Provider,
        reconciler: Reconciler,
        controls: CallControls,
        events: CallEvents,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.sessions = sessions
        self.provider = provider
        self.reconciler = reconciler
        self.controls = controls
        self.events = events
        self.retry = retry or RetryPolicy()

    # -- people's actions ------------------------------------------------------------

    def to_department(self, user: User, call_sid: str, department_id: str) -> dict[str, Any]:
        with unit_of_work(self.sessions) as session:
            active = active_policy(session)
            if active is None:
                raise Unavailable("no valid policy is active: departments are unknown")
            department = active.policy.department(department_id)
            if department is None:
                raise BadRequest(f"no department {department_id!r} in policy {active.version}")

        def arrive(session: Session, call: Call) -> None:
            call.department = department_id
            call.agent = None  # waits in the new department's queue until assigned again
            call.payment_in_progress = False  # a payment does not follow the caller

        return self._transfer(user, call_sid, "department", arrive, department=department_id)

    def to_non_recorded_line(self, user: User, call_sid: str, reason: str) -> dict[str, Any]:
        if user.role == Role.AGENT:
            raise Forbidden("only a supervisor may move a call to the non-recorded line")
        if not reason.strip():
            raise BadRequest("a reason is required for the non-recorded line")

        def arrive(session: Session, call: Call) -> None:
            call.non_recorded_line = True  # sticky: nothing turns recording on again

        with unit_of_work(self.sessions) as session:
            active = active_policy(session)
            line = active.policy.non_recorded_line if active else ""
        return self._transfer(
            user, call_sid, "non_recorded", arrive, line=line, reason=reason.strip()
        )

    def to_payment_line(self, user: User, call_sid: str) -> dict[str, Any]:
        """The payment line takes card details itself: pause (confirmed) before the call
        goes there; the payment ends when the call comes back from it."""
        self.controls.start_payment(user, call_sid, source="payment_line")
        try:
            return self._transfer(user, call_sid, "payment", lambda _s, _c: None)
        except (TransferFailed, TransferNotHere):
            self.controls.end_payment(user, call_sid, source="payment_line_not_reached")
            raise

    def _transfer(
        self,
        user: User,
        call_sid: str,
        kind: str,
        arrive: Callable[[Session, Call], None],
        line: str = "",
        **detail: str,
    ) -> dict[str, Any]:
        with unit_of_work(self.sessions) as session:
            call = locked_call_for(session, user, call_sid)
            if kind == "department" and call.department == detail["department"]:
                raise Conflict(f"the call is already in {call.department}")
            if call.non_recorded_line and kind == "non_recorded":
                raise Conflict("the call is already on the non-recorded line")
            call.transfer_count += 1
            number = call.transfer_count
            self._event(
                session, call, user, audit.EventType.TRANSFER_REQUESTED, kind, number, detail
            )
            from_department = call.department
        leg = TransferLeg(kind, number, detail.get("department") or from_department or "", line)
        try:
            instruction = with_retries(
                lambda: self.provider.transfer_call(call_sid, leg), self.retry
            )
        except (ProviderError, TransferUnsupported) as exc:
            failure: dict[str, object] = {**detail, "error": str(exc)}
            if isinstance(exc, ProviderError):
                failure.update(status=exc.status, code=exc.code)
            with unit_of_work(self.sessions) as session:
                call = lock_call(session, call_sid)
                self._event(
                    session, call, user, audit.EventType.TRANSFER_FAILED, kind, number, failure
                )
            if isinstance(exc, TransferUnsupported):
                raise TransferNotHere(str(exc)) from None
            raise TransferFailed(
                f"the call was not transferred: it and its recording are as they were ({exc})"
            ) from None

        def apply(session: Session, call: Call) -> None:
            arrive(session, call)
            event = (
                audit.EventType.NON_RECORDED_TRANSFER
                if kind == "non_recorded"
                else audit.EventType.TRANSFERRED
            )
            self._event(session, call, user, event, kind, number, detail)

        with unit_of_work(self.sessions) as session:
            call = lock_call(session, call_sid)
            apply(session, call)
            self.events.redecide(session, call, user.name)
        self.reconciler.reconcile(call_sid, user.name)
        view = self.controls.view(call_sid)
        # The platform left the move itself to a person: say what they must now do.
        return {**view, "instruction": instruction} if instruction else view

    @staticmethod
    def _event(
        session: Session,
        call: Call,
        user: User,
        type_: audit.EventType,
        kind: str,
        number: int,
        detail: Mapping[str, object],
    ) -> None:
        audit.append(
            session,
            type_,
            actor=user.name,
            call_sid=call.call_sid,
            reasons=call.reasons,
            policy_version=call.policy_version,
            detail={"kind": kind, "transfer": number, "role": user.role, **detail},
        )

    # -- the platform reporting the moved call's new leg -------------------------------

    def leg_arrived(self, event: TransferLegArrived, render: Render) -> Reply:
        call_sid, kind, number, delivery = event.call_sid, event.kind, event.number, event.delivery
        if kind not in TRANSFER_KINDS:
            raise BadRequest(f"unknown transfer kind {kind!r}")
        with unit_of_work(self.sessions) as session:
            receipt = claim_receipt(session, delivery.key, delivery.token, "transfer", call_sid)
            if receipt is None:
                return Reply(stored_response(session, delivery.key, delivery.token), True)
            call = lock_call(session, call_sid)
            active = active_policy(session)
            answer: Answer
            if active is None:
                answer = FailSafe(self.events.fail_safe_records)
            elif kind == "non_recorded":
                answer = Dial(active.policy.non_recorded_line, preface=TRANSFERRING)
            elif kind == "payment":
                back = TransferLeg("payment_return", number, event.department)
                answer = Dial(active.policy.payment_line, returns=back)
            else:
                if kind == "payment_return" and call.payment_in_progress:
                    call.payment_in_progress = False
                    audit.append(
                        session,
                        audit.EventType.PAYMENT_ENDED,
                        actor=PLATFORM,
                        call_sid=call_sid,
                        policy_version=call.policy_version,
                        detail={"source": "payment_line", "transfer": number},
                    )
                    self.events.redecide(session, call, PLATFORM)
                answer = self.events.queue_answer(call, event.department or call.department)
            body = render(answer)
            keep_response(session, receipt, body)
        if kind == "payment_return":
            self.reconciler.reconcile_or_leave(call_sid, PLATFORM)
        return Reply(body)
