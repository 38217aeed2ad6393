"""Benchmark of `callguard retention run` against a Twilio-compatible server with latency.

* the fake Twilio (tests/twilio_fake: every request checked against Twilio's OpenAPI) runs
  in this process on 127.0.0.1, holds N recordings and waits `--latency-ms` before
  answering every request;
* the database (SQLite file, or a PostgreSQL database of its own) is migrated with
  `callguard migrate` and seeded with N completed recordings, all past their date;
* `callguard retention run --concurrency C` runs as a subprocess with
  CALLGUARD_PROVIDER=twilio and the fake as its API base URL.

Each recording costs two Twilio requests one after the other: the DELETE and the fetch
that confirms it is gone (404). With C requests in flight and L seconds per request, no
run can destroy more than C / (2 L) recordings a second: that is the bound the measured
rate is reported against (target >= TARGET_RATIO). Peak RSS is the run's own high-water
mark (VmHWM, polled), target < TARGET_RSS_MB. Afterwards every recording must be destroyed
in the database and each DELETEd exactly once at the fake.

    python bench/retention.py                       # full: 100,000 recordings, 50 ms, C=16
    python bench/retention.py --database postgres   # own database callguard_bench_<pid>
    python bench/retention.py --quick               # CI: 2,000 recordings, exit 0 whatever

Exit status: 0 done (and, in full mode, both targets met); 1 an error (the run failed, a
recording not destroyed or deleted twice, a request the real API would refuse); 3 full mode
and a target missed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from webhook import (
    PG_SERVER,
    BenchError,
    callguard_command,
    migrate,
    postgres_database,
    tail,
    unwind_on_signals,
)

if TYPE_CHECKING:
    from tests.twilio_fake.server import FakeTwilioServer

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.8
TARGET_RSS_MB = 200
RUN_TIMEOUT = 3600.0
SEED_BATCH = 5000
DUE = datetime(2020, 1, 1, tzinfo=UTC)


def start_fake(latency: float) -> FakeTwilioServer:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.twilio_fake.server import FakeTwilioServer

    fake = FakeTwilioServer(latency=latency)
    fake.start()
    fake.expect_violations(20404)  # each confirming fetch answers 404: that is the point
    return fake


def run_env(database_url: str, fake: FakeTwilioServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLGUARD_", "TWILIO_"))}
    env.update(
        CALLGUARD_DATABASE_URL=database_url,
        CALLGUARD_PROVIDER="twilio",
        CALLGUARD_TWILIO_API_BASE_URL=fake.base_url,
        TWILIO_ACCOUNT_SID=fake.account_sid,
        TWILIO_AUTH_TOKEN=fake.auth_token,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONUNBUFFERED="1",
    )
    return env


def seed(database_url: str, fake: FakeTwilioServer, count: int) -> list[str]:
    """`count` ended calls, each with one completed recording the fake holds, all due."""
    from sqlalchemy import insert

    from app.storage.db import make_engine
    from app.storage.models import Call, Recording

    sids = []
    engine = make_engine(database_url)
    try:
        for start in range(0, count, SEED_BATCH):
            calls, recordings = [], []
            for _ in range(min(SEED_BATCH, count - start)):
                call_sid = fake.platform.add_call()
                sid = fake.platform.create_recording(call_sid).sid
                sids.append(sid)
                calls.append(
                    {
                        "call_sid": call_sid,
                        "department": "contact-harlow",
                        "queued": True,
                        "ended": True,
                        "status": "completed",
                        "started_at": DUE - timedelta(days=131),
                        "ended_at": DUE - timedelta(days=130),
                    }
                )
                recordings.append(
                    {
                        "recording_sid": sid,
                        "call_sid": call_sid,
                        "department": "contact-harlow",
                        "status": "completed",
                        "retention": "P130D",
                        "completed_at": DUE - timedelta(days=130),
                        "destroy_after": DUE,
                    }
                )
            with engine.begin() as connection:
                connection.execute(insert(Call), calls)
                connection.execute(insert(Recording), recordings)
    finally:
        engine.dispose()
    return sids


def not_destroyed(database_url: str) -> int:
    from sqlalchemy import func, select

    from app.storage.db import make_engine
    from app.storage.models import Recording

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            query = select(func.count()).where(Recording.destroyed_at.is_(None))
            return int(connection.execute(query).scalar_one())
    finally:
        engine.dispose()


def peak_rss_mb(pid: int) -> float | None:
    """The process's own high-water RSS (VmHWM). Not ru_maxrss: Linux carries that across
    execve, so a child forked from this (large) process would report our size."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def timed_run(
    env: dict[str, str], cwd: Path, log: Path, concurrency: int, batch: int
) -> tuple[int, float, float]:
    """(exit status, seconds, peak RSS in MB) of `callguard retention run`; the peak is
    polled every 50 ms while it runs."""
    command = [
        *callguard_command(),
        "retention",
        "run",
        "--concurrency",
        str(concurrency),
        "--batch",
        str(batch),
    ]
    peak = 0.0
    with log.open("wb") as out:
        started = time.monotonic()
        process = subprocess.Popen(
            command, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=out
        )
        try:
            while process.poll() is None:
                peak = max(peak, peak_rss_mb(process.pid) or 0.0)
                if time.monotonic() - started > RUN_TIMEOUT:
                    raise BenchError(f"retention run took over {RUN_TIMEOUT:.0f}s")
                time.sleep(0.05)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        elapsed = time.monotonic() - started
    return process.returncode, elapsed, peak


@contextlib.contextmanager
def database(kind: str, pg_server: str, workdir: Path) -> Iterator[str]:
    if kind == "postgres":
        with postgres_database(pg_server) as url:
            yield url
    else:
        yield f"sqlite:///{workdir / 'bench.db'}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recordings", type=int, default=100_000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch", type=int, default=200, help="recordings per claim")
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--pg-server", default=PG_SERVER)
    parser.add_argument("--quick", action="store_true", help="2,000 recordings; exit 0 whatever")
    args = parser.parse_args(argv)
    if args.quick:
        args.recordings = min(args.recordings, 2000)
    if args.recordings < 1 or args.concurrency < 1 or args.latency_ms <= 0:
        parser.error("recordings, concurrency and latency must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_signals()
    latency = args.latency_ms / 1000
    fake = start_fake(latency)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="callguard-bench-") as tmp,
            database(args.database, args.pg_server, Path(tmp)) as url,
        ):
            workdir = Path(tmp)
            env = run_env(url, fake)
            migrate(env, workdir)
            print(f"seeding {args.recordings:,} due recordings ({args.database})…", flush=True)
            sids = seed(url, fake, args.recordings)
            log = workdir / "retention.log"
            print(
                f"callguard retention run: latency {args.latency_ms:.0f} ms, "
                f"concurrency {args.concurrency}",
                flush=True,
            )
            status, elapsed, rss = timed_run(env, workdir, log, args.concurrency, args.batch)
            if status != 0:
                raise BenchError(f"retention run exited {status}:\n{tail(log)}")
            left = not_destroyed(url)
            deleted = Counter(r.path for r in fake.requests if r.method == "DELETE")
            twice = sum(1 for n in deleted.values() if n > 1)
            problems = fake.unexpected_violations()
            if left or len(deleted) != len(sids) or twice or problems:
                raise BenchError(
                    f"{left} not destroyed, {len(deleted)} of {len(sids)} deleted, {twice} "
                    f"deleted twice, {len(problems)} refused requests:\n{tail(log)}"
                )
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        fake.stop()
    rate = len(sids) / elapsed
    bound = args.concurrency / (2 * latency)
    ratio = rate / bound
    print(f"destroyed {len(sids):,} in {elapsed:.1f} s: {rate:.1f} recordings/s")
    print(
        f"bound C/(2L) = {bound:.1f}/s; ratio {ratio:.2f} (target >= {TARGET_RATIO}); "
        f"peak RSS {rss:.0f} MB (target < {TARGET_RSS_MB} MB)"
    )
    if args.quick or (ratio >= TARGET_RATIO and rss < TARGET_RSS_MB):
        return 0
    return 3


if __name__ == "__main__":
    sys.exit(main())
