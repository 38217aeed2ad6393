"""Every webhook of a call, and the people's payment start, against the bare endpoint.

bench/webhook.py measures the voice webhook; this measures the others of the same calls
in one run (issue 17 item 2), with the same client (its `load`: keep-alive connections,
requests built and signed before the clock starts) and the same baseline:

* the fake Twilio (tests/twilio_fake, every request checked against Twilio's OpenAPI) runs
  in this process; callguard (`callguard serve`, CALLGUARD_PROVIDER=twilio, the fake as its
  API) and the bare `def`+form endpoint (bench/baseline_app.py) run as servers;
* the baseline is loaded with voice-shaped requests; then every call goes through its
  webhooks in a call's order, one kind at a time over all calls, each kind timed:
  voice (new call: the menu), ivr (step 1, digit 1: queued for Contact Harlow, recorded, so
  callguard starts the recording at the fake before it answers), call-status (completed:
  the call ends), recording-status (the recording's completed callback, as the fake sent
  it when the call was hung up there). Each kind's throughput / the baseline's is its
  ratio; issue 17 asks each to be at least the voice webhook's;
* payment start, measured first: rounds of bench/controls.py (a call queued and recorded, then
  `POST /api/v1/calls/{sid}/payment/start`, answered once Twilio confirmed the pause) with
  LATENCY_MS injected on every Twilio request; callguard's own time is the round trip
  minus that latency. Issue 17 asks its p50 to be no more than the voice webhook's p50.

    python bench/webhook_kinds.py                       # 2,000 calls, 50 payment rounds
    python bench/webhook_kinds.py --database postgres   # own database callguard_bench_<pid>
    python bench/webhook_kinds.py --quick               # CI: 100 calls, 10 rounds

Exit 0 done (and, in full mode, both of issue 17's conditions met); 1 a request failed or a
server did; 3 full mode and a condition missed. Loopback only, bounded in count and time;
servers and the PostgreSQL database (if any) are removed on exit, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from controls import Agent, Client, RoundError, add_supervisor, start_fake
from controls import server_env as twilio_env
from twilio.request_validator import RequestValidator
from webhook import (
    BENCH,
    PG_SERVER,
    BenchError,
    Result,
    Server,
    callguard_command,
    free_ports,
    load,
    migrate,
    postgres_database,
    run_async,
    running,
    tail,
    unwind_on_signals,
)

if TYPE_CHECKING:
    from tests.twilio_fake.server import FakeTwilioServer

MAIN_NUMBER = "+441632960655"
CALLER = "+447700900123"
LATENCY_MS = 50.0
# What each kind must answer: 200 holding these bytes, or (None) any 2xx.
EXPECT: dict[str, bytes | None] = {
    "voice": b"<Gather",
    "ivr": b"<Enqueue>contact-harlow</Enqueue>",
    "call-status": None,
    "recording-status": None,
}


@dataclass(frozen=True)
class Endpoint:
    port: int
    public: str  # the base URL the server signs against (its CALLGUARD_PUBLIC_BASE_URL)
    validator: RequestValidator

    def request(self, path: str, params: dict[str, str]) -> bytes:
        """One complete signed HTTP/1.1 form POST (`path` may hold a query)."""
        body = urlencode(params).encode("ascii")
        signature = self.validator.compute_signature(self.public + path, params)
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            "User-Agent: callguard-bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {signature}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode("ascii") + body


def voice(endpoint: Endpoint, account: str, call_sid: str) -> bytes:
    return endpoint.request(
        "/webhooks/twilio/voice",
        {
            "AccountSid": account,
            "CallSid": call_sid,
            "From": CALLER,
            "To": MAIN_NUMBER,
            "CallStatus": "ringing",
            "Direction": "inbound",
        },
    )


def next_kind(
    kind: str, endpoint: Endpoint, fake: FakeTwilioServer, calls: list[str]
) -> list[bytes]:
    """The requests of `kind` for `calls` (whose earlier webhooks were all answered)."""
    account = fake.account_sid
    if kind == "voice":
        return [voice(endpoint, account, sid) for sid in calls]
    if kind == "ivr":
        form = {"AccountSid": account, "CallStatus": "in-progress", "Digits": "1"}
        return [
            endpoint.request("/webhooks/twilio/ivr?step=1", {**form, "CallSid": sid})
            for sid in calls
        ]
    if kind == "call-status":
        for sid in calls:  # the caller hangs up: the fake completes the recording
            fake.platform.hangup(sid)
        form = {"AccountSid": account, "CallStatus": "completed", "SequenceNumber": "3"}
        return [
            endpoint.request("/webhooks/twilio/call-status", {**form, "CallSid": sid})
            for sid in calls
        ]
    completed: dict[str, bytes] = {}
    outbox = fake.platform.outbox
    while not outbox.empty():
        callback = outbox.get_nowait()
        if callback.params.get("RecordingStatus") == "completed":
            path = urlsplit(callback.url).path
            completed[callback.params["CallSid"]] = endpoint.request(path, dict(callback.params))
    missing = [sid for sid in calls if sid not in completed]
    if missing:
        raise BenchError(f"{len(missing)} calls without a completed recording, e.g. {missing[0]}")
    return [completed[sid] for sid in calls]


def webhook_kinds(
    callguard: Endpoint, baseline: Endpoint, fake: FakeTwilioServer, args: argparse.Namespace
) -> list[Result]:
    """The baseline, then each kind over every call (warm-up calls first, unmeasured)."""
    new_calls = lambda n: ["CA" + secrets.token_hex(16) for _ in range(n)]  # noqa: E731
    warm, measured = new_calls(args.warmup), new_calls(args.requests)

    async def run() -> list[Result]:
        base = [
            voice(baseline, fake.account_sid, sid) for sid in new_calls(args.warmup + args.requests)
        ]
        results = []
        for name, port, requests, expect in [
            ("baseline (def+form)", baseline.port, base, b"<Gather"),
            *((kind, callguard.port, None, EXPECT[kind]) for kind in EXPECT),
        ]:
            if requests is None:
                requests = next_kind(name, callguard, fake, warm + measured)
            split = len(requests) - args.requests
            for part, label in ((requests[:split], " (warm-up)"), (requests[split:], "")):
                result = await load(
                    name + label, port, part, args.concurrency, args.timeout, expect
                )
                if result.errors or not label:
                    results.append(result)
                if result.errors:
                    return results
        return results

    return run_async(run())


def payment_rounds(
    agent: Agent, rounds: int, latency: float
) -> tuple[list[float], list[float], list[str]]:
    """Callguard's own time of each measured payment start: the round trip less the
    injected latency (issue 17's measure), and less the whole time the fake took to answer
    callguard's requests, as the fake measured it (its checking of each request against
    Twilio's OpenAPI description is the platform's time too)."""
    fake = agent.fake
    own, own_of_platform, errors = [], [], []
    fake.latency = latency
    try:
        for index in range(rounds + 2):  # two unmeasured first
            try:
                took, _, platform = agent.round()
            except (RoundError, OSError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                break
            if index >= 2:
                own.append(took - latency)
                own_of_platform.append(took - platform)
    finally:
        fake.latency = 0.0
    return own, own_of_platform, errors


def percentile_ms(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, int(q * len(ordered) + 0.999999) - 1)] * 1000 if ordered else float("nan")


def report(
    results: Sequence[Result], own: Sequence[float], own_of_platform: Sequence[float]
) -> bool:
    """Prints the figures; whether issue 17's two conditions hold."""
    base = results[0].throughput
    by_name = {r.name: r for r in results}
    voice_ratio = by_name["voice"].throughput / base
    print(
        f"{'':22} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'ratio':>7} {'/ voice':>8}"
    )
    met = True
    for r in results:
        ratio = r.throughput / base
        versus = f"{ratio / voice_ratio:8.2f}" if r.name in EXPECT else ""
        met &= r.name not in EXPECT or ratio >= voice_ratio
        print(
            f"{r.name:22} {len(r.latencies):>9} {r.throughput:>9.1f} {r.percentile_ms(0.5):>8.2f} "
            f"{r.percentile_ms(0.99):>8.2f} {ratio:>7.3f} {versus:>8}"
        )
    voice_p50 = by_name["voice"].percentile_ms(0.5)
    own_p50 = percentile_ms(own, 0.5)
    print(
        f"\npayment start, +{LATENCY_MS:g} ms on every Twilio request, {len(own)} rounds: "
        f"callguard's own time p50 {own_p50:.2f} ms, p90 {percentile_ms(own, 0.9):.2f} ms, "
        f"mean {statistics.fmean(own) * 1000:.2f} ms (the voice webhook's p50 above: "
        f"{voice_p50:.2f} ms)"
    )
    print(
        f"  less the fake's whole time instead (latency and its own checking, as it measured "
        f"them): p50 {percentile_ms(own_of_platform, 0.5):.2f} ms, "
        f"p90 {percentile_ms(own_of_platform, 0.9):.2f} ms"
    )
    met &= own_p50 <= voice_p50
    print(
        "issue 17: each webhook's ratio >= the voice webhook's, and the payment start's own "
        f"p50 <= the voice webhook's p50: {'MET' if met else 'NOT MET'}"
    )
    return met


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Benchmark every webhook and the payment start.")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-server", default=PG_SERVER, help="PostgreSQL server (loopback)")
    parser.add_argument("--requests", type=int, help="measured calls, each kind once (2000)")
    parser.add_argument("--concurrency", type=int, help="concurrent connections (8)")
    parser.add_argument("--warmup", type=int, help="unmeasured calls first (10%%, >= 20)")
    parser.add_argument("--rounds", type=int, help="measured payment starts (50)")
    parser.add_argument("--timeout", type=float, help="seconds for each load (300; quick 60)")
    parser.add_argument("--quick", action="store_true", help="CI: 100 calls, 4 connections")
    args = parser.parse_args(argv)
    args.requests = args.requests or (100 if args.quick else 2000)
    args.concurrency = args.concurrency or (4 if args.quick else 8)
    args.warmup = args.warmup if args.warmup is not None else max(20, args.requests // 10)
    args.rounds = args.rounds or (10 if args.quick else 50)
    args.timeout = args.timeout or (60.0 if args.quick else 300.0)
    if not (1 <= args.requests <= 50_000 and 1 <= args.concurrency <= 256):
        parser.error("--requests 1-50000, --concurrency 1-256")
    if not (1 <= args.warmup <= 5_000 and 1 <= args.rounds <= 1_000):
        parser.error("--warmup 1-5000, --rounds 1-1000")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_signals()
    mode = "quick" if args.quick else "full"
    print(
        f"== callguard webhook kinds ({mode}): {args.database}, {args.requests} calls, "
        f"{args.concurrency} connections, {args.warmup} warm-up calls, {args.rounds} payment "
        "rounds ==",
        flush=True,
    )
    try:
        with contextlib.ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cg-bench-")))
            if args.database == "postgres":
                database_url = stack.enter_context(postgres_database(args.pg_server))
            else:
                database_url = f"sqlite:///{workdir / 'callguard.db'}"
            fake = start_fake(0.0)
            stack.callback(fake.stop)
            port, baseline_port = free_ports(2)
            env = twilio_env(database_url, port, fake)
            migrate(env, workdir)
            token = add_supervisor(env, workdir)
            servers = [
                Server(
                    "callguard",
                    [*callguard_command(), "serve"],
                    port,
                    env,
                    workdir,
                    workdir / "callguard.log",
                ),
                Server(
                    "baseline",
                    [
                        sys.executable,
                        str(BENCH / "baseline_app.py"),
                        "--port",
                        str(baseline_port),
                        "--style",
                        "form",
                    ],
                    baseline_port,
                    env,
                    workdir,
                    workdir / "baseline.log",
                ),
            ]
            for server in servers:
                stack.enter_context(running(server))
            for server in servers:
                server.wait_healthy()
            public = env["CALLGUARD_PUBLIC_BASE_URL"]
            validator = RequestValidator(fake.auth_token)
            callguard = Endpoint(port, public, validator)
            baseline = Endpoint(baseline_port, f"http://127.0.0.1:{baseline_port}", validator)
            t0 = time.monotonic()
            # Payment starts first: the webhooks' completed recordings would set the
            # fingerprint pass fetching audio, at the injected latency, beside them.
            client = Client(port)
            stack.callback(client.close)
            agent = Agent(client, fake, public, token)
            own, own_of_platform, errors = payment_rounds(agent, args.rounds, LATENCY_MS / 1000)
            results = [] if errors else webhook_kinds(callguard, baseline, fake, args)
            errors += [e for r in results for e in r.errors]
            errors += [
                f"the real Twilio API would refuse {v.method} {v.path}: {v.message}"
                for v in fake.violations
            ]
            print(f"measured in {time.monotonic() - t0:.1f}s", flush=True)
            if errors:
                for message in sorted(set(errors), key=errors.index)[:5]:
                    print(f"  {message}", file=sys.stderr)
                print(f"\n-- callguard log (tail) --\n{tail(servers[0].log)}", file=sys.stderr)
                print("\nFAIL: requests failed", file=sys.stderr)
                return 1
            met = report(results, own, own_of_platform)
    except BenchError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        return 130
    if args.quick:
        print("(quick mode: the conditions are informative only)")
        return 0
    return 0 if met else 3


if __name__ == "__main__":
    sys.exit(main())
