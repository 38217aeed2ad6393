"""What the Connect stand-in saw during one test: requests, refusals, and faults still pending.

One `Journal` per test (the server replaces it on reset), shared by the test's thread and
the server's, hence the lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

OFF_MODEL = "StandInOffModel"  # the code of a violation by the stand-in itself


@dataclass(frozen=True)
class ReceivedRequest:
    """One request and how it was answered: the operation (None if no route matched), its
    decoded input members, and the answer's status and error code (None on success)."""

    operation: str | None
    method: str
    path: str
    params: dict[str, Any]
    status: int
    code: str | None


@dataclass(frozen=True)
class Violation:
    """A request the real Connect would have refused, and the answer the stand-in gave; or,
    with code StandInOffModel, an answer of the stand-in's own that was off the model."""

    operation: str | None
    method: str
    path: str
    status: int
    code: str
    message: str


@dataclass
class Injection:
    operation: str
    code: str | None  # None: only delay, then serve
    status: int | None
    delay: float
    remaining: int
    message: str | None


class Journal:
    def __init__(self) -> None:
        self.requests: list[ReceivedRequest] = []
        self.violations: list[Violation] = []
        self.injections: list[Injection] = []
        self.expect_all = False
        self.expected_codes: set[str] = set()
        self.lock = threading.Lock()

    def log(self, request: ReceivedRequest, violation: str | None = None) -> None:
        """Record an answered request; with `violation` (a message) it was a refusal."""
        with self.lock:
            self.requests.append(request)
            if violation is not None:
                r = request
                self.violations.append(
                    Violation(r.operation, r.method, r.path, r.status, r.code or "", violation)
                )

    def off_model(self, request: ReceivedRequest, message: str) -> None:
        """Record an answer of the stand-in's own that the model does not allow."""
        r = request
        with self.lock:
            self.requests.append(request)
            self.violations.append(
                Violation(r.operation, r.method, r.path, 500, OFF_MODEL, message)
            )

    def add_injection(self, injection: Injection) -> None:
        with self.lock:
            self.injections.append(injection)

    def take_injection(self, operation: str) -> Injection | None:
        with self.lock:
            for inj in self.injections:
                if inj.operation == operation and inj.remaining > 0:
                    inj.remaining -= 1
                    return inj
        return None

    def clear_injections(self) -> None:
        with self.lock:
            self.injections.clear()

    def expect(self, codes: tuple[str, ...]) -> None:
        with self.lock:
            if codes:
                self.expected_codes.update(codes)
            else:
                self.expect_all = True

    def take_violations(self) -> list[Violation]:
        with self.lock:
            taken = list(self.violations)
            self.violations.clear()
        return taken

    def unexpected(self) -> list[Violation]:
        """Violations the test did not declare; the stand-in's own always count."""
        with self.lock:
            return [
                v
                for v in self.violations
                if v.code == OFF_MODEL or not (self.expect_all or v.code in self.expected_codes)
            ]
