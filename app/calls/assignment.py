"""TaskRouter's assignment callback: the call goes to the person behind the worker."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app import audit
from app.calls.controls import assign_call
from app.calls.platform import PLATFORM, SID, BadWebhook, required
from app.calls.store import claim_receipt, find_call, keep_response, stored_response
from app.errors import BadRequest
from app.storage.db import unit_of_work
from app.storage.models import User


def _json_object(form: Mapping[str, str], name: str) -> dict[str, Any]:
    try:
        value = json.loads(form.get(name) or "{}")
    except json.JSONDecodeError:
        raise BadRequest(f"{name} is not JSON") from None
    if not isinstance(value, dict):
        raise BadRequest(f"{name} is not a JSON object")
    return value


def person_for(worker: Mapping[str, Any]) -> str | None:
    """`callguard_user`, else the worker's `contact_uri` without `client:`."""
    name = worker.get("callguard_user")
    if not name and isinstance(worker.get("contact_uri"), str):
        name = worker["contact_uri"].removeprefix("client:")
    return str(name) if name else None


class Assignments:
    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def handle(self, form: Mapping[str, str], token: str | None) -> dict[str, Any]:
        reservation = required(form, "ReservationSid")
        task = _json_object(form, "TaskAttributes")
        worker = _json_object(form, "WorkerAttributes")
        call_sid = str(task.get("call_sid") or "")
        if call_sid and not SID.fullmatch(call_sid):
            raise BadWebhook("TaskAttributes.call_sid is not a SID")
        key = f"assignment:{reservation}"
        with unit_of_work(self.sessions) as session:
            receipt = claim_receipt(session, key, token, "assignment", call_sid or None)
            if receipt is None:
                stored = stored_response(session, key, token)
                return json.loads(stored) if stored else {"instruction": "dequeue"}
            instruction = self._assign(session, call_sid, worker)
            keep_response(session, receipt, json.dumps(instruction))
        return instruction

    def _assign(self, session: Session, call_sid: str, worker: Mapping[str, Any]) -> dict[str, Any]:
        instruction: dict[str, Any] = {"instruction": "dequeue"}
        contact = worker.get("contact_uri")
        if isinstance(contact, str) and contact:
            instruction["to"] = contact
        call = find_call(session, call_sid, lock=True) if call_sid else None
        if call is None:
            # Still connect the caller: a person waiting matters more than our bookkeeping.
            audit.append(
                session,
                audit.EventType.ASSIGNMENT_UNMATCHED,
                actor=PLATFORM,
                call_sid=call_sid or None,
                detail={"problem": "unknown call", "worker": person_for(worker)},
            )
            return instruction
        if call.dialled_number:
            instruction["from"] = call.dialled_number  # caller ID of the leg to the worker
        name = person_for(worker)
        user = (
            session.scalars(select(User).where(User.name == name)).one_or_none() if name else None
        )
        if user is None or user.disabled_at is not None:
            audit.append(
                session,
                audit.EventType.ASSIGNMENT_UNMATCHED,
                actor=PLATFORM,
                call_sid=call_sid,
                detail={"problem": "no such active person", "worker": name},
            )
            return instruction
        assign_call(session, call, user.name, actor=PLATFORM, source="taskrouter")
        return instruction
