"""End-to-end benchmark of the voice webhook, against a bare FastAPI baseline.

Real uvicorn servers run on 127.0.0.1 (free ports) in the same run:

* callguard (`callguard serve`, migrated first with `callguard migrate`): signature check,
  database (webhook receipt, call row, audit events), policy decision and TwiML;
* the baselines (bench/baseline_app.py): same path, same uvicorn options, a constant TwiML,
  from an `async` endpoint that does not read the form and from a `def` one that does;
* the ceiling (bench/fixed_cost_app.py): callguard itself, middleware and signature check
  included, with the voice handler answering the same constant: what callguard costs
  before the handler does anything, so the most any handler could reach;
* on PostgreSQL, the round trips' floor: the `def`+form baseline sending --statements
  trivial statements in a transaction through psycopg (BEGIN, each statement and COMMIT a
  round trip, as callguard's are), so the most a handler sending that many could reach
  even if it did nothing else.

All get the same load from the same client: every request is a new call (a fresh CallSid)
to the main number, a properly signed form, and is expected to be answered 200 with the
IVR menu (<Gather>). Reported for each: throughput, p50 and p99 latency; then the ratio of
callguard's throughput to the `def` baseline's, judged against TARGET_RATIO (issue 17:
per database), and the ceiling's ratio, judged against CEILING_TARGET.

The client is a minimal HTTP/1.1 keep-alive client on asyncio (C connections, one request
in flight on each). It is deliberately light: on a small machine the client shares the
CPUs with the server under test, and a heavy client would cap the baseline and flatter
the ratio. All request bodies and signatures are built before the clock starts.

    python bench/webhook.py                       # full: 3000 requests, SQLite
    python bench/webhook.py --database postgres   # own database callguard_bench_<pid>
    python bench/webhook.py --quick               # CI: small, exit 0 whatever the ratio

Exit status: 0 done (and, in full mode, both targets met); 1 a request failed (non-200,
wrong body, timeout) or a server/migration failed; 3 full mode and a target is missed.
Everything is loopback only and bounded in count and time; the servers (and the
PostgreSQL database, if any) are removed on exit, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Coroutine, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent

# Issue 17: callguard / bare `def`+form, with the same work done; the fixed cost (the
# ceiling) at least CEILING_TARGET of bare on both.
TARGET_RATIO = {"sqlite": 0.30, "postgres": 0.25}
# The statements callguard's voice webhook sends on PostgreSQL in its transaction, as
# bench/inprocess.py --database postgres counts them (plus BEGIN and COMMIT).
STATEMENTS = 7
CEILING_TARGET = 0.60
MAIN_NUMBER = "+441632960655"
CALLER = "+447700900123"
ACCOUNT_SID = "AC" + "1" * 32
VOICE_PATH = "/webhooks/twilio/voice"
EXPECT = b"<Gather"  # the IVR menu; anything else (e.g. the fail-safe) is an error
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LOOPBACK = ("127.0.0.1", "localhost", "::1")

STARTUP_TIMEOUT = 60.0  # seconds for a server to answer /healthz
REQUEST_TIMEOUT = 30.0  # seconds for one response
MIGRATE_TIMEOUT = 120.0


class BenchError(RuntimeError):
    """The run cannot go on (a server or the database failed)."""


# -- processes -----------------------------------------------------------------------------


def _unwind(_signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def unwind_on_signals() -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, so every `finally` (servers, databases,
    temporary files) runs."""
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _unwind)


def free_ports(count: int) -> list[int]:
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def callguard_command() -> list[str]:
    """The `callguard` script of this interpreter's environment (else the same entry point)."""
    script = shutil.which("callguard", path=str(Path(sys.executable).parent))
    if script:
        return [script]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def server_env(database_url: str, port: int, token: str) -> dict[str, str]:
    """The environment without any inherited callguard/Twilio settings, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLGUARD_", "TWILIO_"))}
    env.update(
        CALLGUARD_DATABASE_URL=database_url,
        CALLGUARD_PUBLIC_BASE_URL=f"http://127.0.0.1:{port}",
        CALLGUARD_HOST="127.0.0.1",
        CALLGUARD_PORT=str(port),
        TWILIO_AUTH_TOKEN=token,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


def tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


@dataclass
class Server:
    name: str
    command: list[str]
    port: int
    env: dict[str, str]
    cwd: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("wb") as out:
            # Own session: the whole process group is signalled on stop.
            self.process = subprocess.Popen(
                self.command,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def wait_healthy(self, timeout: float = STARTUP_TIMEOUT) -> None:
        assert self.process is not None
        url = f"http://127.0.0.1:{self.port}/healthz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.process.returncode} before it was healthy:"
                    f"\n{tail(self.log)}"
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.1)
        raise BenchError(f"{self.name}: no 200 from {url} within {timeout:.0f}s:\n{tail(self.log)}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            try:
                process.wait(timeout=grace)
                return
            except subprocess.TimeoutExpired:
                continue


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    try:
        server.start()
        yield server
    finally:
        server.stop()


def migrate(env: dict[str, str], cwd: Path) -> None:
    try:
        result = subprocess.run(
            [*callguard_command(), "migrate"],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=MIGRATE_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"callguard migrate took over {MIGRATE_TIMEOUT:.0f}s") from None
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode("utf-8", errors="replace")
        raise BenchError(f"callguard migrate failed ({result.returncode}):\n{output[-3000:]}")


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    """A database of its own on the (loopback) server, dropped on exit."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    url = make_url(server_url)
    if (url.host or "127.0.0.1") not in LOOPBACK:
        raise BenchError(f"--pg-server must be on loopback, not {url.host}")
    name = f"callguard_bench_{os.getpid()}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


# -- load ----------------------------------------------------------------------------------


def signed_requests(port: int, token: str, count: int) -> list[bytes]:
    """`count` complete HTTP requests, each a new call with a valid X-Twilio-Signature for
    the URL the server believes it is (its CALLGUARD_PUBLIC_BASE_URL + path)."""
    validator = RequestValidator(token)
    url = f"http://127.0.0.1:{port}{VOICE_PATH}"
    requests = []
    for _ in range(count):
        params = {
            "AccountSid": ACCOUNT_SID,
            "CallSid": "CA" + secrets.token_hex(16),
            "From": CALLER,
            "To": MAIN_NUMBER,
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        body = urlencode(params).encode("ascii")
        head = (
            f"POST {VOICE_PATH} HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "User-Agent: callguard-bench\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {validator.compute_signature(url, params)}\r\n"
            f"Content-Length: {len(body)}\r\n"
            "\r\n"
        )
        requests.append(head.encode("ascii") + body)
    return requests


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, server closes) of one HTTP/1.1 response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    if status in (204, 304):  # never a body (RFC 9110 6.4.1), and no length to say so
        return status, b"", any(line.lower() == b"connection: close" for line in lines)
    length: int | None = None
    chunked = close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            close = value == b"close"
    if chunked:
        body = bytearray()
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            body += await reader.readexactly(size)
            await reader.readexactly(2)
        while await reader.readuntil(b"\r\n") != b"\r\n":  # trailers
            pass
        return status, bytes(body), close
    if length is None:
        return status, await reader.read(), True
    return status, await reader.readexactly(length), close


@dataclass
class Result:
    name: str
    sent: int
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        """Nearest-rank percentile of the successful requests' latencies."""
        if not self.latencies:
            return math.nan
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


async def _connection(
    port: int, work: Iterator[bytes], result: Result, deadline: float, expect: bytes | None
) -> None:
    """One client: takes the next request from the shared iterator until none is left.
    Each answer must be 200 holding `expect`, or, when `expect` is None, any 2xx."""
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    try:
        for request in work:
            if time.monotonic() > deadline:
                result.errors.append("run deadline passed")
                return
            try:
                async with asyncio.timeout(REQUEST_TIMEOUT):
                    if writer is None:
                        reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    assert reader is not None
                    start = time.perf_counter()
                    writer.write(request)
                    status, body, close = await read_response(reader)
                    latency = time.perf_counter() - start
            except (OSError, EOFError, TimeoutError, ValueError, IndexError) as exc:
                # EOFError covers asyncio.IncompleteReadError (the server closed mid-response).
                result.errors.append(f"{type(exc).__name__}: {exc}".strip())
                close = True
            except asyncio.LimitOverrunError as exc:
                result.errors.append(f"response head too long: {exc}")
                close = True
            else:
                if not (status == 200 if expect else 200 <= status < 300):
                    result.errors.append(f"HTTP {status}: {body[:200]!r}")
                elif expect and expect not in body:
                    result.errors.append(f"200 without {expect.decode()}: {body[:200]!r}")
                else:
                    result.latencies.append(latency)
            if close and writer is not None:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


async def load(
    name: str,
    port: int,
    requests: Sequence[bytes],
    concurrency: int,
    timeout: float,
    expect: bytes | None = EXPECT,
) -> Result:
    """Send every request once over `concurrency` keep-alive connections."""
    result = Result(name, len(requests))
    work = iter(requests)  # shared: next() is atomic within the event loop
    deadline = time.monotonic() + timeout
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout + REQUEST_TIMEOUT):
            await asyncio.gather(
                *(_connection(port, work, result, deadline, expect) for _ in range(concurrency))
            )
    except TimeoutError:
        result.errors.append(f"load did not finish within {timeout:.0f}s")
    result.elapsed = time.perf_counter() - started
    missing = len(requests) - len(result.latencies) - len(result.errors)
    if missing > 0:
        result.errors.append(f"{missing} requests never sent (deadline)")
    return result


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    warmup: list[bytes]
    measured: list[bytes]


async def run_load(targets: Sequence[Target], concurrency: int, timeout: float) -> list[Result]:
    for target in targets:
        warm = await load(target.name, target.port, target.warmup, concurrency, timeout)
        if warm.errors:
            warm.name += " (warm-up)"
            return [warm]
    return [
        await load(target.name, target.port, target.measured, concurrency, timeout)
        for target in targets
    ]


def run_async(coroutine: Coroutine[Any, Any, list[Result]]) -> list[Result]:
    """uvloop for the client when installed (it is, with uvicorn[standard]): lighter."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coroutine)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(coroutine)


# -- report --------------------------------------------------------------------------------


def report(results: Sequence[Result]) -> None:
    print(f"{'':20} {'requests':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in results:
        print(
            f"{r.name:20} {len(r.latencies):>9} {r.throughput:>9.1f} "
            f"{r.percentile_ms(0.50):>8.2f} {r.percentile_ms(0.99):>8.2f} {len(r.errors):>7}"
        )
    for r in results:
        if r.errors:
            distinct = sorted(set(r.errors), key=r.errors.index)
            print(f"\n{r.name}: {len(r.errors)} errors, e.g.:", file=sys.stderr)
            for message in distinct[:5]:
                print(f"  {message}", file=sys.stderr)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark callguard's voice webhook against a bare FastAPI endpoint.",
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-server",
        default=PG_SERVER,
        help="PostgreSQL server (loopback) on which callguard_bench_<pid> is created/dropped",
    )
    parser.add_argument("--requests", type=int, help="measured requests per server (3000)")
    parser.add_argument("--concurrency", type=int, help="concurrent connections (8)")
    parser.add_argument(
        "--statements",
        type=int,
        default=STATEMENTS,
        help=f"PostgreSQL: statements in the round trips' floor ({STATEMENTS})",
    )
    parser.add_argument("--warmup", type=int, help="unmeasured requests first (10%%, >= 20)")
    parser.add_argument(
        "--timeout", type=float, help="seconds allowed for each server's load (300; quick 60)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI: 200 requests, 4 connections; exit 0 whatever the ratio, 1 on any error",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    if args.requests is None:
        args.requests = 200 if quick else 3000
    if args.concurrency is None:
        args.concurrency = 4 if quick else 8
    if args.warmup is None:
        args.warmup = max(20, args.requests // 10)
    if args.timeout is None:
        args.timeout = 60.0 if quick else 300.0
    if not 1 <= args.requests <= 100_000:
        parser.error("--requests must be between 1 and 100000")
    if not 1 <= args.concurrency <= 256:
        parser.error("--concurrency must be between 1 and 256")
    if not 0 <= args.warmup <= 10_000:
        parser.error("--warmup must be between 0 and 10000")
    if not 0 < args.timeout <= 1800:
        parser.error("--timeout must be between 0 and 1800 seconds")
    if not 0 <= args.statements <= 100:
        parser.error("--statements must be between 0 and 100")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_signals()
    mode = "quick" if args.quick else "full"
    print(
        f"== callguard webhook benchmark ({mode}): {args.database}, {args.requests} requests, "
        f"{args.concurrency} connections, {args.warmup} warm-up ==",
        flush=True,
    )
    try:
        with contextlib.ExitStack() as stack:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cg-bench-")))
            if args.database == "postgres":
                database_url = stack.enter_context(postgres_database(args.pg_server))
            else:
                database_url = f"sqlite:///{workdir / 'callguard.db'}"
            baseline_port, form_port, fixed_port, callguard_port, trips_port = free_ports(5)
            token = secrets.token_hex(20)
            env = server_env(database_url, callguard_port, token)
            t0 = time.monotonic()
            migrate(env, workdir)
            print(f"migrated in {time.monotonic() - t0:.1f}s", flush=True)
            servers = [
                Server(
                    "baseline (async)",
                    [sys.executable, str(BENCH / "baseline_app.py"), "--port", str(baseline_port)],
                    baseline_port,
                    env,
                    workdir,
                    workdir / "baseline.log",
                ),
                Server(
                    "baseline (def+form)",
                    [
                        sys.executable,
                        str(BENCH / "baseline_app.py"),
                        "--port",
                        str(form_port),
                        "--style",
                        "form",
                    ],
                    form_port,
                    env,
                    workdir,
                    workdir / "baseline-form.log",
                ),
                Server(
                    "callguard fixed cost",
                    [sys.executable, str(BENCH / "fixed_cost_app.py"), "--port", str(fixed_port)],
                    fixed_port,
                    # Same database (it writes nothing per request); its own public URL.
                    server_env(database_url, fixed_port, token),
                    workdir,
                    workdir / "fixed-cost.log",
                ),
                Server(
                    "callguard",
                    [*callguard_command(), "serve"],
                    callguard_port,
                    env,
                    workdir,
                    workdir / "callguard.log",
                ),
            ]
            if args.database == "postgres":
                servers.append(
                    Server(
                        f"floor: {args.statements} stmts",
                        [
                            sys.executable,
                            str(BENCH / "baseline_app.py"),
                            "--port",
                            str(trips_port),
                            "--style",
                            "trips",
                        ],
                        trips_port,
                        env | {"CALLGUARD_BENCH_STATEMENTS": str(args.statements)},
                        workdir,
                        workdir / "baseline-trips.log",
                    )
                )
            for server in servers:
                stack.enter_context(running(server))
            for server in servers:
                server.wait_healthy()
            targets = [
                Target(
                    s.name,
                    s.port,
                    signed_requests(s.port, token, args.warmup),
                    signed_requests(s.port, token, args.requests),
                )
                for s in servers
            ]
            results = run_async(run_load(targets, args.concurrency, args.timeout))
            report(results)
            if any(r.errors for r in results):
                for server in servers:
                    print(f"\n-- {server.name} log (tail) --\n{tail(server.log)}", file=sys.stderr)
                print("\nFAIL: requests failed", file=sys.stderr)
                return 1
    except BenchError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: servers stopped", file=sys.stderr)
        return 130

    floor, form, fixed, callguard = results[:4]
    ratio = callguard.throughput / form.throughput
    ceiling = fixed.throughput / form.throughput
    target = TARGET_RATIO[args.database]
    met = ratio >= target and ceiling >= CEILING_TARGET
    print(
        f"\nratio callguard / baseline (def+form): {ratio:.3f} "
        f"(target >= {target:.2f}): {'MET' if ratio >= target else 'BELOW TARGET'}"
        f"\nratio callguard / baseline (async, form unread): "
        f"{callguard.throughput / floor.throughput:.3f} (for reference)"
        f"\nceiling: callguard fixed cost / baseline (def+form): {ceiling:.3f} "
        f"(target >= {CEILING_TARGET:.2f}): {'MET' if ceiling >= CEILING_TARGET else 'BELOW'} "
        "(the app with the voice handler answering a constant: no handler could do better)"
    )
    if len(results) > 4:
        trips = results[4].throughput / form.throughput
        print(
            f"round trips' floor: baseline (def+form) sending {args.statements} statements in a "
            f"transaction / baseline (def+form): {trips:.3f} (what the round trips alone leave: "
            "a handler sending as many could not do better)"
        )
    if args.quick:
        print("(quick mode: the ratio is informative only)")
        return 0
    return 0 if met else 3


if __name__ == "__main__":
    sys.exit(main())
