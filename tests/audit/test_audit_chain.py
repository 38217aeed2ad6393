"""E2: the hash chain, its append-only triggers, and verification naming the first
broken link. Tampering bypasses the triggers as a superuser would."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.audit import chain
from app.audit import log as audit
from app.audit.merkle import Frontier, leaf_hash
from app.audit.verify import verify_chain
from app.cli import cli
from app.people.users import Role
from app.storage.db import unit_of_work
from tests.factories import MAIN_NUMBER, Platform, bearer, make_user


def _append(services, n: int, actor: str = "test") -> None:
    for i in range(n):
        with unit_of_work(services.sessions) as session:
            audit.append(session, audit.EventType.DECISION, actor=actor, detail={"i": i})


def _verify(services) -> dict:
    with services.sessions() as session:
        return verify_chain(session).as_dict()


@contextmanager
def _without_triggers(services) -> Iterator[Connection]:
    """What a database superuser can do: write around the triggers."""
    with services.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SET session_replication_role = replica"))
            yield connection
            connection.execute(text("SET session_replication_role = DEFAULT"))
        else:
            triggers = connection.execute(
                text("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
            ).all()
            for name, _ in triggers:
                connection.execute(text(f"DROP TRIGGER {name}"))
            yield connection
            for _, sql in triggers:
                connection.execute(text(sql))
        connection.commit()


def _rebuild_tree(connection: Connection) -> None:
    """The forger's last step: the Merkle tree rebuilt from the rewritten hashes."""
    connection.execute(text("DELETE FROM audit_nodes"))
    frontier = Frontier()
    for (digest,) in connection.execute(text("SELECT hash FROM audit_events ORDER BY sequence")):
        for level, position, node in frontier.append([leaf_hash(bytes.fromhex(digest))]):
            connection.execute(
                text("INSERT INTO audit_nodes (level, position, hash) VALUES (:l, :p, :h)"),
                {"l": level, "p": position, "h": node},
            )
    connection.execute(text("UPDATE audit_head SET root = :r"), {"r": frontier.root()})


def test_a_whole_call_verifies(platform: Platform, client, services) -> None:
    call_sid = platform.queue_call(MAIN_NUMBER, ["1"])
    platform.deliver_callbacks()
    platform.hangup(call_sid)
    verdict = _verify(services)
    assert verdict["ok"] is True
    token = make_user(services, "auditor", Role.GOVERNANCE)
    body = client.get("/api/v1/audit/verify", headers=bearer(token)).json()
    assert body == {"ok": True, "events": verdict["events"] + 1}  # + the user.added event
    items = client.get("/api/v1/audit", headers=bearer(token)).json()["items"]
    assert [e["sequence"] for e in items] == list(range(1, len(items) + 1))


def test_concurrent_writers_never_fork_or_gap(services) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda w: _append(services, 25, actor=f"w{w}"), range(8)))
    verdict = _verify(services)
    assert verdict["ok"] is True
    assert verdict["events"] == 200


def test_an_auditor_can_recompute_the_chain_from_the_readme(services) -> None:
    """An independent implementation of the documented encoding agrees with every row,
    a backslash in a column included."""
    _append(services, 5)
    with unit_of_work(services.sessions) as session:
        audit.append(
            session,
            audit.EventType.CALL_STATUS,
            actor="platform",
            call_sid="CA\\odd",  # a backslash: no escaping anywhere
            recording_sid="RE1",
            detail={"é": "ü", "n": None},
        )

    with services.engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM audit_events ORDER BY sequence")).mappings()
        previous = "0" * 64
        for row in rows:
            body = bytes(row["body"])
            content = json.loads(body)
            assert sorted(content) == [
                "actor",
                "detail",
                "occurred_at",
                "policy_version",
                "reasons",
                "received_at",
            ]
            assert body == json.dumps(
                content, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
            assert content["received_at"].endswith("Z")
            header = (
                f"{previous}\n{row['sequence']}\n{row['type']}\n"
                f"{row['call_sid'] or ''}\n{row['recording_sid'] or ''}\n"
            )
            assert row["prev_hash"] == previous
            assert hashlib.sha256(header.encode() + body).hexdigest() == row["hash"]
            previous = row["hash"]
    assert _verify(services) == {"ok": True, "events": 6}


def test_a_newline_in_a_column_is_refused_so_every_message_splits_one_way(services) -> None:
    with (
        pytest.raises(ValueError, match="call_sid holds a newline"),
        unit_of_work(services.sessions) as session,
    ):
        audit.append(session, audit.EventType.DECISION, actor="x", call_sid="CA1\nCA2")
    assert _verify(services) == {"ok": True, "events": 0}


def test_the_readme_script_verifies_the_api_s_audit_list(services, client) -> None:
    """The README's auditor script, run as printed over GET /api/v1/audit."""
    _append(services, 3)
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    script = readme.split("```python\nimport hashlib  # rows of GET /api/v1/audit")[1]
    script = "import hashlib  # rows" + script.split("```")[0]
    token = make_user(services, "auditor", Role.GOVERNANCE)
    events = client.get("/api/v1/audit", headers=bearer(token)).json()["items"]
    namespace = {"events": events}
    exec(script, namespace)  # noqa: S102  (our own README)
    assert namespace["prev"] == events[-1]["hash"]
    events[1]["body"] = events[1]["body"].replace("test", "mallory")
    with pytest.raises(AssertionError):
        exec(script, {"events": events})  # noqa: S102


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_events SET type = 'mallory'", "DELETE FROM audit_events"]
)
def test_the_database_refuses_updates_and_deletes(services, statement: str) -> None:
    _append(services, 3)
    with services.engine.connect() as connection, pytest.raises(DBAPIError) as refused:
        connection.execute(text(statement))
    assert "append-only" in str(refused.value)
    assert _verify(services)["ok"] is True


def test_postgres_refuses_truncate(services) -> None:
    if services.engine.dialect.name != "postgresql":
        pytest.skip("TRUNCATE is PostgreSQL's")
    _append(services, 3)
    with services.engine.connect() as connection, pytest.raises(DBAPIError) as refused:
        connection.execute(text("TRUNCATE audit_events"))
    assert "append-only" in str(refused.value)


Tamper = Callable[[Connection], None]


def _edit_body(connection: Connection, sequence: int, old: bytes, new: bytes) -> None:
    """Change an event's content in place (bytes bound, so on either database)."""
    body = connection.execute(
        text("SELECT body FROM audit_events WHERE sequence = :s"), {"s": sequence}
    ).scalar_one()
    assert old in bytes(body)
    connection.execute(
        text("UPDATE audit_events SET body = :b WHERE sequence = :s"),
        {"b": bytes(body).replace(old, new), "s": sequence},
    )


def _rehash(connection: Connection, sequence: int) -> None:
    """Rewrite a row's hash to match its changed content, as a careful forger would."""
    from app.audit.chain import message

    row = (
        connection.execute(text("SELECT * FROM audit_events WHERE sequence = :s"), {"s": sequence})
        .mappings()
        .one()
    )
    connection.execute(
        text("UPDATE audit_events SET hash = :h WHERE sequence = :s"),
        {"h": hashlib.sha256(message(row)).hexdigest(), "s": sequence},
    )


CASES: dict[str, tuple[Tamper, int, str]] = {
    "content": (
        lambda c: _edit_body(c, 7, b'"test"', b'"mallory"'),
        7,
        "content_changed",
    ),
    "column": (
        lambda c: c.execute(text("UPDATE audit_events SET call_sid = 'CAx' WHERE sequence = 7")),
        7,
        "content_changed",
    ),
    "type": (
        lambda c: c.execute(text("UPDATE audit_events SET type = 'call.ended' WHERE sequence = 7")),
        7,
        "content_changed",
    ),
    "rehashed content": (
        lambda c: (_edit_body(c, 7, b'"test"', b'"mallory"'), _rehash(c, 7)),
        8,
        "link_broken",
    ),
    "renumbered": (
        lambda c: c.execute(text("UPDATE audit_events SET sequence = 70 WHERE sequence = 7")),
        7,
        "gap",
    ),
    "deleted event": (
        lambda c: c.execute(text("DELETE FROM audit_events WHERE sequence = 7")),
        7,
        "gap",
    ),
    "cut tail": (
        lambda c: c.execute(text("DELETE FROM audit_events WHERE sequence >= 9")),
        9,
        "gap",
    ),
    "reordered": (
        lambda c: c.execute(
            text(
                "UPDATE audit_events SET prev_hash = (SELECT hash FROM audit_events "
                "WHERE sequence = 5) WHERE sequence = 7"
            )
        ),
        7,
        "link_broken",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_found_at_the_exact_position(services, case: str) -> None:
    _append(services, 12)  # sequences 1..12
    assert _verify(services)["ok"] is True
    tamper, sequence, problem = CASES[case]
    with _without_triggers(services) as connection:
        tamper(connection)
    assert _verify(services) == {"ok": False, "sequence": sequence, "problem": problem}


def test_cli_verify_exits_non_zero_naming_the_sequence(services, migrated_url, monkeypatch):
    monkeypatch.setenv("CALLGUARD_DATABASE_URL", migrated_url)
    _append(services, 4)
    runner = CliRunner()
    good = runner.invoke(cli, ["audit", "verify"])
    assert good.exit_code == 0
    assert "intact: 4 events" in good.output
    with _without_triggers(services) as connection:
        _edit_body(connection, 3, b'"i":2', b'"i":20')
    bad = runner.invoke(cli, ["audit", "verify"])
    assert bad.exit_code == 1
    assert "sequence 3: content_changed" in bad.output


def test_verifying_blocks_no_writer(services) -> None:
    """A long verify runs in a read-only snapshot: appends go on meanwhile (on SQLite, a
    write transaction would hold the database's only write lock for the whole walk)."""
    import threading

    from app.storage.db import read_only_session

    _append(services, 3)
    written = threading.Event()
    with read_only_session(services.engine) as session:
        session.execute(text("SELECT count(*) FROM audit_events")).scalar()  # snapshot open
        writer = threading.Thread(target=lambda: (_append(services, 1), written.set()))
        writer.start()
        assert written.wait(timeout=10)
        writer.join()
        assert verify_chain(session).ok


@pytest.mark.parametrize("chunked", [True, False], ids=["libpq 17 chunks", "row by row"])
def test_a_walk_that_stops_early_leaves_the_session_usable(services, monkeypatch, chunked):
    """On PostgreSQL verify streams the chain: stopping at a broken link early in a long
    chain cancels the rest of the stream, which must not abort the caller's transaction."""
    import psycopg

    monkeypatch.setattr(psycopg.capabilities, "has_stream_chunked", lambda check=False: chunked)
    from datetime import UTC, datetime

    from sqlalchemy import insert, update

    from app.audit.chain import GENESIS, seal
    from app.storage.models import AuditEvent, AuditHead

    previous, rows = GENESIS, []
    moment = datetime(2026, 1, 5, tzinfo=UTC)
    event = {"type": "decision", "call_sid": "CA1", "recording_sid": None, "actor": "test"}
    event |= {"occurred_at": moment, "received_at": moment, "reasons": [], "detail": {}}
    for sequence in range(1, 20_001):  # far more than the stream has in flight
        rows.append(seal(event | {"policy_version": None}, sequence, previous))
        previous = rows[-1]["hash"]
    with services.engine.begin() as connection:
        connection.execute(insert(AuditEvent), rows)
        connection.execute(update(AuditHead).values(sequence=20_000, hash=previous))
    with _without_triggers(services) as connection:
        connection.execute(text("UPDATE audit_events SET type = 'x' WHERE sequence = 3"))
    with services.sessions() as session:
        assert verify_chain(session).as_dict() == {
            "ok": False,
            "sequence": 3,
            "problem": "content_changed",
        }
        assert session.execute(text("SELECT count(*) FROM audit_events")).scalar() == 20_000


def test_events_appended_during_a_walk_are_no_gap(services, monkeypatch) -> None:
    """A live service appends while a long verify walks: the walk and its final look at
    the head row must see one snapshot, or the newer head reads as a cut tail."""
    from app.audit import verify
    from app.storage.db import read_only_session

    _append(services, 5)
    walk = verify._rows

    @contextmanager
    def rows_then_an_append(session):
        with walk(session) as rows:
            yield rows
        _append(services, 1)  # committed by another connection before the head is read

    monkeypatch.setattr(verify, "_rows", rows_then_an_append)
    with read_only_session(services.engine) as session:
        assert verify_chain(session).as_dict() == {"ok": True, "events": 5}


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 12, 5, 3, 15, 31, 924897, tzinfo=UTC),
        datetime(2026, 1, 1, tzinfo=UTC),  # no microseconds: still six digits
        datetime(2026, 3, 29, 1, 30, 0, 5, tzinfo=timezone(timedelta(hours=-5))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(999, 1, 1, tzinfo=UTC),
    ],
)
def test_times_are_hashed_in_the_documented_format(moment: datetime) -> None:
    expected = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    assert chain.timestamp(moment) == expected
