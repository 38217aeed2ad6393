"""Issue 16 item 2: sequencing without a lock per transaction. A transaction that does not
get the sequencing lock commits its events to audit_pending and returns only once a
sequencer has placed them (read-your-writes); one sequencer places many transactions'
events in one batch; a sequencer killed mid-batch loses and duplicates nothing; two
instances append at once; events a dead process left waiting are placed by the
background pass, and /readyz says when events wait too long. The Merkle tree is checked
against hashlib alone: its root must be RFC 9162's MTH of the events' hashes."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Connection, text

from app.audit import log as audit
from app.audit import placing, sequencer
from app.audit.verify import verify_chain, verify_log
from app.storage.db import make_engine, unit_of_work
from app.storage.models import utcnow
from tests.audit.test_audit_chain import _without_triggers

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def mth(entries: list[bytes]) -> bytes:
    """RFC 9162 2.1.1, recursively, with hashlib alone."""
    if not entries:
        return hashlib.sha256(b"").digest()
    if len(entries) == 1:
        return hashlib.sha256(b"\x00" + entries[0]).digest()
    k = 1
    while k * 2 < len(entries):
        k *= 2
    return hashlib.sha256(b"\x01" + mth(entries[:k]) + mth(entries[k:])).digest()


def log_of(services) -> list[tuple[int, str | None, str, bytes]]:
    """(sequence, call_sid, hash, body) of every event, in order."""
    with services.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT sequence, call_sid, hash, body FROM audit_events ORDER BY sequence")
        )
        return [(r.sequence, r.call_sid, r.hash, bytes(r.body)) for r in rows]


def assert_whole(services, expected: int) -> None:
    """The chain verifies, the tree's root is the RFC's MTH of the events' hashes (and the
    head's), nothing waits, and there are exactly `expected` events."""
    with services.sessions() as session:
        verdict = verify_log(session)
    assert verdict.ok, verdict.as_dict()
    events = log_of(services)
    assert len(events) == expected == verdict.events
    assert [e[0] for e in events] == list(range(1, expected + 1))
    with services.engine.connect() as connection:
        root = connection.execute(text("SELECT root FROM audit_head")).scalar_one()
        waiting = connection.execute(text("SELECT count(*) FROM audit_pending")).scalar_one()
    assert bytes(root) == mth([bytes.fromhex(e[2]) for e in events])
    assert waiting == 0


def append(services, call_sid: str, n: int, *, actor: str = "test") -> None:
    """n transactions, each of one event of `call_sid`, numbered in their detail."""
    for i in range(n):
        with unit_of_work(services.sessions) as session:
            audit.append(
                session, audit.EventType.DECISION, actor=actor, call_sid=call_sid, detail={"i": i}
            )


def numbers(services, call_sid: str) -> list[int]:
    return [
        int(body.split(b'"i":')[1].split(b"}")[0])
        for _, sid, _, body in log_of(services)
        if sid == call_sid
    ]


def postgres_only(services) -> None:
    if services.engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer: each transaction places its own events")


@contextmanager
def sequencing_lock(services) -> Iterator[Connection]:
    """Hold the sequencing lock from another connection, as a busy sequencer would."""
    with services.engine.connect() as connection, connection.begin():
        connection.execute(placing.LOCK)
        yield connection


def test_concurrent_transactions_give_one_log_and_its_tree(services) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda w: append(services, f"CA{w}", 20, actor=f"w{w}"), range(8)))
    assert_whole(services, 160)
    for w in range(8):  # each writer's events in the order it wrote them
        assert numbers(services, f"CA{w}") == list(range(20))


def test_a_transaction_returns_only_once_its_events_are_placed(services) -> None:
    postgres_only(services)
    done = threading.Event()

    def write() -> None:
        append(services, "CAwaiting", 1)
        done.set()

    with sequencing_lock(services):
        thread = threading.Thread(target=write)
        thread.start()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # committed, waiting for its place
            with services.engine.connect() as connection:
                if connection.execute(text("SELECT count(*) FROM audit_pending")).scalar():
                    break
            time.sleep(0.01)
        else:
            pytest.fail("the event never reached audit_pending")
        assert not done.wait(0.2)  # the writer has not returned...
        assert log_of(services) == []  # ...and no reader sees the event without its place
    thread.join(10)
    assert done.is_set()
    assert [e[1] for e in log_of(services)] == ["CAwaiting"]
    assert_whole(services, 1)


def pending_count(services) -> int:
    with services.engine.connect() as connection:
        return int(connection.execute(text("SELECT count(*) FROM audit_pending")).scalar_one())


def wait_for_pending(services, count: int) -> None:
    deadline = time.monotonic() + 10
    while pending_count(services) != count:
        if time.monotonic() > deadline:
            pytest.fail(f"{count} events never waited together in audit_pending")
        time.sleep(0.01)


def wait_for_lock_waiters(services, count: int) -> None:
    """Until `count` connections wait for the sequencing lock."""
    query = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        " AND classid = :space AND objid = :key"
    )
    deadline = time.monotonic() + 20
    while True:
        with services.engine.connect() as connection:
            waiting = connection.execute(
                query, {"space": placing.LOCK_SPACE, "key": placing.LOCK_KEY}
            ).scalar_one()
        if waiting >= count:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"{count} connections never waited for the sequencing lock")
        time.sleep(0.02)


def batches() -> tuple[float, float]:
    """(sequencing transactions, events they placed) so far, from the metric."""
    name = "callguard_audit_batch_events"
    return (
        REGISTRY.get_sample_value(f"{name}_count") or 0.0,
        REGISTRY.get_sample_value(f"{name}_sum") or 0.0,
    )


def test_one_sequencer_places_many_transactions_events_in_one_batch(services) -> None:
    postgres_only(services)
    with sequencing_lock(services):
        threads = [threading.Thread(target=append, args=(services, f"CA{w}", 1)) for w in range(6)]
        for thread in threads:
            thread.start()
        wait_for_pending(services, 6)
        before = batches()
    for thread in threads:
        thread.join(10)
    after = batches()
    # All six were committed and waiting when the lock came free: the first waiter placed
    # them all, in one transaction; the other five found theirs placed.
    assert (after[0] - before[0], after[1] - before[1]) == (1, 6)
    assert_whole(services, 6)


SEQUENCER_KILLED_MID_BATCH = textwrap.dedent(
    """
    import sys, time
    from sqlalchemy import text
    from app.audit import placing
    from app.storage.db import make_engine

    engine = make_engine(sys.argv[1])
    with engine.connect() as connection:
        connection.begin()
        connection.execute(placing.LOCK)
        placed = placing.place_batch(connection, (), waiting=True)  # not committed
        print(len(placed), flush=True)
        time.sleep(60)  # killed here, mid-batch
    """
)


def test_a_sequencer_killed_mid_batch_loses_and_duplicates_nothing(services) -> None:
    postgres_only(services)
    url = services.engine.url.render_as_string(hide_password=False)
    append(services, "CAbefore", 2)
    with sequencing_lock(services):
        # The victim queues for the lock first; then four writers commit their first
        # events and queue behind it.
        victim = subprocess.Popen(
            [sys.executable, "-c", SEQUENCER_KILLED_MID_BATCH, url],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        wait_for_lock_waiters(services, 1)
        writers = [threading.Thread(target=append, args=(services, f"CA{w}", 3)) for w in range(4)]
        for writer in writers:
            writer.start()
        wait_for_pending(services, 4)
    # The victim has the lock and has placed the four (uncommitted): kill it mid-batch.
    line = victim.stdout.readline() if victim.stdout else ""
    assert line.strip() == "4"
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    for writer in writers:
        writer.join(30)
        assert not writer.is_alive()
    assert_whole(services, 2 + 4 * 3)
    for w in range(4):
        assert numbers(services, f"CA{w}") == [0, 1, 2]


def test_two_instances_append_at_once(services) -> None:
    postgres_only(services)
    url = services.engine.url.render_as_string(hide_password=False)
    other = make_engine(url)  # a second instance: its own engine, pool and frontier
    try:
        from app.storage.db import make_session_factory

        second = type("Instance", (), {"sessions": make_session_factory(other)})()
        with ThreadPoolExecutor(max_workers=8) as pool:
            jobs = [
                pool.submit(append, instance, f"CA{i}-{w}", 15)
                for i, instance in enumerate((services, second))
                for w in range(4)
            ]
            for job in jobs:
                job.result()
    finally:
        other.dispose()
    assert_whole(services, 2 * 4 * 15)
    for i in range(2):
        for w in range(4):
            assert numbers(services, f"CA{i}-{w}") == list(range(15))


def test_events_a_dead_process_left_waiting_are_placed_by_the_background_pass(
    services, client
) -> None:
    postgres_only(services)
    append(services, "CAfirst", 1)
    with services.engine.connect() as connection, connection.begin():
        # What a process that died between its commit and its place leaves behind.
        ids = connection.execute(
            placing.WAIT,
            [
                {
                    "queued_at": utcnow() - timedelta(seconds=5),
                    "type": "decision",
                    "call_sid": "CAorphan",
                    "recording_sid": None,
                    "body": b'{"actor":"test","detail":{"i":0}}',
                }
            ],
        ).scalars()
        assert list(ids)
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["audit_sequencing"].startswith("events waiting 5.")
    assert sequencer.place_waiting(services.engine) == 1
    assert client.get("/readyz").json()["checks"]["audit_sequencing"] == "ok"
    calls = [e[1] for e in log_of(services)]
    assert calls[-2:] == ["CAfirst", "CAorphan"]  # after the policy's activation
    assert_whole(services, len(calls))


def test_the_background_pass_leaves_a_working_sequencer_alone(services) -> None:
    postgres_only(services)
    with sequencing_lock(services):
        assert sequencer.place_waiting(services.engine) == 0  # returns at once, no wait


def test_a_rewritten_chain_with_its_tree_left_alone_is_a_tree_mismatch(services) -> None:
    append(services, "CAx", 4)
    with _without_triggers(services) as connection:
        # Change event 4 and re-hash it, and the head: the chain alone verifies again.
        row = connection.execute(text("SELECT * FROM audit_events WHERE sequence = 4")).one()
        body = bytes(row.body).replace(b'"i":3', b'"i":9')
        header = f"{row.prev_hash}\n4\n{row.type}\n{row.call_sid}\n\n".encode()
        forged = hashlib.sha256(header + body).hexdigest()
        connection.execute(
            text("UPDATE audit_events SET body = :b, hash = :h WHERE sequence = 4"),
            {"b": body, "h": forged},
        )
        connection.execute(text("UPDATE audit_head SET hash = :h"), {"h": forged})
    with services.sessions() as session:
        assert verify_chain(session).ok
        assert verify_log(session).as_dict() == {
            "ok": False,
            "sequence": None,
            "problem": "tree_mismatch",
        }
