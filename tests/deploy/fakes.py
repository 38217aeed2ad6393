"""Stand-ins for the forwarder's tests: callguard's flow endpoint as a real threaded HTTP
server on 127.0.0.1, and the part of Lambda's context object the forwarder reads."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeCallguard:
    """callguard's flow endpoint as the forwarder sees it: a real threaded HTTP server."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = 200
        self.body = b"{}"
        self.extra_headers: dict[str, str] = {}
        self.delay = 0.0  # seconds before answering at all
        self.drip = 0.0  # seconds between the bytes of the body, after the headers
        self.released = threading.Event()  # ends any wait at teardown
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                outer.requests.append((self.path, dict(self.headers), self.rfile.read(length)))
                if outer.delay and outer.released.wait(outer.delay):
                    return
                self.send_response(outer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(outer.body)))
                for name, value in outer.extra_headers.items():
                    self.send_header(name, value)
                self.end_headers()
                for byte in outer.body if outer.drip else [outer.body]:
                    chunk = bytes([byte]) if isinstance(byte, int) else byte
                    try:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                    except OSError:
                        return
                    if outer.drip and outer.released.wait(outer.drip):
                        return

            def do_GET(self) -> None:  # only a followed redirect would arrive as a GET
                outer.requests.append((self.path, dict(self.headers), b""))
                self.send_error(405)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


class Context:
    """The part of Lambda's context object the forwarder reads."""

    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
