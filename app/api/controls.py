"""The people's call controls: pause for payment, opt-out, transfers, assignment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.api.deps import CallActor, ServicesDep, Sid, SupervisorPlus
from app.api.errors import ErrorBody, error_responses

router = APIRouter(
    prefix="/api/v1/calls/{call_sid}",
    tags=["call controls"],
    responses=error_responses(400, 401, 403, 404, 409, 413, 422, 429, 502, 503),
)


class TransferRequest(BaseModel):
    """One of: a department id; the non-recorded line (supervisors, with a reason); the
    payment line."""

    model_config = ConfigDict(extra="forbid")

    department: str | None = Field(default=None, min_length=1, max_length=64)
    non_recorded_line: bool = False
    reason: str | None = Field(default=None, max_length=1000)
    payment_line: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> TransferRequest:
        targets = [self.department is not None, self.non_recorded_line, self.payment_line]
        if sum(targets) != 1:
            raise ValueError("give exactly one of department, non_recorded_line, payment_line")
        if self.non_recorded_line and not (self.reason and self.reason.strip()):
            raise ValueError("reason is required for the non-recorded line")
        return self


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent: str = Field(min_length=1, max_length=100)


@router.post(
    "/payment/start",
    responses={503: {"model": ErrorBody, "description": "NOT paused — do not take card details"}},
)
def start_payment(call_sid: Sid, user: CallActor, services: ServicesDep) -> dict[str, Any]:
    return services.controls.start_payment(user, call_sid)


@router.post("/payment/end")
def end_payment(call_sid: Sid, user: CallActor, services: ServicesDep) -> dict[str, Any]:
    return services.controls.end_payment(user, call_sid)


@router.post("/opt-out")
def opt_out(call_sid: Sid, user: CallActor, services: ServicesDep) -> dict[str, Any]:
    return services.controls.opt_out(user, call_sid)


@router.post("/transfer")
def transfer(
    call_sid: Sid, body: TransferRequest, user: CallActor, services: ServicesDep
) -> dict[str, Any]:
    transfers = services.transfers
    if body.non_recorded_line:
        return transfers.to_non_recorded_line(user, call_sid, body.reason or "")
    if body.payment_line:
        return transfers.to_payment_line(user, call_sid)
    assert body.department is not None
    return transfers.to_department(user, call_sid, body.department)


@router.post("/assign")
def assign(
    call_sid: Sid, body: AssignRequest, user: SupervisorPlus, services: ServicesDep
) -> dict[str, Any]:
    return services.controls.assign(user, call_sid, body.agent)
