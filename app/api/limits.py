"""A request body larger than MAX_BODY_BYTES is refused with 413 before any handler runs.

Refused at once when Content-Length says so (nothing is read); otherwise the body is read
up to the limit, and one byte more refuses it: a chunked or lying body is never passed on
truncated, so nothing is signature-checked, journalled or stored for it. A body within the
limit is handed on whole, as the server delivered it.

The limit is for every route. The largest legitimate request is TaskRouter's assignment
callback: its TaskAttributes and WorkerAttributes are JSON strings that TaskRouter caps
(16 KiB and 4 KiB, as we read its limits page); percent-encoded, each byte is at most
three, so even all-punctuation attributes and the callback's other fields stay under
64 KiB. Voice and status callbacks are a few hundred bytes; our JSON bodies at most a few
kilobytes. A plain ASGI middleware, like app/api/observability.py."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_body

MAX_BODY_BYTES = 64 * 1024


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            await self._refuse(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if delivered:
                return await receive()  # http.disconnect, for streaming responses
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_body(413, None, f"the request body is larger than {self.limit} bytes")
        # The rest of the body is left unread: the connection cannot be reused.
        response.headers["Connection"] = "close"
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
    for key, value in headers:
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed one; the count below still holds
    return None
