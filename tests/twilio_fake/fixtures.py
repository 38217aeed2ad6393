"""The `twilio_server` pytest fixture: a running fake Twilio, fresh state per test.

One server runs per process (started on first use, stopped at exit); each test gets a
new platform, request log and violation list, and fails at teardown on violations it
did not declare with `twilio_server.expect_violations(...)`.

Import it into a conftest (`from tests.twilio_fake.fixtures import twilio_server`) or
list it in `pytest_plugins = ["tests.twilio_fake.fixtures"]` of the top-level conftest.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator

import pytest

from .server import FakeTwilioServer

_server: FakeTwilioServer | None = None
_lock = threading.Lock()


def shared_server() -> FakeTwilioServer:
    global _server
    with _lock:
        if _server is None:
            server = FakeTwilioServer()
            server.start()
            atexit.register(server.stop)
            _server = server
        return _server


@pytest.fixture
def twilio_server() -> Iterator[FakeTwilioServer]:
    server = shared_server()
    server.reset()
    yield server
    unexpected = server.unexpected_violations()
    server.reset()
    if unexpected:
        lines = "\n".join(
            f"  {v.method} {v.path} -> {v.status} ({v.code}): {v.message}" for v in unexpected
        )
        pytest.fail(
            "requests the real Twilio API would reject (call "
            f"twilio_server.expect_violations(...) if the test means them):\n{lines}",
            pytrace=False,
        )
