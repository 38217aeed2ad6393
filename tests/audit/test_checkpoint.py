"""Signed checkpoints find what the chain alone cannot: a history rewritten wholesale."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from app.audit import tree
from app.audit.chain import message
from app.audit.checkpoint import public_key_text, signing_key
from app.cli import cli
from app.config import get_settings
from tests.audit.test_audit_chain import _append, _rebuild_tree, _verify, _without_triggers


def tree_root(services) -> bytes:
    with services.sessions() as session:
        return tree.head(session).root


KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()


@pytest.fixture
def run(services, migrated_url, monkeypatch):
    monkeypatch.setenv("CALLGUARD_DATABASE_URL", migrated_url)
    monkeypatch.setenv("CALLGUARD_AUDIT_SIGNING_KEY", KEY)
    runner = CliRunner()

    def invoke(*args: str, key: str | None = KEY):
        if key is None:
            monkeypatch.delenv("CALLGUARD_AUDIT_SIGNING_KEY")
        else:
            monkeypatch.setenv("CALLGUARD_AUDIT_SIGNING_KEY", key)
        get_settings.cache_clear()
        return runner.invoke(cli, list(args))

    return invoke


def _checkpoint(run, tmp_path: Path, key: str = KEY) -> Path:
    path = tmp_path / "checkpoint.json"
    result = run("audit", "checkpoint", "--output", str(path), key=key)
    assert result.exit_code == 0, result.output
    return path


def _rewrite_from(services, sequence: int) -> None:
    """A forger with the database: change one event, then re-hash it, every later event,
    the Merkle tree and the head, so that the whole log verifies again."""
    with _without_triggers(services) as connection:
        rows = (
            connection.execute(
                text("SELECT * FROM audit_events WHERE sequence >= :s ORDER BY sequence"),
                {"s": sequence},
            )
            .mappings()
            .all()
        )
        previous = rows[0]["prev_hash"]
        for row in rows:
            body = bytes(row["body"])
            if row["sequence"] == sequence:
                body = body.replace(b'"test"', b'"mallory"')
            new = dict(row) | {"prev_hash": previous, "body": body}
            previous = hashlib.sha256(message(new)).hexdigest()
            connection.execute(
                text(
                    "UPDATE audit_events SET prev_hash = :p, hash = :h, body = :b "
                    "WHERE sequence = :s"
                ),
                {"p": new["prev_hash"], "h": previous, "b": body, "s": row["sequence"]},
            )
        connection.execute(text("UPDATE audit_head SET hash = :h"), {"h": previous})
        _rebuild_tree(connection)


def test_a_checkpoint_holds_while_the_chain_grows(services, run, tmp_path) -> None:
    _append(services, 6)
    path = _checkpoint(run, tmp_path)
    document = json.loads(path.read_text())
    assert document["sequence"] == 6
    assert document["format"] == "callguard-audit-checkpoint-2"
    assert document["root"] == tree_root(services).hex()  # a signed tree head
    _append(services, 3)
    result = run("audit", "check-checkpoint", str(path))
    assert result.exit_code == 0, result.output
    assert "checkpoint holds: sequence 6" in result.output
    public = run("audit", "public-key").output.strip()
    assert public == document["public_key"]
    # An auditor without the private key checks with the published public key.
    result = run("audit", "check-checkpoint", str(path), "--public-key", public, key=None)
    assert result.exit_code == 0, result.output


def test_a_rewritten_history_verifies_but_breaks_the_checkpoint(services, run, tmp_path):
    _append(services, 8)
    path = _checkpoint(run, tmp_path)
    _rewrite_from(services, 3)
    assert _verify(services) == {"ok": True, "events": 8}  # the chain alone is fooled
    result = run("audit", "check-checkpoint", str(path))
    assert result.exit_code == 1
    assert "checkpoint at sequence 8: rewritten" in result.output


def test_a_cut_tail_with_the_head_moved_back_is_missing(services, run, tmp_path) -> None:
    _append(services, 5)
    path = _checkpoint(run, tmp_path)
    with _without_triggers(services) as connection:
        connection.execute(text("DELETE FROM audit_events WHERE sequence > 3"))
        connection.execute(
            text(
                "UPDATE audit_head SET sequence = 3, "
                "hash = (SELECT hash FROM audit_events WHERE sequence = 3)"
            )
        )
        _rebuild_tree(connection)
    assert _verify(services) == {"ok": True, "events": 3}
    result = run("audit", "check-checkpoint", str(path))
    assert result.exit_code == 1
    assert "checkpoint at sequence 5: missing" in result.output


def test_a_broken_chain_gets_no_checkpoint_and_fails_a_check(services, run, tmp_path) -> None:
    _append(services, 4)
    path = _checkpoint(run, tmp_path)
    with _without_triggers(services) as connection:
        connection.execute(text("UPDATE audit_events SET type = 'x' WHERE sequence = 2"))
    result = run("audit", "check-checkpoint", str(path))
    assert result.exit_code == 1
    assert "chain_broken (sequence 2: content_changed)" in result.output
    refused = run("audit", "checkpoint", "--output", str(tmp_path / "new.json"))
    assert refused.exit_code == 1
    assert "broken at 2: content_changed" in refused.output
    assert not (tmp_path / "new.json").exists()


def test_an_edited_or_foreign_checkpoint_is_refused(services, run, tmp_path) -> None:
    _append(services, 4)
    path = _checkpoint(run, tmp_path)
    document = json.loads(path.read_text())
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(document | {"sequence": 3}))
    result = run("audit", "check-checkpoint", str(edited))
    assert (result.exit_code, "bad_signature" in result.output) == (1, True)
    # Signed by another key: refused against the trusted one, whatever it says of itself.
    (tmp_path / "other").mkdir()
    foreign = _checkpoint(run, tmp_path / "other", key=OTHER_KEY)
    result = run("audit", "check-checkpoint", str(foreign))
    assert (result.exit_code, "untrusted_key" in result.output) == (1, True)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not JSON"),
        ("[]", "not a JSON object"),
        ('{"format": "callguard-audit-checkpoint-1"}', "field 'sequence' missing"),
        ('{"format": "callguard-audit-checkpoint-3"}', "is not 'callguard-audit-checkpoint-2'"),
        (
            json.dumps(
                {
                    "format": "callguard-audit-checkpoint-2",
                    "sequence": 1,
                    "hash": "0" * 64,
                    "root": "ZZ" * 32,
                    "created_at": "x",
                    "public_key": "x",
                    "signature": "x",
                }
            ),
            "field 'root' is not 64 lowercase hex digits",
        ),
    ],
)
def test_an_unusable_document_exits_2(services, run, tmp_path, content, message) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    result = run("audit", "check-checkpoint", str(path))
    assert result.exit_code == 2
    assert message in result.output


def test_the_signing_key_is_required_and_checked(services, run, tmp_path) -> None:
    _append(services, 1)
    missing = run("audit", "checkpoint", key=None)
    assert missing.exit_code == 2
    assert "CALLGUARD_AUDIT_SIGNING_KEY is not set" in missing.output
    short = run("audit", "checkpoint", key=base64.b64encode(b"x" * 16).decode())
    assert short.exit_code == 2
    assert "CALLGUARD_AUDIT_SIGNING_KEY: 32 bytes expected, got 16" in short.output


def test_new_key_makes_a_usable_key(services, run, tmp_path) -> None:
    key = run("audit", "new-key").output.strip()
    assert len(base64.b64decode(key)) == 32
    _append(services, 2)
    path = _checkpoint(run, tmp_path, key=key)
    assert run("audit", "check-checkpoint", str(path), key=key).exit_code == 0
    path.write_text("{}")  # never overwritten
    again = run("audit", "checkpoint", "--output", str(path), key=key)
    assert again.exit_code == 2
    assert path.read_text() == "{}"


def test_a_format_1_checkpoint_is_still_checked(services, run, tmp_path) -> None:
    """Checkpoints signed before the tree existed (no root) keep holding, and still find
    a rewrite of the chain."""
    _append(services, 5)
    key = signing_key(KEY)
    with services.sessions() as session:
        head = tree.head(session)
    document = {
        "format": "callguard-audit-checkpoint-1",
        "sequence": head.size,
        "hash": head.hash,
        "created_at": "2026-11-29T09:00:00.000000Z",
        "public_key": public_key_text(key),
    }
    signed = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    document["signature"] = base64.b64encode(key.sign(signed)).decode()
    path = tmp_path / "old.json"
    path.write_text(json.dumps(document))
    assert run("audit", "check-checkpoint", str(path)).exit_code == 0
    _rewrite_from(services, 2)
    result = run("audit", "check-checkpoint", str(path))
    assert (result.exit_code, "rewritten" in result.output) == (1, True)
