"""callguard with the voice webhook's own work taken out: the ceiling of bench/webhook.py.

The real app (app.main) with all its middleware (request ids and JSON logs, metrics, body
limit, auth-failure limit), routing and the X-Twilio-Signature check, but the voice
handler (the call-control service's `arrived`) answers the baseline's constant TwiML
instead of claiming the receipt, writing
the call and its audit events, deciding and building TwiML. What it serves per second is
the most any implementation of that work could reach in this app; run by bench/webhook.py
with the same uvicorn options as `callguard serve` (app/cli/service.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn
from baseline_app import TWIML

from app.calls.events import CallEvents, Reply
from app.calls.inputs import CallArrived
from app.main import serve_app


def _constant(_self: CallEvents, _event: CallArrived, _render: object) -> Reply:
    return Reply(TWIML)


def app() -> object:
    """uvicorn's factory: the patch is made in the process that serves."""
    CallEvents.arrived = _constant  # type: ignore[method-assign,assignment]
    return serve_app()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    uvicorn.run(
        "fixed_cost_app:app",
        app_dir=str(Path(__file__).parent),
        factory=True,
        host="127.0.0.1",
        port=args.port,
        proxy_headers=True,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    sys.exit(main())
