"""End-to-end benchmark of pause-for-payment, against a Twilio-compatible server with latency.

The agent's `POST /api/v1/calls/{sid}/payment/start` is answered `confirmed: true` only once
Twilio has confirmed the pause: one Twilio request (UpdateCallRecording, Status=paused). So
the round trip can never beat Twilio's latency; the question is how much callguard adds.

* the fake Twilio (tests/twilio_fake: every request checked against Twilio's OpenAPI) runs
  in this process on 127.0.0.1 and waits `--latency-ms` before answering every request;
* callguard (`callguard serve`, migrated first with `callguard migrate`) runs as a
  subprocess with CALLGUARD_PROVIDER=twilio and the fake as its API base URL; a supervisor
  is made with `callguard users add bench --role supervisor`.

Each round is one call: the fake learns the call; the signed voice webhook to the main
number and the IVR webhook (step 1, Digits=1: Contact Harlow, recorded: the recording
starts at the fake); then payment/start is timed (anything but 200 `confirmed: true` is an
error); then payment/end; then the hang-up (the fake's call ends, signed call-status
completed). Rounds alternate between the injected latency and none, so both see the same
database and process state: the 0 ms rounds give callguard's own overhead (plus the
fake's, a fraction of a millisecond). Reported: p50, p90 and max of the pause round trip,
and p50/latency and p90/latency, judged on p50 against TARGET_RATIO.

    python bench/controls.py                        # full: 100 + 100 rounds, SQLite
    python bench/controls.py --database postgres    # own database callguard_bench_<pid>
    python bench/controls.py --quick                # CI: 15 + 15 rounds, exit 0 whatever

Exit status: 0 done (and, in full mode, ratio met); 1 an error (a non-confirmed pause, a
failed webhook, a request the real Twilio API would refuse, a server/migration failure);
3 full mode and the p50 ratio is above target. Loopback only and bounded in count and time;
the servers (and the PostgreSQL database, if any) are removed on exit, also on Ctrl-C or
SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import http.client
import json
import math
import os
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator
from webhook import (
    PG_SERVER,
    BenchError,
    Server,
    callguard_command,
    free_ports,
    migrate,
    postgres_database,
    running,
    tail,
    unwind_on_signals,
)

if TYPE_CHECKING:
    from tests.twilio_fake.server import FakeTwilioServer

ROOT = Path(__file__).resolve().parent.parent

TARGET_RATIO = 1.5  # pause round trip / Twilio latency, at p50
MAIN_NUMBER = "+441632960655"
CALLER = "+447700900123"
EXPECT_QUEUE = "<Enqueue>contact-harlow</Enqueue>"  # IVR step 1, Digits=1
WARMUP_ROUNDS = 5  # unmeasured: threads, SDK clients and connections are made here
MAX_ERRORS = 10  # stop early after this many failed rounds

REQUEST_TIMEOUT = 30.0  # seconds for one response
USERS_TIMEOUT = 60.0


# -- setup ---------------------------------------------------------------------------------


def server_env(database_url: str, port: int, fake: FakeTwilioServer) -> dict[str, str]:
    """The environment without any inherited callguard/Twilio settings, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLGUARD_", "TWILIO_"))}
    env.update(
        CALLGUARD_DATABASE_URL=database_url,
        CALLGUARD_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        CALLGUARD_HOST="127.0.0.1",
        CALLGUARD_PORT=str(port),
        CALLGUARD_PROVIDER="twilio",
        CALLGUARD_TWILIO_API_BASE_URL=fake.base_url,
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


def add_supervisor(env: dict[str, str], cwd: Path) -> str:
    """`callguard users add bench --role supervisor`: the token is the last line printed."""
    try:
        result = subprocess.run(
            [*callguard_command(), "users", "add", "bench", "--role", "supervisor"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=USERS_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"callguard users add took over {USERS_TIMEOUT:.0f}s") from None
    lines = result.stdout.decode("utf-8", errors="replace").strip().splitlines()
    if result.returncode != 0 or not lines:
        output = (result.stdout + result.stderr).decode("utf-8", errors="replace")
        raise BenchError(f"callguard users add failed ({result.returncode}):\n{output[-3000:]}")
    return lines[-1].strip()


def start_fake(latency: float) -> FakeTwilioServer:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.twilio_fake.server import FakeTwilioServer

    fake = FakeTwilioServer(latency=latency)
    fake.start()
    return fake


def check_latency(fake: FakeTwilioServer, latency: float) -> None:
    """One direct request to the fake (FetchCall) must take at least the latency."""
    call_sid = fake.platform.add_call()
    host, _, port = fake.base_url.removeprefix("http://").partition(":")
    credentials = base64.b64encode(f"{fake.account_sid}:{fake.auth_token}".encode()).decode()
    connection = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT)
    try:
        start = time.perf_counter()
        connection.request(
            "GET",
            f"/2010-04-01/Accounts/{fake.account_sid}/Calls/{call_sid}.json",
            headers={"Authorization": f"Basic {credentials}"},
        )
        response = connection.getresponse()
        response.read()
        took = time.perf_counter() - start
    finally:
        connection.close()
    if response.status != 200:
        raise BenchError(f"fake Twilio: FetchCall answered {response.status}")
    if took < latency:
        raise BenchError(f"fake Twilio answered in {took * 1000:.1f} ms, under its latency")


# -- the agent and the platform ------------------------------------------------------------


class Client:
    """One keep-alive HTTP/1.1 connection to callguard, reopened (untimed) when idle."""

    IDLE = 2.0  # seconds; uvicorn closes idle connections after 5

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection: http.client.HTTPConnection | None = None
        self.last_used = 0.0

    def ready(self) -> None:
        if self.connection is not None and time.monotonic() - self.last_used > self.IDLE:
            self.close()
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=REQUEST_TIMEOUT
            )
            self.connection.connect()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        self.ready()
        assert self.connection is not None
        try:
            self.connection.request("POST", path, body=body, headers=headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        self.last_used = time.monotonic()
        if response.will_close:
            self.close()
        return response.status, data

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


class RoundError(Exception):
    """This round failed: the run fails."""


@dataclass
class Agent:
    client: Client
    fake: FakeTwilioServer
    public_base_url: str
    token: str
    validator: RequestValidator = field(init=False)

    def __post_init__(self) -> None:
        self.validator = RequestValidator(self.fake.auth_token)

    def webhook(self, path: str, params: dict[str, str]) -> tuple[int, str]:
        signature = self.validator.compute_signature(self.public_base_url + path, params)
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        }
        status, body = self.client.post(path, urlencode(params).encode("ascii"), headers)
        return status, body.decode("utf-8", errors="replace")

    def control(self, call_sid: str, action: str) -> tuple[int, bytes]:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Length": "0"}
        return self.client.post(f"/api/v1/calls/{call_sid}/payment/{action}", b"", headers)

    def round(self) -> tuple[float, int, float]:
        """One call; returns the pause round trip (s), the Twilio requests it made and the
        time (s) the fake took to answer them, latency included (the platform's own)."""
        fake = self.fake
        call_sid = "CA" + secrets.token_hex(16)
        fake.platform.add_call(call_sid)
        base = {"AccountSid": fake.account_sid, "CallSid": call_sid}
        status, text = self.webhook(
            "/webhooks/twilio/voice",
            {
                **base,
                "From": CALLER,
                "To": MAIN_NUMBER,
                "CallStatus": "ringing",
                "Direction": "inbound",
            },
        )
        if status != 200 or "<Gather" not in text:
            raise RoundError(f"voice webhook: HTTP {status}: {text[:200]!r}")
        status, text = self.webhook(
            "/webhooks/twilio/ivr?step=1", {**base, "CallStatus": "in-progress", "Digits": "1"}
        )
        if status != 200 or EXPECT_QUEUE not in text:
            raise RoundError(f"IVR webhook: HTTP {status}: {text[:200]!r}")
        recordings = fake.platform.recordings(call_sid)
        if [str(r.status) for r in recordings] != ["in-progress"]:
            raise RoundError(f"after the IVR the fake has recordings {recordings}")

        self.client.ready()  # an idle connection is reopened outside the clock
        before, answered = len(fake.requests), len(fake.handling)
        start = time.perf_counter()
        status, body = self.control(call_sid, "start")
        took = time.perf_counter() - start
        twilio_requests = len(fake.requests) - before
        platform = sum(seconds for *_, seconds in fake.handling[answered:])
        if status != 200 or _json(body).get("confirmed") is not True:
            raise RoundError(f"payment/start: HTTP {status}: {body[:200]!r}")

        status, body = self.control(call_sid, "end")
        if status != 200:
            raise RoundError(f"payment/end: HTTP {status}: {body[:200]!r}")
        fake.platform.hangup(call_sid)
        status, text = self.webhook(
            "/webhooks/twilio/call-status",
            {**base, "CallStatus": "completed", "SequenceNumber": "5"},
        )
        if status not in (200, 204):
            raise RoundError(f"call-status webhook: HTTP {status}: {text[:200]!r}")
        while not fake.platform.outbox.empty():  # recording callbacks: not needed here
            fake.platform.outbox.get_nowait()
        return took, twilio_requests, platform


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- the run -------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    latency: float  # the injected Twilio latency, seconds
    times: list[float] = field(default_factory=list)
    twilio_requests: list[int] = field(default_factory=list)

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the pause round trips."""
        if not self.times:
            return math.nan
        ordered = sorted(self.times)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000

    def ratio(self, q: float) -> float:
        return self.percentile_ms(q) / (self.latency * 1000) if self.latency else math.nan


def run_rounds(
    agent: Agent, latency: float, rounds: int, timeout: float
) -> tuple[list[Result], list[str]]:
    """WARMUP_ROUNDS unmeasured, then `rounds` at each latency, alternating."""
    fake = agent.fake
    idle = Result("Twilio +0 ms", 0.0)
    loaded = Result(f"Twilio +{latency * 1000:.0f} ms", latency)
    errors: list[str] = []
    deadline = time.monotonic() + timeout
    plan = [None] * WARMUP_ROUNDS + [loaded, idle] * rounds
    try:
        for result in plan:
            if time.monotonic() > deadline:
                errors.append(f"run deadline ({timeout:.0f}s) passed")
                break
            fake.latency = latency if result is None else result.latency
            try:
                took, requests, _ = agent.round()
            except (RoundError, OSError, http.client.HTTPException) as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
                if len(errors) >= MAX_ERRORS:
                    errors.append(f"stopped after {MAX_ERRORS} errors")
                    break
                continue
            if result is not None:
                result.times.append(took)
                result.twilio_requests.append(requests)
    finally:
        fake.latency = 0.0
    errors += [
        f"the real Twilio API would refuse {v.method} {v.path}: {v.status} ({v.code}) {v.message}"
        for v in fake.violations
    ]
    return [idle, loaded], errors


# -- report --------------------------------------------------------------------------------


def report(results: Sequence[Result], errors: Sequence[str]) -> None:
    print(
        f"{'pause round trip':18} {'rounds':>7} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8} "
        f"{'Twilio requests':>16}"
    )
    for r in results:
        counts = sorted(set(r.twilio_requests))
        print(
            f"{r.name:18} {len(r.times):>7} {r.percentile_ms(0.5):>8.2f} "
            f"{r.percentile_ms(0.9):>8.2f} {r.percentile_ms(1.0):>8.2f} "
            f"{'/'.join(map(str, counts)) or '-':>16}"
        )
    if errors:
        distinct = sorted(set(errors), key=errors.index)
        print(f"\n{len(errors)} errors, e.g.:", file=sys.stderr)
        for message in distinct[:5]:
            print(f"  {message}", file=sys.stderr)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark pause-for-payment against a Twilio-compatible server with latency.",
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-server",
        default=PG_SERVER,
        help="PostgreSQL server (loopback) on which callguard_bench_<pid> is created/dropped",
    )
    parser.add_argument("--rounds", type=int, help="measured rounds at each latency (100)")
    parser.add_argument(
        "--latency-ms", type=float, default=50.0, help="wait before every Twilio answer (50)"
    )
    parser.add_argument("--timeout", type=float, help="seconds allowed for the rounds (300)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI: 15 rounds; exit 0 whatever the ratio, 1 on any error",
    )
    args = parser.parse_args(argv)
    if args.rounds is None:
        args.rounds = 15 if args.quick else 100
    if args.timeout is None:
        args.timeout = 60.0 if args.quick else 300.0
    if not 1 <= args.rounds <= 10_000:
        parser.error("--rounds must be between 1 and 10000")
    if not 1 <= args.latency_ms <= 5_000:
        parser.error("--latency-ms must be between 1 and 5000")
    if not 0 < args.timeout <= 1800:
        parser.error("--timeout must be between 0 and 1800 seconds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_signals()
    latency = args.latency_ms / 1000
    mode = "quick" if args.quick else "full"
    print(
        f"== callguard pause-for-payment benchmark ({mode}): {args.database}, "
        f"{args.rounds} rounds at +{args.latency_ms:g} ms and at +0 ms Twilio latency, "
        f"{WARMUP_ROUNDS} warm-up ==",
        flush=True,
    )
    try:
        with contextlib.ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cg-bench-")))
            if args.database == "postgres":
                database_url = stack.enter_context(postgres_database(args.pg_server))
            else:
                database_url = f"sqlite:///{workdir / 'callguard.db'}"
            fake = start_fake(latency)
            stack.callback(fake.stop)
            check_latency(fake, latency)
            (port,) = free_ports(1)
            env = server_env(database_url, port, fake)
            t0 = time.monotonic()
            migrate(env, workdir)
            print(f"migrated in {time.monotonic() - t0:.1f}s", flush=True)
            token = add_supervisor(env, workdir)
            server = Server(
                "callguard",
                [*callguard_command(), "serve"],
                port,
                env,
                workdir,
                workdir / "callguard.log",
            )
            stack.enter_context(running(server))
            server.wait_healthy()
            client = Client(port)
            stack.callback(client.close)
            agent = Agent(client, fake, env["CALLGUARD_PUBLIC_BASE_URL"], token)
            results, errors = run_rounds(agent, latency, args.rounds, args.timeout)
            report(results, errors)
            if errors:
                print(f"\n-- callguard log (tail) --\n{tail(server.log)}", file=sys.stderr)
                print("\nFAIL: rounds failed", file=sys.stderr)
                return 1
    except BenchError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        return 130

    idle, loaded = results
    p50, p90 = loaded.ratio(0.5), loaded.ratio(0.9)
    met = p50 <= TARGET_RATIO
    print(
        f"\ncallguard's own overhead (+0 ms): p50 {idle.percentile_ms(0.5):.2f} ms; "
        f"at +{args.latency_ms:g} ms it adds p50 {loaded.percentile_ms(0.5) - args.latency_ms:.2f}"
        f" ms over the latency"
    )
    print(
        f"ratio round trip/latency: p50 {p50:.2f}x, p90 {p90:.2f}x "
        f"(target p50 <= {TARGET_RATIO:.2f}x): {'MET' if met else 'BELOW TARGET'}"
    )
    if args.quick:
        print("(quick mode: the ratio is informative only)")
        return 0
    return 0 if met else 3


if __name__ == "__main__":
    sys.exit(main())
