"""The benchmark's reference: a bare FastAPI endpoint answering the voice webhook's path
with a constant TwiML menu (the same size as callguard's answer), with no signature check,
no database and no policy.

Run by bench/webhook.py as `python bench/baseline_app.py --port N`, and by bench/load.py
with `--style any --workers 2` (every POST path answered after reading its body). With
`--style trips` (bench/webhook.py on PostgreSQL) the `def`+form endpoint also sends
CALLGUARD_BENCH_STATEMENTS trivial statements in one transaction to CALLGUARD_DATABASE_URL,
through psycopg as callguard does: what the round trips alone cost, nothing else done. It
serves with the same uvicorn options and logging as `callguard serve` (app/cli/service.py), so
the two servers differ only in what the endpoints do."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Annotated

import uvicorn
from fastapi import FastAPI, Form, Request, Response

# What callguard answers for a new call to the main number (the IVR menu with the notice).
TWIML = (
    '<?xml version="1.0" encoding="UTF-8"?><Response>'
    '<Gather action="http://127.0.0.1:8000/webhooks/twilio/ivr?step=1" method="POST" '
    'numDigits="1" timeout="6"><Say language="en-GB" voice="Polly.Amy">Calls to Harlow '
    "Council may be recorded, to help us monitor quality, to investigate complaints, and to "
    "detect and prevent crime, including fraud. If you would prefer your call not to be "
    'recorded, press 9 now.</Say><Say language="en-GB" voice="Polly.Amy">For Contact '
    "Harlow, press 1. For Revenues and Benefits, press 2. For Home Ownership, press 3. For "
    "Housing Management, press 4. For Housing Operations, press 5. For Supported Housing, "
    "press 6. For Planning, press 7. For Environmental Services, press 8.</Say></Gather>"
    '<Redirect method="POST">http://127.0.0.1:8000/webhooks/twilio/ivr?step=1</Redirect>'
    "</Response>"
)

app = FastAPI(title="callguard benchmark baseline")


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def voice_async() -> Response:
    """The floor: an async endpoint that does not even read the form."""
    return Response(TWIML, media_type="application/xml")


def voice_form(
    CallSid: Annotated[str, Form()],  # Twilio's field names
    To: Annotated[str, Form()],
) -> Response:
    """The bare FastAPI endpoint in callguard's own style: a `def` handler (run in the
    thread pool) that receives Twilio's form, and answers constant TwiML."""
    return Response(TWIML, media_type="application/xml")


_local = threading.local()


def voice_trips(
    CallSid: Annotated[str, Form()],
    To: Annotated[str, Form()],
) -> Response:
    """voice_form, sending STATEMENTS statements in a transaction first (psycopg sends the
    BEGIN as a round trip of its own, then one a statement and the COMMIT), on this thread's
    own connection, as callguard's pool gives each request one."""
    connection = getattr(_local, "connection", None)
    if connection is None:
        import psycopg  # only this style needs a database

        url = os.environ["CALLGUARD_DATABASE_URL"].replace("+psycopg", "")
        connection = _local.connection = psycopg.connect(url)
    for _ in range(STATEMENTS):
        connection.execute("SELECT 1").fetchall()
    connection.commit()
    return Response(TWIML, media_type="application/xml")


async def any_post(request: Request) -> Response:
    """Any path: read the whole body (form or JSON), answer a constant."""
    await request.body()
    return Response(TWIML, media_type="application/xml")


STYLE_ENV = "CALLGUARD_BENCH_STYLE"  # read at import, so that worker processes see it too
_style = os.environ.get(STYLE_ENV, "async")
STATEMENTS = int(os.environ.get("CALLGUARD_BENCH_STATEMENTS", "7"))
if _style == "any":
    app.add_api_route("/{path:path}", any_post, methods=["POST"])
else:
    endpoint = {"async": voice_async, "form": voice_form, "trips": voice_trips}[_style]
    app.add_api_route("/webhooks/twilio/voice", endpoint, methods=["POST"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--style", choices=("async", "form", "trips", "any"), default="async")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ[STYLE_ENV] = args.style
    # As app/logging.py: stdlib logging at INFO on stderr, so uvicorn's access log costs
    # the same here as in callguard.
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=logging.INFO)
    uvicorn.run(
        "baseline_app:app",
        app_dir=str(Path(__file__).parent),
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        log_config=None,
    )


if __name__ == "__main__":
    main()
