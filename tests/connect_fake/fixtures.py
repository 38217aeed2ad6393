"""The `connect_server` pytest fixture: a running Amazon Connect stand-in, fresh state per test.

One server runs per process (started on first use, stopped at exit); each test gets new
instances, request log and violation list, and fails at teardown on violations it did not
declare with `connect_server.expect_violations(...)`. The server carries what a client needs:
`endpoint_url`, `access_key`, `secret_key`, `region` (or all of it as `env()`), and
`client()` builds a boto3 Connect client for it.

Import it into a conftest (`from tests.connect_fake.fixtures import connect_server`) or list
it in `pytest_plugins` of the top-level conftest.
"""

from __future__ import annotations

import atexit
import threading
from collections.abc import Iterator

import pytest

from .server import FakeConnectServer

_server: FakeConnectServer | None = None
_lock = threading.Lock()


def shared_server() -> FakeConnectServer:
    global _server
    with _lock:
        if _server is None:
            server = FakeConnectServer()
            server.start()
            atexit.register(server.stop)
            _server = server
        return _server


@pytest.fixture
def connect_server() -> Iterator[FakeConnectServer]:
    server = shared_server()
    server.reset()
    yield server
    unexpected = server.unexpected_violations()
    server.reset()
    if unexpected:
        lines = "\n".join(
            f"  {v.method} {v.path} ({v.operation}) -> {v.status} {v.code}: {v.message}"
            for v in unexpected
        )
        pytest.fail(
            "requests Amazon Connect would refuse (call connect_server.expect_violations(...) "
            f"if the test means them):\n{lines}",
            pytrace=False,
        )
