"""Where a voice webhook's time goes, measured in process: no HTTP server, no client.

bench/webhook.py measures the whole path over loopback; this takes it apart, in one
process and one run (every variant alternates, rounds x requests each, medians):

* the fixed cost: the real app (app.main.create_app) with the voice handler answering a
  constant, as bench/fixed_cost_app.py, driven by ASGI calls (the `def` endpoint on
  FastAPI's real thread pool); then the same with one part taken out at a time — the JSON
  access line, the webhook metric, the Observe middleware whole, the body limit, the
  signature check, the form check — and the bare FastAPI `def`+form and `async` endpoints
  of bench/baseline_app.py. Each part's saving is its share of (fixed cost - bare def+form);
* the handler: CallEvents.arrived alone, called in this thread, with its SQL statements
  counted, and with one part taken out at a time (rendering the TwiML, sealing the caller's
  number, the audit events and their placing at commit);
* the whole voice webhook through the app, as the sum of the two plus the thread hop;
* the IVR's handler alone for comparison (CallEvents.menu_answered, digit 1 after a voice
  webhook: queued for a recorded department, the recording started at the simulated
  platform, in memory, before it answers), with its statements and commits: the voice
  webhook's kind of transaction, then the reconciler's plan, the platform's start and the
  outcome's transaction (issue 17 item 2 asks the IVR for the voice webhook's ratio).

    python bench/inprocess.py [--database postgres]   # 7 rounds x 300 requests
    python bench/inprocess.py --profile               # and cProfile's top of the handler
    python bench/inprocess.py --quick                 # CI: 1 round x 30, checks it runs

Variants are made by replacing module attributes for the length of their rounds (as
bench/fixed_cost_app.py replaces the handler); nothing here is for production. Figures are
as noisy as the machine: compare rows of one run, not runs. Exit 0, or 1 on a failed request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import io
import logging
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import baseline_app  # noqa: E402  (bench/ is on sys.path when run as a script)
from sqlalchemy import event  # noqa: E402
from twilio.request_validator import RequestValidator  # noqa: E402
from webhook import PG_SERVER, postgres_database  # noqa: E402

from app.api import limits, observability  # noqa: E402
from app.calls import events, hot_path  # noqa: E402
from app.calls.events import CallEvents, Reply  # noqa: E402
from app.config import load_settings  # noqa: E402
from app.main import create_app  # noqa: E402
from app.platforms.twilio import forms, webhooks  # noqa: E402
from app.runtime.services import Services, build_services  # noqa: E402
from app.storage import driver, migrate  # noqa: E402

BASE = "http://127.0.0.1:8000"
TOKEN = secrets.token_hex(20)
PATH = "/webhooks/twilio/voice"
CLOCK = time.perf_counter  # or time.process_time (--clock cpu)


def voice_form() -> dict[str, str]:
    return {
        "AccountSid": "AC" + "1" * 32,
        "CallSid": "CA" + secrets.token_hex(16),
        "From": "+447700900123",
        "To": "+441632960655",
        "CallStatus": "ringing",
        "Direction": "inbound",
    }


def asgi_request() -> tuple[dict[str, Any], bytes]:
    params = voice_form()
    body = urlencode(params).encode("ascii")
    signature = RequestValidator(TOKEN).compute_signature(BASE + PATH, params)
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/x-www-form-urlencoded"),
        (b"x-twilio-signature", signature.encode("ascii")),
        (b"content-length", str(len(body)).encode("ascii")),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode("ascii"),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 8000),
    }
    return scope, body


async def call(app: Any, scope: dict[str, Any], body: bytes) -> tuple[int, bytes]:
    """One request through the ASGI app, as uvicorn would make it."""
    delivered = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()  # no disconnect while the answer is sent
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(dict(scope, state={}), receive, send)
    return status, b"".join(chunks)


class _Silent:
    def info(self, *_args: object, **_kwargs: object) -> None:
        pass


# What a variant may take out: (module, attribute, stand-in).
REMOVABLE: dict[str, tuple[Any, str, Any]] = {
    "access_log": (observability, "log", _Silent()),
    "metric": (observability, "count_webhook", lambda *_: None),
    "signature": (webhooks, "valid_signature", lambda *_: True),
    "form_check": (forms, "check_form", lambda *_: None),
    "render": (None, "", None),  # the handler's render argument (see handler_rows)
    "sealing": (hot_path, "sealed_columns", lambda *_: {}),  # a new call's path seals there
    "audit": (events.audit, "append", lambda *_, **__: None),
}


@contextlib.contextmanager
def without(parts: Sequence[str]) -> Iterator[None]:
    saved = []
    for part in parts:
        module, name, stand_in = REMOVABLE[part]
        if module is not None:
            saved.append((module, name, getattr(module, name)))
            setattr(module, name, stand_in)
    try:
        yield
    finally:
        for module, name, original in saved:
            setattr(module, name, original)


@dataclass
class Row:
    name: str
    run: Callable[[int], float]  # seconds per request over n requests
    times: list[float] = field(default_factory=list)

    @property
    def ms(self) -> float:
        return statistics.median(self.times) * 1000


def measure(rows: Sequence[Row], rounds: int, per: int) -> None:
    for round_ in range(rounds + 1):  # round 0 warms every variant up, unmeasured
        for row in rows:
            took = row.run(per)
            if round_:
                row.times.append(took)


def print_rows(title: str, rows: Sequence[Row], reference: float | None) -> None:
    first = rows[0].ms
    print(f"\n{title}\n{'':34} {'ms':>7} {'saves':>7} {'share':>6}")
    for row in rows:
        share = ""
        if reference is not None and first > reference:
            share = f"{(first - row.ms) / (first - reference):6.0%}"
        print(f"{row.name:34} {row.ms:7.3f} {first - row.ms:7.3f} {share:>6}")


def fixed_cost_rows(services: Services, loop: asyncio.AbstractEventLoop) -> list[Row]:
    def app_without(*middleware: type) -> Any:
        app = create_app(services.settings, services)
        app.user_middleware = [m for m in app.user_middleware if m.cls not in middleware]
        app.middleware_stack = app.build_middleware_stack()
        app.state.services = services  # only the measured app runs the lifespan
        return app

    def bare(endpoint: Callable[..., Any]) -> Any:
        app = baseline_app.FastAPI()
        app.add_api_route(PATH, endpoint, methods=["POST"])
        return app

    def timed(app: Any, parts: Sequence[str] = ()) -> Callable[[int], float]:
        def run(n: int) -> float:
            requests = [asgi_request() for _ in range(n)]

            async def go() -> float:
                started = CLOCK()
                for scope, body in requests:
                    status, answer = await call(app, scope, body)
                    if status != 200 or b"<Gather" not in answer:
                        raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")
                return (CLOCK() - started) / n

            with without(parts):
                return loop.run_until_complete(go())

        return run

    full = app_without()
    return [
        Row("callguard fixed cost", timed(full)),
        Row("- access log line", timed(full, ["access_log"])),
        Row("- webhook metric", timed(full, ["metric"])),
        Row("- Observe (id, log line, metric)", timed(app_without(observability.Observe))),
        Row("- BodyLimit", timed(app_without(limits.BodyLimit))),
        Row("- signature check", timed(full, ["signature"])),
        Row("- form check", timed(full, ["form_check"])),
        Row(
            "- all six",
            timed(
                app_without(observability.Observe, limits.BodyLimit), ["signature", "form_check"]
            ),
        ),
        Row("bare def+form", timed(bare(baseline_app.voice_form))),
        Row("bare async (form unread)", timed(bare(baseline_app.voice_async))),
    ]


def handler_rows(services: Services, counted: list[int]) -> tuple[list[Row], dict[str, float]]:
    render = webhooks.answers(services).render
    statements: dict[str, float] = {}

    def timed(name: str, parts: Sequence[str] = ()) -> Row:
        chosen = (lambda _answer: baseline_app.TWIML) if "render" in parts else render

        def run(n: int) -> float:
            inputs = [forms.voice(voice_form(), None) for _ in range(n)]
            with without(parts):
                counted[0] = 0
                started = CLOCK()
                for event_ in inputs:
                    services.calls.arrived(event_, chosen)
                took = (CLOCK() - started) / n
            statements[name] = counted[0] / n
            return took

        return Row(name, run)

    rows = [
        timed("CallEvents.arrived"),
        timed("- rendering the TwiML", ["render"]),
        timed("- sealing the number", ["sealing"]),
        timed("- audit events (and placing)", ["audit"]),
    ]
    return rows, statements


def ivr_row(
    services: Services, counted: list[int], commits: list[int]
) -> tuple[Row, dict[str, float]]:
    """menu_answered (digit 1) on calls that have just arrived (their voice webhooks run
    before the clock starts); with the statements and commits a request of the last round."""
    render = webhooks.answers(services).render
    counts: dict[str, float] = {}

    def run(n: int) -> float:
        arrived = [voice_form() for _ in range(n)]
        for form in arrived:
            services.calls.arrived(forms.voice(form, None), render)
        menus = [
            forms.ivr({**form, "CallStatus": "in-progress", "Digits": "1"}, 1, None)
            for form in arrived
        ]
        counted[0] = commits[0] = 0
        started = CLOCK()
        for event_ in menus:
            reply = services.calls.menu_answered(event_, render)
            if "<Enqueue>" not in reply.body:
                raise RuntimeError(f"the IVR answered {reply.body[:200]!r}")
        took = (CLOCK() - started) / n
        counts.update(statements=counted[0] / n, commits=commits[0] / n)
        return took

    return Row("CallEvents.menu_answered (IVR)", run), counts


def profile_handler(services: Services, n: int) -> None:
    render = webhooks.answers(services).render
    inputs = [forms.voice(voice_form(), None) for _ in range(n)]
    profiler = cProfile.Profile()
    profiler.enable()
    for event_ in inputs:
        services.calls.arrived(event_, render)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
    print(f"\ncProfile of CallEvents.arrived x {n} (its overhead inflates every figure)")
    print(out.getvalue())


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Take a voice webhook's time apart, in process.")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-server", default=PG_SERVER)
    parser.add_argument("--rounds", type=int, help="measured rounds of every variant (7)")
    parser.add_argument("--requests", type=int, help="requests per variant per round (300)")
    parser.add_argument("--profile", action="store_true", help="also cProfile the handler")
    parser.add_argument("--quick", action="store_true", help="CI: 1 round x 30 requests")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or this process's CPU time (steadier on a shared machine; it leaves"
        " out waits, PostgreSQL's own work among them)",
    )
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    args.rounds = args.rounds or (1 if args.quick else 7)
    args.requests = args.requests or (30 if args.quick else 300)
    if not (1 <= args.rounds <= 100 and 1 <= args.requests <= 10_000):
        parser.error("--rounds 1-100, --requests 1-10000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with contextlib.ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cg-inproc-")))
        os.chdir(workdir)  # var/ (journal, development token) lands here
        if args.database == "postgres":
            url = stack.enter_context(postgres_database(args.pg_server))
        else:
            url = f"sqlite:///{workdir / 'callguard.db'}"
        migrate.upgrade(url)
        settings = load_settings(database_url=url, public_base_url=BASE, twilio_auth_token=TOKEN)
        services = build_services(settings)
        stack.callback(services.close)
        counted = [0]

        @event.listens_for(services.engine, "before_cursor_execute")
        def _count(*_: object) -> None:
            counted[0] += 1

        # Statements sent to the driver itself (app/storage/driver.py) bypass that event.
        sent = driver._execute

        def _count_driver(*args: Any, **kwargs: Any) -> Any:
            counted[0] += 1
            return sent(*args, **kwargs)

        driver._execute = _count_driver  # type: ignore[assignment]
        stack.callback(setattr, driver, "_execute", sent)
        commits = [0]

        @event.listens_for(services.engine, "commit")
        def _commit(*_: object) -> None:
            commits[0] += 1

        app = create_app(settings, services)
        loop = asyncio.new_event_loop()
        stack.callback(loop.close)
        stack.enter_context(_lifespan(app, loop))
        logging.getLogger().handlers[0].setStream(open(os.devnull, "w"))  # noqa: SIM115
        print(
            f"== in process: {args.database}, {args.rounds} rounds x {args.requests} requests "
            "per variant, medians ==",
            flush=True,
        )
        try:
            whole = [Row("voice webhook through the app", _whole(app, loop))]
            measure(whole, args.rounds, args.requests)
            handler, statements = handler_rows(services, counted)
            measure(handler, args.rounds, args.requests)
            ivr_only, ivr_counts = ivr_row(services, counted, commits)
            ivr = [ivr_only]
            measure(ivr, args.rounds, args.requests)
            original = CallEvents.arrived
            CallEvents.arrived = _constant  # type: ignore[method-assign,assignment]
            try:
                fixed = fixed_cost_rows(services, loop)
                measure(fixed, args.rounds, args.requests)
            finally:
                CallEvents.arrived = original  # type: ignore[method-assign]
        except RuntimeError as exc:
            print(f"FAIL: {exc}", file=sys.stderr)
            return 1
        print_rows(
            "fixed cost (the handler answering a constant), through the app", fixed, fixed[-2].ms
        )
        print_rows("the voice handler alone (this thread)", handler, None)
        for row in handler:
            print(f"  {row.name}: {statements[row.name]:.1f} statements a webhook")
        print_rows("the IVR's handler alone (this thread), for comparison", ivr, None)
        print(
            f"  {ivr_counts['statements']:.1f} statements and {ivr_counts['commits']:.1f} commits "
            "a webhook (the voice handler: one commit)"
        )
        print_rows("the whole voice webhook", whole, None)
        rest = whole[0].ms - fixed[0].ms - handler[0].ms
        print(f"  = fixed cost {fixed[0].ms:.3f} + handler {handler[0].ms:.3f} + other {rest:.3f}")
        if args.profile:
            profile_handler(services, args.requests * 3)
    return 0


def _constant(_self: CallEvents, _event: object, _render: object) -> Reply:
    return Reply(baseline_app.TWIML)


def _whole(app: Any, loop: asyncio.AbstractEventLoop) -> Callable[[int], float]:
    def run(n: int) -> float:
        requests = [asgi_request() for _ in range(n)]

        async def go() -> float:
            started = CLOCK()
            for scope, body in requests:
                status, answer = await call(app, scope, body)
                if status != 200 or b"<Gather" not in answer:
                    raise RuntimeError(f"HTTP {status}: {answer[:200]!r}")
            return (CLOCK() - started) / n

        return loop.run_until_complete(go())

    return run


@contextlib.contextmanager
def _lifespan(app: Any, loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    context = app.router.lifespan_context(app)
    loop.run_until_complete(context.__aenter__())
    try:
        yield
    finally:
        loop.run_until_complete(context.__aexit__(None, None, None))


if __name__ == "__main__":
    sys.exit(main())
