"""Transfers: to another department, to the payment line, or to the non-recorded line.

The live call is redirected first (a Twilio call update to our transfer webhook); only
when the platform accepted the redirect do the call's facts change and the recordings
follow. A failed redirect leaves the call and its recording as they were, and says so."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app import audit
from app.calls.controls import CallControls, locked_call_for
from app.calls.platform import PLATFORM, PlatformEvents, Reply, required, transfer_key
from app.calls.reconcile import Reconciler, RetryPolicy, with_retries
from app.calls.store import claim_receipt, keep_response, lock_call, stored_response
from app.db import unit_of_work
from app.errors import BadRequest, Conflict, DomainError, Forbidden, Unavailable
from app.models import Call, User
from app.policy_store import active_policy
from app.providers.base import Provider, ProviderError
from app.routing import twiml
from app.users import Role

KINDS = ("department", "non_recorded", "payment", "payment_return")


class TransferFailed(DomainError):
    status = 502
    code = "transfer_failed"


class Transfers:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        provider: Provider,
        reconciler: Reconciler,
        controls: CallControls,
        platform: PlatformEvents,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.sessions = sessions
        self.provider = provider
        self.reconciler = reconciler
        self.controls = controls
        self.platform = platform
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

        return self._transfer(user, call_sid, "non_recorded", arrive, reason=reason.strip())

    def to_payment_line(self, user: User, call_sid: str) -> dict[str, Any]:
        """The payment line takes card details itself: pause (confirmed) before the call
        goes there; the payment ends when the call comes back from it."""
        self.controls.start_payment(user, call_sid, source="payment_line")
        try:
            return self._transfer(user, call_sid, "payment", lambda _s, _c: None)
        except TransferFailed:
            self.controls.end_payment(user, call_sid, source="payment_line_not_reached")
            raise

    def _transfer(
        self,
        user: User,
        call_sid: str,
        kind: str,
        arrive: Callable[[Session, Call], None],
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
        url = self.platform.url(
            "/webhooks/twilio/transfer",
            kind=kind,
            transfer=number,
            department=detail.get("department") or from_department or "",
        )
        try:
            with_retries(lambda: self.provider.redirect_call(call_sid, url), self.retry)
        except ProviderError as exc:
            with unit_of_work(self.sessions) as session:
                call = lock_call(session, call_sid)
                self._event(
                    session,
                    call,
                    user,
                    audit.EventType.TRANSFER_FAILED,
                    kind,
                    number,
                    {**detail, "error": str(exc), "status": exc.status, "code": exc.code},
                )
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
            self.platform.redecide(session, call, user.name)
        self.reconciler.reconcile(call_sid, user.name)
        return self.controls.view(call_sid)

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

    # -- the platform fetching the transferred call's TwiML -----------------------------

    def webhook(
        self, form: Mapping[str, str], kind: str, number: int, department: str, token: str | None
    ) -> Reply:
        call_sid = required(form, "CallSid")
        if kind not in KINDS:
            raise BadRequest(f"unknown transfer kind {kind!r}")
        key = transfer_key(call_sid, number, kind)
        with unit_of_work(self.sessions) as session:
            receipt = claim_receipt(session, key, token, "transfer", call_sid)
            if receipt is None:
                return Reply(stored_response(session, key, token), True)
            call = lock_call(session, call_sid)
            active = active_policy(session)
            if active is None:
                body = self.platform.fail_safe_twiml()
            elif kind == "non_recorded":
                body = twiml.dial(active.policy.non_recorded_line, preface=twiml.TRANSFERRING)
            elif kind == "payment":
                back = self.platform.url(
                    "/webhooks/twilio/transfer",
                    kind="payment_return",
                    transfer=number,
                    department=department,
                )
                body = twiml.dial(active.policy.payment_line, action=back)
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
                    self.platform.redecide(session, call, PLATFORM)
                body = self.platform.queue_twiml(call, department or call.department)
            keep_response(session, receipt, body)
        if kind == "payment_return":
            self.reconciler.reconcile_or_leave(call_sid, PLATFORM)
        return Reply(body)
