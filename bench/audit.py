"""Benchmark of the audit log: appending (sequenced), and verifying the whole log.

1. Append throughput (bench/audit_appends.py): transactions of one `audit.append` each
   through the app's own path, by 1 writer and by `--writers` threads at once, each run on
   a freshly migrated database: the log as it is (app/audit/sequencer.py: a transaction
   that does not get the sequencing lock commits its events to audit_pending and waits for
   a sequencer to place them in a batch), against the chain as it was before (a lock on
   the single audit_head row from each transaction's chaining until its commit is
   durable), and against a ceiling: the same writers committing the same transactions with
   nothing audited. Reported: events/s, commit p50/p99, the share of transactions that
   placed their own events, the wait for a place (p50/p99), the ratios; PostgreSQL's
   target is TARGET_RATIO in audit_appends.py. Then the log must verify (chain and tree),
   holding exactly the events written. Proofs at 10 million events: bench/merkle.py.
2. Verify throughput, on another freshly migrated database holding a chain of `--events`
   realistic events (the app's types, sids, actors, reasons and details). The chain is
   built fast: rows sealed here with app.audit.chain.seal, bulk-inserted with their tree
   nodes with executemany in large batches, then audit_head set to the newest event; on
   PostgreSQL the table is then vacuumed, so that it is read as a chain at rest (months of
   events autovacuum has long since visited), not as rows inserted a second ago whose
   first reader pays for setting their hint bits. Timed:
   `verify_chain` (streaming from the database) and, in the same run, a bare hashlib
   SHA-256 walk over the same hashed messages (precomputed; only the hashing and link
   checks are timed); each walk REPEAT times, the fastest counting. Reported: both rates
   and their ratio, judged against TARGET_RATIO; and the verify's memory (tracemalloc
   peak, in a further, traced run; and the growth of the peak RSS) at E/10 and at E, to
   show it does not grow with the chain. Then the tree's check (verify_tree), timed once:
   what `callguard audit verify` adds after the chain.

    python bench/audit.py                        # full: 1,000,000 events, SQLite
    python bench/audit.py --database postgres    # own database callguard_bench_<pid>
    python bench/audit.py --quick                # CI: 20,000 events; exit 0 whatever

Exit status: 0 done (and, in full mode, both ratios met); 1 an error (a failed append, a
log that does not verify, a migration failure, the time limit); 3 full mode and a ratio
below its target. Bounded in count and time; the temporary files (and
the PostgreSQL database, if any) are removed on exit, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import itertools
import math
import random
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import audit_appends as appending
from sqlalchemy import Engine, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from webhook import PG_SERVER, BenchError, postgres_database, unwind_on_signals

from app.audit import log as audit
from app.audit.chain import message, seal
from app.audit.merkle import Frontier, leaf_hash
from app.audit.placing import NodeTable
from app.audit.verify import Verdict, verify_chain, verify_tree
from app.storage.db import make_engine, make_session_factory
from app.storage.migrate import upgrade
from app.storage.models import AuditEvent, AuditHead, AuditNode

TARGET_RATIO = 0.3  # verify_chain events/s over bare SHA-256 chain events/s
INSERT_BATCH = 10_000  # rows per executemany while building the chain
COMMIT_EVERY = 10  # batches per transaction while building


# -- realistic events ----------------------------------------------------------------------


def _sid(rng: random.Random, prefix: str) -> str:
    return f"{prefix}{rng.getrandbits(128):032x}"


DEPARTMENTS = ("contact-harlow", "billing", "claims", "retentions")
AGENTS = ("a.okafor", "j.lindqvist", "m.santos", "r.patel", "s.nakamura")


def call_events(rng: random.Random) -> list[dict[str, Any]]:
    """The events of one call, shaped as the app writes them (app/calls/*): the call
    starts and is decided and routed, recording starts, the agent pauses for a payment and
    resumes, the call ends and the recording completes. Times are filled in by the caller."""
    call_sid, recording_sid = _sid(rng, "CA"), _sid(rng, "RE")
    department, agent = rng.choice(DEPARTMENTS), rng.choice(AGENTS)
    policy = rng.randint(1, 4)
    platform = "platform"

    def event(type_: audit.EventType, actor: str = platform, **fields: Any) -> dict[str, Any]:
        return {
            "type": str(type_),
            "actor": actor,
            "call_sid": call_sid,
            "recording_sid": fields.pop("recording_sid", None),
            "reasons": fields.pop("reasons", []),
            "policy_version": fields.pop("policy_version", policy),
            "detail": fields.pop("detail", {}),
        }

    kind = audit.EventType
    events = [
        event(kind.CALL_STARTED, detail={"dialled": "+441632960655", "direction": "inbound"}),
        event(kind.DECISION, reasons=["not_yet_queued"], detail={"desired": "off"}),
        event(kind.CALL_ROUTED, detail={"to": department}),
        event(kind.CALL_QUEUED, detail={"department": department, "digits": "1"}),
        event(kind.DECISION, reasons=["department_recorded"], detail={"desired": "record"}),
        event(kind.RECORDING_START_REQUESTED, detail={"action": "start"}),
        event(
            kind.RECORDING_STARTED,
            recording_sid=recording_sid,
            detail={"status": "in-progress", "source": "callback"},
        ),
        event(
            kind.CALL_ASSIGNED,
            detail={"agent": agent, "previous": None, "source": "taskrouter"},
        ),
        event(kind.CALL_STATUS, detail={"status": "in-progress", "sequence": 3}),
    ]
    if rng.random() < 0.4:
        events += [
            event(kind.PAYMENT_STARTED, agent, detail={"role": "agent", "source": "agent"}),
            event(kind.DECISION, reasons=["payment_in_progress"], detail={"desired": "paused"}),
            event(
                kind.RECORDING_PAUSED,
                recording_sid=recording_sid,
                detail={"status": "paused", "provider_status": "paused"},
            ),
            event(kind.PAYMENT_ENDED, agent, detail={"role": "agent", "seconds": 94}),
            event(kind.DECISION, reasons=["department_recorded"], detail={"desired": "record"}),
            event(
                kind.RECORDING_RESUMED,
                recording_sid=recording_sid,
                detail={"status": "in-progress", "provider_status": "in-progress"},
            ),
        ]
    events += [
        event(kind.CALL_ENDED, detail={"status": "completed", "sequence": 5}),
        event(kind.DECISION, reasons=["call_ended"], detail={"desired": "off"}),
        event(
            kind.RECORDING_COMPLETED,
            recording_sid=recording_sid,
            detail={"status": "completed", "duration": rng.randint(20, 1800), "channels": 2},
        ),
    ]
    return events


def event_stream(seed: int, start: datetime) -> Iterator[dict[str, Any]]:
    """Endless realistic events, about 40 ms apart; received a few ms after they occur."""
    rng = random.Random(seed)
    moment = start
    while True:
        for row in call_events(rng):
            moment += timedelta(microseconds=rng.randint(1_000, 80_000))
            row["occurred_at"] = moment
            row["received_at"] = moment + timedelta(microseconds=rng.randint(200, 9_000))
            yield row


# -- databases -----------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(kind: str, pg_server: str, workdir: Path, name: str) -> Iterator[str]:
    """A freshly migrated database: a file in workdir, or callguard_bench_<pid> (dropped)."""
    with contextlib.ExitStack() as stack:
        if kind == "postgres":
            url = stack.enter_context(postgres_database(pg_server))
        else:
            url = f"sqlite:///{workdir / f'{name}.db'}"
        t0 = time.monotonic()
        try:
            upgrade(url)
        except Exception as exc:
            raise BenchError(f"migration failed: {type(exc).__name__}: {exc}") from exc
        print(f"[{name}] migrated in {time.monotonic() - t0:.1f}s", flush=True)
        yield url


@contextlib.contextmanager
def sessions(url: str, writers: int = 1) -> Iterator[tuple[Engine, sessionmaker[Session]]]:
    options = {"pool_size": writers + 2} if writers + 2 > 10 else {}
    engine = make_engine(url, **options)
    try:
        yield engine, make_session_factory(engine)
    finally:
        engine.dispose()


def head_of(factory: sessionmaker[Session]) -> tuple[int, str]:
    with factory() as session:
        head = session.execute(select(AuditHead.sequence, AuditHead.hash)).one()
        return head.sequence, head.hash


# -- 1. append throughput (bench/audit_appends.py) -------------------------------------------


def append_benchmark(
    args: argparse.Namespace, workdir: Path, deadline: float
) -> list[appending.AppendRun]:
    """A lock per transaction with N writers, on a database of its own; then sequenced,
    by 1 writer and then by N, on another; then the ceiling there: N writers committing
    the same transactions with nothing audited."""
    baseline = appending.AppendRun(f"lock per transaction, {args.writers} writers", args.writers)
    one = appending.AppendRun("sequenced, 1 writer", 1)
    many = appending.AppendRun(f"sequenced, {args.writers} writers", args.writers)
    bare = appending.AppendRun(f"nothing audited, {args.writers} writers", args.writers)
    for name, runs, is_baseline in (
        ("baseline", [baseline], True),
        ("appends", [one, many], False),
    ):
        with (
            fresh_database(args.database, args.pg_server, workdir, name) as url,
            sessions(url, args.writers) as (_engine, factory),
        ):
            appending.appends(
                factory, runs, args.appends, deadline, event_stream, baseline=is_baseline
            )
            if not is_baseline:
                appending.ceiling(factory, bare, args.appends, deadline, event_stream)
    return [baseline, one, many, bare]


# -- 2. verify throughput ------------------------------------------------------------------


CHAIN_SEED = 20260105
CHAIN_START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


def build_chain(engine: Engine, events: Iterator[dict[str, Any]], count: int) -> tuple[int, str]:
    """Append `count` events after audit_head with executemany, and their tree nodes;
    returns the new head."""
    with engine.connect() as connection:
        head = connection.execute(select(AuditHead.sequence, AuditHead.hash)).one()
        sequence, previous = head.sequence, head.hash
        frontier = Frontier.load(NodeTable(connection), sequence)
        left, batches = count, 0
        while left:
            batch = []
            for event in itertools.islice(events, min(INSERT_BATCH, left)):
                sequence += 1
                row = seal(event, sequence, previous)
                previous = row["hash"]
                batch.append(row)
            connection.execute(insert(AuditEvent), batch)
            nodes = frontier.append(leaf_hash(bytes.fromhex(row["hash"])) for row in batch)
            connection.execute(
                insert(AuditNode), [{"level": n[0], "position": n[1], "hash": n[2]} for n in nodes]
            )
            left -= len(batch)
            batches += 1
            if batches % COMMIT_EVERY == 0:
                connection.commit()
        connection.execute(
            update(AuditHead)
            .where(AuditHead.id == 1)
            .values(sequence=sequence, hash=previous, root=frontier.root())
        )
        connection.commit()
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM (ANALYZE) audit_events, audit_nodes"))
    return sequence, previous


@dataclass
class Chain:
    """What the bare walk needs: every built event's hashed message, prev_hash and hash."""

    blobs: list[bytes]
    prevs: list[str]
    hashes: list[str]


def replay_chain(start: tuple[int, str], count: int, head: tuple[int, str]) -> Chain:
    """The built events again (same seed), as the messages verify_chain hashes. Made
    after the verify runs, so that those run without a million objects around."""
    sequence, previous = start
    chain = Chain([], [], [])
    for event in itertools.islice(event_stream(CHAIN_SEED, CHAIN_START), count):
        sequence += 1
        blob = message(seal(event, sequence, previous))
        chain.blobs.append(blob)
        chain.prevs.append(previous)
        previous = hashlib.sha256(blob).hexdigest()
        chain.hashes.append(previous)
    if (sequence, previous) != head:
        raise BenchError(f"replayed chain ends at {(sequence, previous)}, the database at {head}")
    return chain


def bare_walk(chain: Chain) -> tuple[int, float]:
    """The link and hash checks of verify_chain over the same messages, in memory: hashlib
    SHA-256 and comparisons only."""
    sha256 = hashlib.sha256
    previous, count = chain.prevs[0], 0
    start = time.perf_counter()
    for blob, prev, stored in zip(chain.blobs, chain.prevs, chain.hashes, strict=True):
        if prev != previous:
            raise BenchError(f"bare walk: link broken at {count + 1}")
        digest = sha256(blob).hexdigest()
        if digest != stored:
            raise BenchError(f"bare walk: content changed at {count + 1}")
        previous, count = digest, count + 1
    return count, time.perf_counter() - start


def _status_kib(key: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def reset_peak_rss() -> bool:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


@dataclass
class VerifyRun:
    events: int
    verdict: Verdict
    seconds: float
    traced_peak: int  # bytes allocated at peak during verify_chain (tracemalloc)
    rss_growth: int | None  # KiB: peak RSS during verify minus RSS before

    @property
    def rate(self) -> float:
        return self.verdict.events / self.seconds


REPEAT = 3  # timed runs of each walk, database and bare alike: the fastest counts


def timed_verify(factory: sessionmaker[Session], expected: int) -> VerifyRun:
    """REPEAT timed runs (the first also measures peak RSS growth; the fastest counts),
    then one under tracemalloc."""

    def one() -> tuple[Verdict, float]:
        gc.collect()
        start = time.perf_counter()
        with factory() as session:
            verdict = verify_chain(session)
        return verdict, time.perf_counter() - start

    rss_growth = None
    gc.collect()
    before_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if reset_peak_rss():
        before = _status_kib("VmRSS") or 0
        verdict, seconds = one()
        rss_growth = (_status_kib("VmHWM") or 0) - before
    else:
        verdict, seconds = one()
        rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_max
    for _ in range(REPEAT - 1):
        again, more = one()
        if again != verdict:
            raise BenchError(f"two walks of one chain disagree: {verdict} and {again}")
        seconds = min(seconds, more)
    tracemalloc.start()
    try:
        traced, _ = one()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    for v in (verdict, traced):
        if not v.ok:
            raise BenchError(f"the chain does not verify: {v.as_dict()}")
        if v.events != expected:
            raise BenchError(f"the chain holds {v.events} events, expected {expected}")
    return VerifyRun(expected, verdict, seconds, peak, rss_growth)


def verify_benchmark(url: str, args: argparse.Namespace, deadline: float) -> bool:
    """Returns whether the ratio met the target."""
    # E/10, but past the first few thousand rows: under them the read buffers are not full.
    small = max(args.events // 10, min(args.events // 2, 8000))
    events = event_stream(CHAIN_SEED, CHAIN_START)
    runs: list[VerifyRun] = []
    with sessions(url) as (engine, factory):
        start = head = head_of(factory)
        for target in (small, args.events):
            t0 = time.perf_counter()
            added = target - (head[0] - start[0])
            head = build_chain(engine, events, added)
            built = time.perf_counter() - t0
            print(
                f"[verify] chain built to {head[0]} events (+{added} in {built:.1f}s, "
                f"{added / built:.0f} events/s)",
                flush=True,
            )
            if time.monotonic() > deadline:
                raise BenchError("time limit passed while building the chain")
            runs.append(timed_verify(factory, head[0]))
            if time.monotonic() > deadline:
                raise BenchError("time limit passed while verifying")
    chain = replay_chain(start, args.events, head)
    bare_count, bare_seconds = min((bare_walk(chain) for _ in range(REPEAT)), key=lambda r: r[1])
    del chain
    if bare_count != args.events:
        raise BenchError(f"bare walk saw {bare_count} events, expected {args.events}")
    bare_rate = bare_count / bare_seconds

    print(
        f"\n{'verify':26} {'events':>9} {'seconds':>8} {'events/s':>10} "
        f"{'traced peak':>12} {'peak RSS +':>11}"
    )
    for r in runs:
        rss = f"{r.rss_growth / 1024:.1f} MiB" if r.rss_growth is not None else "n/a"
        print(
            f"{'verify_chain (database)':26} {r.events:>9} {r.seconds:>8.2f} {r.rate:>10.0f} "
            f"{r.traced_peak / 2**20:>8.1f} MiB {rss:>11}"
        )
    print(f"{'bare SHA-256 chain':26} {bare_count:>9} {bare_seconds:>8.2f} {bare_rate:>10.0f}")
    small_run, full_run = runs
    growth = full_run.traced_peak / small_run.traced_peak if small_run.traced_peak else math.nan
    print(
        f"memory: traced peak at E={full_run.events} is {growth:.2f}x the peak at "
        f"E={small_run.events}: "
        + ("constant in E (streamed)" if growth < 1.5 else "GROWS with E (not streamed?)")
    )
    with sessions(url) as (_engine, factory):
        t0 = time.perf_counter()
        with factory() as session:
            tree = verify_tree(session, full_run.verdict)
        tree_seconds = time.perf_counter() - t0
    if not tree.ok:
        raise BenchError(f"the tree does not verify: {tree.as_dict()}")
    print(
        f"{'then the tree (database)':26} {full_run.events:>9} {tree_seconds:>8.2f} "
        f"{full_run.events / tree_seconds:>10.0f}   (verify = chain + tree: "
        f"{full_run.events / (full_run.seconds + tree_seconds):.0f} events/s)"
    )
    ratio = full_run.rate / bare_rate
    met = ratio >= TARGET_RATIO
    print(
        f"ratio verify/bare throughput: {ratio:.3f} (target >= {TARGET_RATIO:.2f}): "
        f"{'MET' if met else 'BELOW TARGET'}"
    )
    return met


# -- the run -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmark appending to and verifying callguard's audit hash chain.",
    )
    parser.add_argument("--database", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--pg-server",
        default=PG_SERVER,
        help="PostgreSQL server (loopback) on which callguard_bench_<pid> is created/dropped",
    )
    parser.add_argument("--writers", type=int, default=8, help="concurrent writers (8)")
    parser.add_argument(
        "--appends", type=int, help="events appended by 1 writer, then by N (2000; quick 200)"
    )
    parser.add_argument(
        "--events", type=int, help="events in the chain to verify (1000000; quick 20000)"
    )
    parser.add_argument("--timeout", type=float, help="seconds allowed in all (600; quick 60)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI: 20000 events, 200 appends; exit 0 whatever the ratio, 1 on any error",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    if args.appends is None:
        args.appends = 200 if quick else 2000
    if args.events is None:
        args.events = 20_000 if quick else 1_000_000
    if args.timeout is None:
        args.timeout = 60.0 if quick else 600.0
    if not 1 <= args.writers <= 64:
        parser.error("--writers must be between 1 and 64")
    if not 10 <= args.appends <= 100_000:
        parser.error("--appends must be between 10 and 100000")
    if not 1000 <= args.events <= 5_000_000:
        parser.error("--events must be between 1000 and 5000000")
    if not 0 < args.timeout <= 1800:
        parser.error("--timeout must be between 0 and 1800 seconds")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    unwind_on_signals()
    mode = "quick" if args.quick else "full"
    print(
        f"== callguard audit chain benchmark ({mode}): {args.database}, {args.appends} appends "
        f"by 1 then {args.writers} writers; verify of {args.events} events ==",
        flush=True,
    )
    deadline = time.monotonic() + args.timeout
    try:
        with tempfile.TemporaryDirectory(prefix="cg-bench-") as tmp:
            workdir = Path(tmp)
            runs = append_benchmark(args, workdir, deadline)
            committed = appending.report(runs, args.database)
            print(flush=True)
            with fresh_database(args.database, args.pg_server, workdir, "verify") as url:
                met = verify_benchmark(url, args, deadline)
    except BenchError as exc:
        print(f"FAIL: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: cleaned up", file=sys.stderr)
        return 130
    if args.quick:
        print("(quick mode: the figures are informative only)")
        return 0
    return 0 if met and committed else 3


if __name__ == "__main__":
    sys.exit(main())
