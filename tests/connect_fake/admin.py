"""The stand-in's own controls, for `callguard simulate` against it over HTTP (a process of
its own, `python -m tests.connect_fake`): what happens at Connect that no Connect API does
(a caller's contact arrives, an agent transfers it, it ends and its audio lands in S3).
Served under /_standin/, a path no Connect operation has; loopback only, no credentials.

    GET  /_standin/instance                  {"id", "arn", "queues": {name: arn}}
    POST /_standin/contacts                  {"method", "previous", "queue"} -> {"id", "initial_id"}
    POST /_standin/contacts/{id}/disconnect  -> {"location"}: a recorded one's audio in S3
    POST /_standin/users                     {"username"} -> {"id", "arn"}
    GET  /_standin/requests?after=N          {"items": [{"operation", "contact", "status", "code"}]}
"""

from __future__ import annotations

import io
import wave
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from .state import ConnectError

if TYPE_CHECKING:
    from .server import FakeConnectServer


def silent_wav(seconds: float = 2.0) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        audio.writeframes(b"\0\0" * int(8000 * seconds))
    return out.getvalue()


def admin_routes(server: FakeConnectServer, instance_id: str, s3: Any | None) -> Mount:
    """The controls for one instance; `s3` (a boto3 client) receives recordings' audio."""

    def instance(_request: Request) -> JSONResponse:
        held = server.connect.instances[instance_id]
        queues = {q.name: q.arn for q in held.queues.values() if q.name}
        return JSONResponse({"id": held.id, "arn": held.arn, "queues": queues})

    async def contacts(request: Request) -> JSONResponse:
        body = await request.json()
        try:
            made = server.add_contact(
                instance_id,
                initiation_method=body.get("method") or "INBOUND",
                previous_contact_id=body.get("previous"),
                queue=body.get("queue"),
            )
        except (ValueError, ConnectError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"id": made.id, "initial_id": made.initial_contact_id})

    def disconnect(request: Request) -> JSONResponse:
        contact = request.path_params["contact"]
        try:
            location = server.disconnect_contact(instance_id, contact)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        if location is not None and s3 is not None:
            bucket, _, key = location.partition("/")
            s3.put_object(Bucket=bucket, Key=key, Body=silent_wav(), ContentType="audio/wav")
        return JSONResponse({"location": location})

    async def users(request: Request) -> JSONResponse:
        made = server.add_user(instance_id, str((await request.json())["username"]))
        return JSONResponse({"id": made.id, "arn": made.arn})

    def requests(request: Request) -> JSONResponse:
        after = int(request.query_params.get("after", "0"))
        items = [
            {
                "operation": r.operation,
                "contact": r.params.get("ContactId"),
                "status": r.status,
                "code": r.code,
            }
            for r in server.requests[after:]
        ]
        return JSONResponse({"items": items})

    return Mount(
        "/_standin",
        routes=[
            Route("/instance", instance),
            Route("/contacts", contacts, methods=["POST"]),
            Route("/contacts/{contact}/disconnect", disconnect, methods=["POST"]),
            Route("/users", users, methods=["POST"]),
            Route("/requests", requests),
        ],
    )
