"""Issue 16 item 4: evidence packs. A pack exported through the API (governance only) or
the CLI holds the audio, its fingerprint, every event of the call with its inclusion proof,
the signed tree head and a statement; `evidence verify` (and the standalone offline.py, run
as a script) accepts it with no database, and fails at the right item when an audio byte,
an event, a proof, the tree head or its signature is altered. The export is itself logged,
and proven in the pack it made."""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import update

from app.audit.checkpoint import public_key_text, signing_key
from app.evidence import offline
from app.platforms.simulator.media import silent_wav
from app.retention.fingerprints import Fingerprinter
from app.retention.media import WAV, Media
from app.storage.db import unit_of_work
from app.storage.models import Recording, utcnow
from tests.governance.conftest import People, events

KEY = base64.b64encode(bytes(range(32))).decode()
PUBLIC = public_key_text(signing_key(KEY))
OTHER_PUBLIC = public_key_text(signing_key(base64.b64encode(bytes(range(1, 33))).decode()))
AUDIO = silent_wav()
OFFLINE = Path(offline.__file__)


@pytest.fixture
def settings(settings):  # the conftest's, with a signing key
    return settings.model_copy(update={"audit_signing_key": SecretStr(KEY)})


def export(client, people: People, sid: str, case: str = "OP-2026-0042"):
    return client.post(
        f"/api/v1/recordings/{sid}/evidence",
        json={"case_reference": case},
        headers=people.governance,
    )


def pack_of(client, people: People, sid: str) -> bytes:
    response = export(client, people, sid)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    return response.content


def verify(tmp_path: Path, data: bytes, key: str = PUBLIC) -> str:
    path = tmp_path / "pack.zip"
    path.write_bytes(data)
    return offline.verify_pack(str(path), key)


def altered(data: bytes, name: str, change) -> bytes:
    """The pack with one entry changed by `change(bytes) -> bytes`."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            content = source.read(info.filename)
            target.writestr(info.filename, change(content) if info.filename == name else content)
    return out.getvalue()


def edit_json(data: bytes, name: str, edit) -> bytes:
    def change(content: bytes) -> bytes:
        value = json.loads(content)
        edit(value)
        return json.dumps(value).encode()

    return altered(data, name, change)


def failure(tmp_path: Path, data: bytes, key: str = PUBLIC) -> str:
    with pytest.raises(offline.Failed) as raised:
        verify(tmp_path, data, key)
    return str(raised.value)


def test_a_pack_holds_the_recording_its_history_and_proofs(
    client, services, people: People, completed, tmp_path
) -> None:
    call_sid, sid = completed
    data = pack_of(client, people, sid)
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert sorted(archive.namelist()) == sorted(
        ["statement.txt", "recording.json", f"audio/{sid}.wav", "events.json", "tree-head.json"]
    )
    assert archive.read(f"audio/{sid}.wav") == AUDIO  # the platform's bytes
    recording = json.loads(archive.read("recording.json"))
    assert recording["fingerprint"] == {
        "sha256": hashlib.sha256(AUDIO).hexdigest(),
        "bytes": len(AUDIO),
    }
    assert (recording["call_sid"], recording["case_reference"]) == (call_sid, "OP-2026-0042")
    pack_events = json.loads(archive.read("events.json"))
    with services.sessions() as session:
        from app.audit import log as audit

        logged = audit.events_for(session, call_sid=call_sid)
    # Every event of the call, the export's own included (logged before the tree head).
    assert [e["sequence"] for e in pack_events] == [e.sequence for e in logged]
    assert pack_events[-1]["type"] == "evidence.exported"
    (exported,) = events(services, "evidence.exported", recording_sid=sid)
    assert (
        exported.detail == {"case_reference": "OP-2026-0042"} and exported.actor == "governance-1"
    )
    assert events(services, "recording.fingerprinted", recording_sid=sid)  # taken on the way
    statement = archive.read("statement.txt").decode()
    assert "OP-2026-0042" in statement and hashlib.sha256(AUDIO).hexdigest() in statement
    assert "exported an evidence pack for case OP-2026-0042" in statement
    assert "made for the Contact Harlow department (contact-harlow)" in statement
    assert "verified" in verify(tmp_path, data)


def test_every_alteration_fails_at_its_item(client, people: People, completed, tmp_path) -> None:
    _call, sid = completed
    data = pack_of(client, people, sid)
    audio = f"audio/{sid}.wav"
    # One audio byte.
    flipped = altered(data, audio, lambda b: b[:-1] + bytes([b[-1] ^ 1]))
    assert failure(tmp_path, flipped).startswith(f"audio: {audio} is not the recording's")
    # The audio and recording.json's fingerprint both changed: the log's fingerprint says no.
    other = b"RIFF-not-the-recording"

    def refingerprint(value):
        value["fingerprint"] = {"sha256": hashlib.sha256(other).hexdigest(), "bytes": len(other)}

    forged = edit_json(altered(data, audio, lambda _: other), "recording.json", refingerprint)
    assert "the log's fingerprint of" in failure(tmp_path, forged)
    # An event's content.
    first = json.loads(zipfile.ZipFile(io.BytesIO(data)).read("events.json"))[0]["sequence"]

    def reword(value):
        value[0]["body"] = value[0]["body"].replace("inbound", "outbound")

    assert failure(tmp_path, edit_json(data, "events.json", reword)) == (
        f"event {first}: its content does not hash to its hash"
    )

    # An event rewritten and re-hashed: its hash is no longer the one the log holds.
    def rehash(value):
        value[0]["body"] = value[0]["body"].replace("inbound", "outbound")
        value[0]["hash"] = offline.event_hash(value[0])

    assert failure(tmp_path, edit_json(data, "events.json", rehash)) == (
        f"event {first}: not in the signed tree head (inclusion proof)"
    )

    # A proof.
    def bend(value):
        value[0]["inclusion_proof"][0] = "00" * 32

    assert "not in the signed tree head" in failure(tmp_path, edit_json(data, "events.json", bend))

    # The tree head: its root, its size, its signature.
    def reroot(value):
        value["root"] = "11" * 32

    def resign(value):
        value["signature"] = base64.b64encode(bytes(64)).decode()

    for edit in (reroot, resign):
        assert failure(tmp_path, edit_json(data, "tree-head.json", edit)) == (
            "tree head: the signature does not verify"
        )
    # Trusting another key.
    assert failure(tmp_path, data, OTHER_PUBLIC) == (
        "tree head: signed by another key than the one trusted"
    )

    # The fingerprint's event removed from the pack.
    def drop_fingerprint(value):
        value[:] = [e for e in value if e["type"] != "recording.fingerprinted"]

    assert "no recording.fingerprinted event" in failure(
        tmp_path, edit_json(data, "events.json", drop_fingerprint)
    )


def test_the_cli_exports_and_verifies_offline(
    run_cli, services, people: People, completed, tmp_path, monkeypatch
) -> None:
    _call, sid = completed
    # The CLI's own process holds no simulated audio: it reads the platform the server does.
    monkeypatch.setattr("app.cli.evidence.build_media", lambda _settings: services.media)
    target = tmp_path / "evidence.zip"
    result = run_cli(
        "evidence",
        "export",
        sid,
        "--case",
        "OP-7",
        "--output",
        str(target),
        env={"CALLGUARD_AUDIT_SIGNING_KEY": KEY},
    )
    assert result.exit_code == 0, result.output
    again = run_cli("evidence", "export", sid, "--case", "OP-7", "--output", str(target))

    assert again.exit_code == 2 and "never overwritten" in again.output
    checked = run_cli("evidence", "verify", str(target), "--public-key", PUBLIC)
    assert checked.exit_code == 0 and "evidence pack verified" in checked.output
    bad = tmp_path / "bad.zip"
    bad.write_bytes(altered(target.read_bytes(), f"audio/{sid}.wav", lambda b: b + b"x"))
    failed = run_cli("evidence", "verify", str(bad), "--public-key", PUBLIC)
    assert failed.exit_code == 1 and "audio:" in failed.output
    assert run_cli("evidence", "verify", str(tmp_path), "--public-key", PUBLIC).exit_code == 2
    assert run_cli("evidence", "export", sid, "--case", "a\nb", "--output", str(bad)).exit_code == 2


def test_the_standalone_checker_needs_nothing_of_callguards(
    client, people: People, completed, tmp_path
) -> None:
    tree = ast.parse(OFFLINE.read_text())
    imported = {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    } | {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}
    _call, sid = completed
    path = tmp_path / "pack.zip"
    path.write_bytes(pack_of(client, people, sid))
    copied = tmp_path / "offline.py"  # one file, copied out of the repository
    copied.write_text(OFFLINE.read_text())
    ran = subprocess.run(
        [sys.executable, "-I", str(copied), str(path), "--public-key", PUBLIC],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert (ran.returncode, ran.stdout.startswith("evidence pack verified")) == (0, True), ran
    ran = subprocess.run(
        [sys.executable, "-I", str(copied), str(path), "--public-key", OTHER_PUBLIC],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ran.returncode == 1 and "signed by another key" in ran.stderr


class OtherBytes:
    def open(self, recording_sid: str, byte_range: str | None = None) -> Media:
        return Media(iter([b"RIFF-changed-at-the-platform"]), WAV, lambda: None, 200, {})


def test_refusals(client, services, people: People, completed, monkeypatch) -> None:
    _call, sid = completed
    assert export(client, people, sid).status_code == 200  # fingerprinted on the way
    for role in ("agent", "supervisor", "admin"):
        assert (
            client.post(
                f"/api/v1/recordings/{sid}/evidence",
                json={"case_reference": "X"},
                headers=getattr(people, role),
            ).status_code
            == 403
        )
    assert export(client, people, "RE" + "0" * 32).status_code == 404
    for bad in ("", "   ", "a\nb", "x" * 101):
        assert export(client, people, sid, bad).status_code == 422
    # Audio that no longer matches its fingerprint: no pack, and the loud alert.
    assert Fingerprinter(services.sessions, services.media).run_once() == 0  # taken already
    monkeypatch.setattr(services, "media", OtherBytes())
    refused = export(client, people, sid)
    assert (refused.status_code, refused.json()["error"]) == (409, "fingerprint_mismatch")
    assert events(services, "recording.fingerprint_mismatch", recording_sid=sid)
    with unit_of_work(services.sessions) as session:
        session.execute(
            update(Recording).where(Recording.recording_sid == sid).values(destroyed_at=utcnow())
        )
    assert export(client, people, sid).status_code == 410


def test_no_signing_key_no_pack(client, services, people: People, completed) -> None:
    services.settings = services.settings.model_copy(update={"audit_signing_key": None})
    _call, sid = completed
    refused = export(client, people, sid)
    assert refused.status_code == 503 and "CALLGUARD_AUDIT_SIGNING_KEY" in refused.json()["detail"]
