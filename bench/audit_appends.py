"""bench/audit.py's first part: audited commits per second, sequenced in groups
(app/audit/sequencer.py), against the chain as it was before, in the same run.

Each run is `count` transactions of one `audit.append` each (`unit_of_work`, the app's own
path), by 1 or by N threads that start together, on a freshly migrated database of its
own. Runs:

* **a lock per transaction** — the chain as it was before issue 16, restored here for the
  run: every commit locks the single audit_head row from its chaining until the commit is
  durable, so commits on every connection queue one behind another (and no tree);
* **sequenced** — the app as it is: a transaction that does not get the sequencing lock
  commits its events to audit_pending and waits for their place; whoever holds the lock
  places every waiting event in one commit. Besides the commit latency, the wait for the
  place (`await_places`, from the commit of audit_pending until placed) is timed for each
  transaction that had one, and the share of transactions that placed their own events.

Afterwards the log must verify (chain; and tree for the sequenced runs) holding exactly
the events written.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, insert, select, text, update
from sqlalchemy.orm import Session, sessionmaker
from webhook import BenchError

from app.audit import log as audit
from app.audit import sequencer
from app.audit.chain import body_of, seal
from app.audit.verify import Verdict, verify_chain, verify_log
from app.storage.db import unit_of_work
from app.storage.models import AuditEvent, AuditHead

WARMUP_APPENDS = 20  # unmeasured: connections, statement caches
TARGET_RATIO = 4.0  # sequenced / a lock per transaction, 8 writers on PostgreSQL


@dataclass
class AppendRun:
    name: str
    writers: int
    latencies: list[float] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)  # await_places, when there was one
    elapsed: float = 0.0
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0


def percentile_ms(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] * 1000


def append_one(factory: sessionmaker[Session], row: dict[str, Any]) -> float:
    """One transaction of one event, through the app's own path; returns its duration."""
    start = time.perf_counter()
    with unit_of_work(factory) as session:
        audit.append(
            session,
            audit.EventType(row["type"]),
            actor=row["actor"],
            call_sid=row["call_sid"],
            recording_sid=row["recording_sid"],
            reasons=row["reasons"],
            policy_version=row["policy_version"],
            detail=row["detail"],
        )
    return time.perf_counter() - start


# -- the baseline: a lock per transaction, as before issue 16 --------------------------------

_HEAD = AuditHead.__table__
_LOCK_HEAD = select(_HEAD.c.sequence, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()


def _chain_at_commit(session: Session) -> None:
    """app/audit/log.py's write_pending until issue 16, line for line."""
    rows = session.info.pop(sequencer._QUEUED, None)
    if not rows:
        return
    connection = session.connection()
    head = connection.execute(_LOCK_HEAD).one()
    sequence, previous = head.sequence, head.hash
    sealed = []
    for row in rows:
        sequence += 1
        sealed.append(seal(row, sequence, previous))
        previous = sealed[-1]["hash"]
    connection.execute(insert(AuditEvent), sealed)
    connection.execute(
        update(_HEAD).where(_HEAD.c.id == 1).values(sequence=sequence, hash=previous)
    )


@contextmanager
def a_lock_per_transaction() -> Iterator[None]:
    event.remove(Session, "before_commit", sequencer._before_commit)
    event.listen(Session, "before_commit", _chain_at_commit)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", _chain_at_commit)
        event.listen(Session, "before_commit", sequencer._before_commit)


@contextmanager
def timed_waits(run: AppendRun) -> Iterator[None]:
    original = sequencer.await_places
    lock = threading.Lock()

    def timed(engine: Any, ids: Sequence[int]) -> None:
        start = time.perf_counter()
        original(engine, ids)
        with lock:
            run.waits.append(time.perf_counter() - start)

    sequencer.await_places = timed  # type: ignore[assignment]
    try:
        yield
    finally:
        sequencer.await_places = original  # type: ignore[assignment]


# -- the ceiling: the same transactions with nothing sequenced ------------------------------

_SCRATCH = text("CREATE TABLE IF NOT EXISTS bench_ceiling (id integer PRIMARY KEY, body bytea)")
_SCRATCH_INSERT = text("INSERT INTO bench_ceiling (id, body) VALUES (:id, :body)")
_ids = itertools.count(1)


def commit_one(factory: sessionmaker[Session], row: dict[str, Any]) -> float:
    """One transaction inserting one row as big as an event, unaudited: what 8 writers
    can commit at all here, whatever the log does (the ceiling)."""
    start = time.perf_counter()
    with unit_of_work(factory) as session:
        session.execute(_SCRATCH_INSERT, {"id": next(_ids), "body": body_of(row)})
    return time.perf_counter() - start


def ceiling(
    factory: sessionmaker[Session],
    run: AppendRun,
    count: int,
    deadline: float,
    stream: Callable[[int, datetime], Iterator[dict[str, Any]]],
) -> None:
    with unit_of_work(factory) as session:
        session.execute(_SCRATCH)
    run_appends(factory, AppendRun("warm-up", 1), WARMUP_APPENDS, deadline, stream, 0, commit_one)
    run_appends(factory, run, count, deadline, stream, 7000, commit_one)


# -- runs ------------------------------------------------------------------------------------


def run_appends(
    factory: sessionmaker[Session],
    run: AppendRun,
    count: int,
    deadline: float,
    stream: Callable[[int, datetime], Iterator[dict[str, Any]]],
    seed: int,
    action: Callable[[sessionmaker[Session], dict[str, Any]], float] = append_one,
) -> AppendRun:
    """`count` appends split over run.writers threads that start together."""
    shares = [count // run.writers + (i < count % run.writers) for i in range(run.writers)]
    rows = [
        list(itertools.islice(stream(seed + i, datetime.now(UTC)), n)) for i, n in enumerate(shares)
    ]
    barrier = threading.Barrier(run.writers + 1)
    lock = threading.Lock()

    def writer(mine: list[dict[str, Any]]) -> None:
        took: list[float] = []
        try:
            barrier.wait()
            for row in mine:
                if time.monotonic() > deadline:
                    raise BenchError("time limit passed")
                took.append(action(factory, row))
        except Exception as exc:
            with lock:
                run.errors.append(f"{type(exc).__name__}: {exc}")
        with lock:
            run.latencies += took

    threads = [
        threading.Thread(target=writer, args=(mine,), name=f"writer-{i}", daemon=True)
        for i, mine in enumerate(rows)
    ]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + 30)
    run.elapsed = time.perf_counter() - started
    if any(thread.is_alive() for thread in threads):
        run.errors.append("writers still running after the time limit")
    if run.errors:
        raise BenchError(f"{run.name}: {len(run.errors)} errors, e.g. {run.errors[0]}")
    return run


def check_log(factory: sessionmaker[Session], expected: int, *, tree: bool) -> Verdict:
    with factory() as session:
        verdict = (verify_log if tree else verify_chain)(session)
        head = session.execute(select(AuditHead.sequence)).scalar_one()
    if not verdict.ok:
        raise BenchError(f"the log does not verify: {verdict.as_dict()}")
    if verdict.events != expected or head != expected:
        raise BenchError(f"the log holds {verdict.events} events (head {head}), not {expected}")
    return verdict


def appends(
    factory: sessionmaker[Session],
    runs: Sequence[AppendRun],
    count: int,
    deadline: float,
    stream: Callable[[int, datetime], Iterator[dict[str, Any]]],
    *,
    baseline: bool,
) -> None:
    """Warm up, then each of `runs` in turn, on one database; then verify it."""
    with a_lock_per_transaction() if baseline else nullcontext():
        run_appends(factory, AppendRun("warm-up", 1), WARMUP_APPENDS, deadline, stream, 0)
        for i, run in enumerate(runs, start=1):
            with timed_waits(run):
                run_appends(factory, run, count, deadline, stream, seed=1000 * i)
    written = WARMUP_APPENDS + count * len(runs)
    t0 = time.perf_counter()
    verdict = check_log(factory, written, tree=not baseline)
    print(
        f"[appends] {'chain' if baseline else 'chain and tree'} verify after "
        f"{', '.join(r.name for r in runs)}: ok, {verdict.events} events, no fork, no gap "
        f"({time.perf_counter() - t0:.2f}s)",
        flush=True,
    )


def report(runs: Sequence[AppendRun], database: str) -> bool:
    """The table, and whether the target ratio is met (PostgreSQL; SQLite has no target:
    one writer at a time either way)."""
    print(
        f"\n{'append (1 event/txn)':34} {'events':>7} {'events/s':>9} {'p50 ms':>7} "
        f"{'p99 ms':>7} {'own %':>6} {'wait p50':>9} {'wait p99':>9}"
    )
    for r in runs:
        own = 100 * (1 - len(r.waits) / len(r.latencies)) if r.latencies else math.nan
        print(
            f"{r.name:34} {len(r.latencies):>7} {r.rate:>9.0f} "
            f"{percentile_ms(r.latencies, 0.5):>7.2f} {percentile_ms(r.latencies, 0.99):>7.2f} "
            f"{own:>6.0f} {percentile_ms(r.waits, 0.5):>9.2f} {percentile_ms(r.waits, 0.99):>9.2f}"
        )
    print(
        "(own %: transactions that got the sequencing lock at once and placed their own "
        "events; wait: from committing to audit_pending until a sequencer placed them, ms)"
    )
    baseline, concurrent, bare = runs[0], runs[-2], runs[-1]
    ratio = concurrent.rate / baseline.rate if baseline.rate else math.nan
    print(
        f"ceiling (nothing audited) / lock per transaction: {bare.rate / baseline.rate:.2f}; "
        f"sequenced / ceiling: {concurrent.rate / bare.rate:.2f}"
    )
    if database != "postgres":
        print(f"ratio sequenced/lock per transaction, {concurrent.writers} writers: {ratio:.2f}")
        print(
            "(SQLite: one writer at a time either way — callguard's process-wide write lock "
            "before BEGIN IMMEDIATE — so grouping cannot add throughput; the ratio is the "
            "tree's cost)"
        )
        return True
    met = ratio >= TARGET_RATIO
    print(
        f"ratio sequenced/lock per transaction, {concurrent.writers} writers: {ratio:.2f} "
        f"(target >= {TARGET_RATIO}): {'met' if met else 'BELOW TARGET'}"
    )
    return met
