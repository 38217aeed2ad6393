"""Issue 16 items 1 and 5: the stored log's tree, read by outsiders. Proofs from the
database (app/audit/tree.py) equal RFC 9162's recursive definitions (tests/audit/
test_merkle.py's Reference, hashlib only) over the events' hashes; the tree head and
consistency proofs are served without a token and check with the RFC's verifiers; the
monitor keeps the last head it saw and names a log that was cut or rewritten."""

from __future__ import annotations

import base64
import json
from contextlib import nullcontext

import pytest
from pydantic import SecretStr
from sqlalchemy import text

from app.audit import merkle, tree
from app.audit.checkpoint import public_key_text, signing_key
from app.audit.monitor import check
from tests.audit.test_audit_chain import _append, _rebuild_tree, _without_triggers
from tests.audit.test_merkle import Reference

KEY = base64.b64encode(bytes(range(32))).decode()
PUBLIC = public_key_text(signing_key(KEY))


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"audit_signing_key": SecretStr(KEY)})


def hashes(services) -> list[bytes]:
    with services.engine.connect() as connection:
        rows = connection.execute(text("SELECT hash FROM audit_events ORDER BY sequence"))
        return [bytes.fromhex(h) for (h,) in rows]


def test_proofs_from_the_database_are_the_rfcs(services) -> None:
    for batch in (1, 2, 3, 5, 8, 13):  # transactions of uneven sizes: batches of the tree
        _append(services, batch)
    entries = hashes(services)
    n = len(entries)
    reference = Reference(entries)
    with services.sessions() as session:
        assert tree.head(session).root == reference.mth(0, n)
        for size in range(1, n + 1):
            assert tree.root_at(session, size) == reference.mth(0, size)
            for sequence in range(1, size + 1):
                assert tree.inclusion(session, sequence, size) == reference.path(
                    sequence - 1, 0, size
                )
            for first in range(1, size):
                assert tree.consistency(session, first, size) == reference.proof(first, size)


def test_the_tree_head_needs_no_token_and_proves_consistency(client, services) -> None:
    _append(services, 5)
    first = client.get("/api/v1/audit/tree-head")
    assert first.status_code == 200
    old = first.json()
    assert old["format"] == "callguard-audit-checkpoint-2" and old["public_key"] == PUBLIC
    _append(services, 7)
    new = client.get("/api/v1/audit/tree-head").json()
    assert new["sequence"] == old["sequence"] + 7
    answer = client.get(
        "/api/v1/audit/consistency", params={"from": old["sequence"], "to": new["sequence"]}
    )
    assert answer.status_code == 200
    proof = [bytes.fromhex(p) for p in answer.json()["proof"]]
    assert merkle.verify_consistency(
        old["sequence"],
        new["sequence"],
        bytes.fromhex(old["root"]),
        bytes.fromhex(new["root"]),
        proof,
    )
    for params, status in (
        ({"from": 3, "to": new["sequence"] + 1}, 400),  # beyond the log
        ({"from": 9, "to": 4}, 400),
        ({"from": -1, "to": 4}, 422),
        ({"from": "x", "to": 4}, 422),
        ({"from": 2**63, "to": 4}, 422),
        ({"to": 4}, 422),
    ):
        assert client.get("/api/v1/audit/consistency", params=params).status_code == status


def test_no_signing_key_no_tree_head(client, services) -> None:
    services.settings = services.settings.model_copy(update={"audit_signing_key": None})
    refused = client.get("/api/v1/audit/tree-head")
    assert refused.status_code == 503
    assert "CALLGUARD_AUDIT_SIGNING_KEY" in refused.json()["detail"]


def test_the_monitor_follows_a_growing_log(client, services, tmp_path) -> None:
    state = tmp_path / "head.json"
    _append(services, 4)
    assert check(client, PUBLIC, state).outcome == "first"
    assert check(client, PUBLIC, state).outcome == "unchanged"
    _append(services, 3)
    seen = check(client, PUBLIC, state)
    assert (seen.outcome, seen.now - seen.before) == ("extended", 3)
    assert json.loads(state.read_text())["sequence"] == seen.now


def test_the_monitor_names_a_rewritten_or_cut_log(client, services, tmp_path) -> None:
    state = tmp_path / "head.json"
    _append(services, 6)
    check(client, PUBLIC, state)
    kept = state.read_text()
    # A forger rewrites event 2 and everything after it, the tree and the head included,
    # then appends: the log verifies, but it does not extend what the monitor saw.
    with _without_triggers(services) as connection:
        connection.execute(text("DELETE FROM audit_events WHERE sequence >= 2"))
        connection.execute(
            text("UPDATE audit_head SET sequence = 1, hash = (SELECT hash FROM audit_events)")
        )
        _rebuild_tree(connection)
    _append(services, 7)
    seen = check(client, PUBLIC, state)
    assert (seen.outcome, seen.ok) == ("forked", False)
    assert state.read_text() == kept  # the evidence is not overwritten
    # Cut back below what was seen.
    with _without_triggers(services) as connection:
        connection.execute(text("DELETE FROM audit_events WHERE sequence >= 3"))
        connection.execute(
            text(
                "UPDATE audit_head SET sequence = 2, "
                "hash = (SELECT hash FROM audit_events WHERE sequence = 2)"
            )
        )
        _rebuild_tree(connection)
    assert check(client, PUBLIC, state).outcome == "shrunk"
    # Signed by someone else.
    other = public_key_text(signing_key(base64.b64encode(bytes(range(1, 33))).decode()))
    assert check(client, other, state).outcome == "bad_signature"


def test_the_monitor_command(client, services, tmp_path, monkeypatch) -> None:
    """`callguard audit monitor URL`: 0 while consistent, 1 when not, 2 when unusable."""
    from typer.testing import CliRunner

    from app.cli import cli

    _append(services, 3)
    # The command's HTTP client is the test's (already started: not entered again).
    monkeypatch.setattr("app.cli.audit.httpx.Client", lambda **_: nullcontext(client))
    state = tmp_path / "head.json"
    runner = CliRunner()

    def run(key: str = PUBLIC):
        args = ["audit", "monitor", "https://callguard.example.org", "--public-key", key]
        return runner.invoke(cli, [*args, "--state", str(state)])

    result = run()
    size = json.loads(state.read_text())["sequence"]  # the policy's activation and the three
    assert result.exit_code == 0 and f"log first: {size} events, consistent" in result.output
    _append(services, 2)
    assert f"log extended: {size} → {size + 2} events" in run().output
    other = public_key_text(signing_key(base64.b64encode(bytes(range(1, 33))).decode()))
    assert run(other).exit_code == 1
    state.write_text("not json")
    assert run().exit_code == 2
