"""Which callguard person a Connect agent is. A contact event names its agent by ARN only;
callguard asks Connect for that user's login (DescribeUser) and assigns the call to the
active callguard person of the same name (`callguard users add <login> --role agent`).
Logins are cached per process; a lookup Connect cannot answer now assigns nobody (logged
as `call.assignment_unmatched`; a supervisor can still assign the call)."""

from __future__ import annotations

import re
import threading
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from app.platforms.connect.aws import provider_error

log = structlog.get_logger(__name__)

PERSON = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,99}")  # a callguard user name
CACHED = 10_000


class People:
    def __init__(self, connect: Any, instance_id: str) -> None:
        self.connect = connect
        self.instance_id = instance_id
        self._names: dict[str, str | None] = {}
        self._lock = threading.Lock()

    def name_of(self, agent_id: str) -> str | None:
        with self._lock:
            if agent_id in self._names:
                return self._names[agent_id]
        try:
            user = self.connect.describe_user(InstanceId=self.instance_id, UserId=agent_id)
        except (ClientError, BotoCoreError) as exc:
            error = provider_error("describe user", exc)
            log.warning("connect_agent_unknown", agent=agent_id, error=str(error))
            if not error.not_found:
                return None  # asked again next time
            name = None
        else:
            login = user.get("User", {}).get("Username")
            name = login if isinstance(login, str) and PERSON.fullmatch(login) else None
        with self._lock:
            if len(self._names) >= CACHED:
                self._names.clear()
            self._names[agent_id] = name
        return name
