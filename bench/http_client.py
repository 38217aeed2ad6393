"""A light HTTP/1.1 load client for bench/load.py, and the do-nothing server that measures it.

bench/load.py shares two cores between its client, four server processes and PostgreSQL.
httpx.AsyncClient costs about a millisecond of Python per request, so against a bare
FastAPI app the client, not the server, set the pace (issue 17 item 3). This client does
the least a correct HTTP/1.1 client can: asyncio protocols (no streams), one request in
flight per kept-alive connection, requests handed over as complete bytes built before the
clock starts, and a response parsed only for its status line, Content-Length, Connection
and body. It does not follow redirects, decompress, or read chunked bodies (a chunked
answer is an error, so nothing passes unread).

The trivial server (`python bench/http_client.py --serve PORT`) answers every request with
the same fixed 200, doing nothing else: the same request stream against it gives the
client's own ceiling, so a reader sees whether a baseline is capped by the client.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import time
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, TypeVar, cast

REQUEST_TIMEOUT = 30.0  # seconds for one response
RETRIES = 2  # a reused connection the server had just closed: tried again, as Twilio would
# uvicorn closes a kept-alive connection idle for 5 s; one idle longer than this is not
# reused, so the race (our request on a connection being closed) stays rare.
IDLE_REUSE = 4.0

T = TypeVar("T")


class Connection(asyncio.Protocol):
    """One kept-alive connection; `send` writes a request and resolves with
    (status, body, server closes)."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost = False
        self.idle_since = 0.0
        self._body_at = -1  # where the body starts, once the head has arrived
        self._status = 0
        self._length: int | None = None
        self._close = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def send(self, request: bytes) -> asyncio.Future[tuple[int, bytes, bool]]:
        assert self.transport is not None
        assert self.waiter is None
        self.waiter = asyncio.get_running_loop().create_future()
        self._body_at = -1
        self.transport.write(request)
        return self.waiter

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # unsolicited bytes: the next request's parse fails on them, loudly
        try:
            if self._body_at < 0:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                self._parse_head(bytes(self.buffer[:end]))
                self._body_at = end + 4
            if self._length is None:
                return  # delimited by the server closing: connection_lost finishes it
            stop = self._body_at + self._length
            if len(self.buffer) < stop:
                return
            body = bytes(self.buffer[self._body_at : stop])
            del self.buffer[:stop]
        except ValueError as exc:
            waiter.set_exception(exc)
            self.waiter = None
            return
        self.waiter = None
        waiter.set_result((self._status, body, self._close))

    def _parse_head(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        status_line = lines[0].split(b" ", 2)
        if len(status_line) < 2 or not status_line[0].startswith(b"HTTP/1."):
            raise ValueError(f"not an HTTP/1.x response: {lines[0][:80]!r}")
        self._status = int(status_line[1])
        self._length = None
        self._close = status_line[0] == b"HTTP/1.0"
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self._length = int(value)
            elif name == b"connection":
                self._close = value.strip().lower() == b"close"
            elif name == b"transfer-encoding":
                raise ValueError("chunked response: this client reads only Content-Length")
        if self._status in (204, 304) or self._status < 200:  # never a body (RFC 9110 6.4.1)
            self._length = 0

    def eof_received(self) -> None:
        self.lost = True  # not to be taken from the pool again; the transport closes

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        waiter, self.waiter = self.waiter, None
        if waiter is None or waiter.done():
            return
        if self._body_at >= 0 and self._length is None:
            waiter.set_result((self._status, bytes(self.buffer[self._body_at :]), True))
        else:
            waiter.set_exception(ConnectionResetError("server closed the connection"))

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()


class Pool:
    """Kept-alive connections to one server, opened on demand, reused most recent first."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port
        self.idle: list[Connection] = []
        self.retries = 0

    def _take(self) -> Connection | None:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()
            if not connection.lost and now - connection.idle_since < IDLE_REUSE:
                return connection
            connection.abort()
        return None

    async def request(self, request: bytes) -> tuple[int, bytes]:
        """(status, body). Raises OSError, TimeoutError or ValueError (a malformed answer)."""
        for attempt in range(RETRIES + 1):
            connection = self._take()
            reused = connection is not None
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    if connection is None:
                        _, connection = await asyncio.get_running_loop().create_connection(
                            Connection, self.host, self.port
                        )
                    status, body, close = await connection.send(request)
            except ConnectionError:
                if connection is not None:
                    connection.abort()
                if reused and attempt < RETRIES:
                    self.retries += 1
                    continue
                raise
            except BaseException:
                if connection is not None:
                    connection.abort()
                raise
            if close or connection.lost:
                connection.abort()
            else:
                connection.idle_since = time.monotonic()
                self.idle.append(connection)
            return status, body
        raise AssertionError("unreachable")

    def close(self) -> None:
        while self.idle:
            self.idle.pop().abort()


async def replay(
    pools: Sequence[Pool], requests: Sequence[bytes], limit: int, seed: int = 2026
) -> tuple[float, list[str]]:
    """Send every request once, each to a random pool, at most `limit` in flight: (seconds
    taken, errors). Any 2xx passes (the bare baseline answers a constant)."""
    rng = random.Random(seed)
    work: Iterator[bytes] = iter(requests)  # shared: next() is atomic within the event loop
    errors: list[str] = []

    async def worker() -> None:
        for request in work:
            try:
                status, body = await rng.choice(pools).request(request)
            except (OSError, TimeoutError, ValueError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                continue
            if not 200 <= status < 300:
                errors.append(f"HTTP {status}: {body[:200]!r}")

    started = time.perf_counter()
    try:
        await asyncio.gather(*(worker() for _ in range(limit)))
    finally:
        for pool in pools:
            pool.close()
    return time.perf_counter() - started, errors


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when installed (it is, with uvicorn[standard]): a lighter event loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


# -- the trivial server ----------------------------------------------------------------------

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.IGNORECASE)


class _Trivial(asyncio.Protocol):
    """Reads each request whole (head and Content-Length body) and answers `response`."""

    response = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self.buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            match = _CONTENT_LENGTH.search(self.buffer, 0, end + 2)
            total = end + 4 + (int(match.group(1)) if match else 0)
            if len(self.buffer) < total:
                return
            del self.buffer[:total]
            self.transport.write(self.response)


def serve(port: int) -> None:
    """Answer every request on 127.0.0.1:port with the bare baseline's own answer (the same
    bytes for the client to parse), until killed."""
    from baseline_app import TWIML

    body = TWIML.encode()
    _Trivial.response = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/xml\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(_Trivial, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    run(main())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="the do-nothing server of the client ceiling")
    parser.add_argument("--serve", type=int, required=True, metavar="PORT")
    serve(parser.parse_args().serve)
