"""Queue ARNs by name. Connect's *Set working queue* block takes an ARN, and its queues are
named by department id, so the flow's answer carries the ARN of the queue of that name,
found with ListQueues (standard queues, every page) and kept. A name not found asks again,
at most once per MIN_REFRESH across all callers, never holding a lock over the request
(a flow answer waits on none but its own); a worker refreshes the lot every REFRESH."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from app.platforms.connect.aws import provider_error

log = structlog.get_logger(__name__)

MIN_REFRESH = 10.0
REFRESH = 300.0


class QueueArns:
    def __init__(
        self,
        connect: Any,
        instance_id: str,
        clock: Callable[[], float] = time.monotonic,
        min_refresh: float = MIN_REFRESH,
    ) -> None:
        self.connect = connect
        self.instance_id = instance_id
        self.clock = clock
        self.min_refresh = min_refresh
        self._arns: dict[str, str] = {}
        self._lock = threading.Lock()
        self._refreshing = False
        self._last: float | None = None

    def arn(self, name: str) -> str:
        """The ARN of the queue `name`, or "" when Connect has none (or cannot say now)."""
        with self._lock:
            found = self._arns.get(name)
            due = self._last is None or self.clock() - self._last >= self.min_refresh
        if found is None and due:
            self.refresh()
            with self._lock:
                found = self._arns.get(name)
        return found or ""

    def learn(self, name: str, arn: str) -> None:
        """A name and ARN Connect itself gave (a contact's queue)."""
        with self._lock:
            self._arns[name] = arn

    def refresh(self) -> int:
        """Every standard queue's name and ARN; a failure keeps what was known. One
        refresh at a time: a caller arriving meanwhile does not wait for it."""
        with self._lock:
            if self._refreshing:
                return 0
            self._refreshing = True
            self._last = self.clock()
        try:
            found: dict[str, str] = {}
            pages = self.connect.get_paginator("list_queues").paginate(
                InstanceId=self.instance_id, QueueTypes=["STANDARD"]
            )
            for page in pages:
                for queue in page.get("QueueSummaryList", []):
                    if queue.get("Name") and queue.get("Arn"):
                        found[queue["Name"]] = queue["Arn"]
        except (ClientError, BotoCoreError) as exc:
            error = provider_error("list queues", exc)
            log.warning("connect_queues_unavailable", error=str(error), transient=error.transient)
            return 0
        finally:
            with self._lock:
                self._refreshing = False
        with self._lock:
            self._arns.update(found)
        return len(found)
