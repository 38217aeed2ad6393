#!/usr/bin/env python3
"""Check a callguard evidence pack with no database and no network: copy this one file.

    python3 offline.py evidence.zip --public-key BASE64_ED25519_PUBLIC_KEY

It needs Python 3.11+ and the `cryptography` package (for Ed25519), nothing of callguard's,
and imports nothing of callguard's, so whoever receives a pack (the police, a court, the
ICO, a caller) can run it, or read it and write their own from the README's byte formats.
Exit 0: every check passed; 1: the first check that failed is named; 2: the pack or the key
cannot be read.

What it checks, in order:
1. tree-head.json is signed by the trusted public key (a signed tree head: the log's size,
   its newest event's hash and its RFC 9162 Merkle root; Ed25519 over the UTF-8 JSON of
   its fields except `signature`, keys sorted, separators "," and ":").
2. Every event in events.json hashes to its `hash` (SHA-256 of prev_hash "\\n" sequence
   "\\n" type "\\n" call_sid "\\n" recording_sid "\\n" body) and is in that tree: its leaf
   SHA-256(0x00 || the 32 bytes of its hash) at index sequence - 1, with its inclusion
   proof, gives the signed root (RFC 9162 section 2.1.3.2).
3. The audio file's SHA-256 and length are the recording's fingerprint, and the log itself
   holds that fingerprint: a `recording.fingerprinted` event of the recording, proven in
   step 2, whose detail names the same SHA-256 and length.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import json
import sys
import zipfile
from collections.abc import Sequence
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

TREE_HEAD = "tree-head.json"
EVENTS = "events.json"
RECORDING = "recording.json"
TREE_HEAD_FORMAT = "callguard-audit-checkpoint-2"
SIGNED_FIELDS = ("format", "sequence", "hash", "root", "created_at", "public_key")
FINGERPRINTED = "recording.fingerprinted"


class Unreadable(Exception):
    """The pack or the key cannot be read at all (exit 2)."""


class Failed(Exception):
    """A check failed (exit 1); the message names it."""


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 section 2.1.3.2, step by step."""
    if index < 0 or index >= size or any(len(p) != 32 for p in proof):
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root


def event_hash(event: dict[str, Any]) -> str:
    header = (
        f"{event['prev_hash']}\n{event['sequence']}\n{event['type']}\n"
        f"{event['call_sid'] or ''}\n{event['recording_sid'] or ''}\n"
    )
    return hashlib.sha256(header.encode("utf-8") + event["body"].encode("utf-8")).hexdigest()


def _json(archive: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(archive.read(name))
    except KeyError:
        raise Unreadable(f"the pack has no {name}") from None
    except ValueError as exc:
        raise Unreadable(f"{name} is not JSON: {exc}") from None


def _public_key(text: str) -> Ed25519PublicKey:
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise Unreadable("the public key is not base64 of 32 bytes") from None


def check_tree_head(head: Any, trusted: str) -> tuple[int, bytes]:
    """(size, root) of a tree head signed by the trusted key."""
    if not isinstance(head, dict) or head.get("format") != TREE_HEAD_FORMAT:
        raise Failed(f"tree head: not a {TREE_HEAD_FORMAT} document")
    if head.get("public_key") != trusted:
        raise Failed("tree head: signed by another key than the one trusted")
    try:
        signed = json.dumps(
            {name: head[name] for name in SIGNED_FIELDS}, sort_keys=True, separators=(",", ":")
        ).encode("utf-8")
        _public_key(trusted).verify(base64.b64decode(head["signature"], validate=True), signed)
        size, root = int(head["sequence"]), bytes.fromhex(head["root"])
    except (KeyError, TypeError, ValueError, binascii.Error, InvalidSignature):
        raise Failed("tree head: the signature does not verify") from None
    return size, root


def check_events(events: Any, size: int, root: bytes) -> dict[int, dict[str, Any]]:
    """Every event's hash and inclusion; the events by sequence."""
    if not isinstance(events, list) or not events:
        raise Failed("events: none in the pack")
    proven = {}
    for event in events:
        try:
            sequence = int(event["sequence"])
            if event_hash(event) != event["hash"]:
                raise Failed(f"event {sequence}: its content does not hash to its hash")
            leaf = leaf_hash(bytes.fromhex(event["hash"]))
            proof = [bytes.fromhex(p) for p in event["inclusion_proof"]]
        except (KeyError, TypeError, ValueError, AttributeError):
            raise Failed(f"event {event!r:.80}: malformed") from None
        if not verify_inclusion(leaf, sequence - 1, size, proof, root):
            raise Failed(f"event {sequence}: not in the signed tree head (inclusion proof)")
        proven[sequence] = event
    return proven


def check_audio(archive: zipfile.ZipFile, recording: Any, proven: dict[int, Any]) -> str:
    try:
        sid = recording["recording_sid"]
        expected = recording["fingerprint"]
        name = recording["audio"]
    except (KeyError, TypeError):
        raise Failed("recording.json: malformed") from None
    digest, size = hashlib.sha256(), 0
    try:
        with archive.open(name) as audio:
            for chunk in iter(lambda: audio.read(1 << 16), b""):
                digest.update(chunk)
                size += len(chunk)
    except KeyError:
        raise Failed(f"audio: {name} is not in the pack") from None
    actual = {"sha256": digest.hexdigest(), "bytes": size}
    if actual != expected:
        raise Failed(f"audio: {name} is not the recording's fingerprint {expected}")
    for event in proven.values():
        if event.get("type") == FINGERPRINTED and event.get("recording_sid") == sid:
            detail = json.loads(event["body"]).get("detail")
            if detail == actual:
                return str(sid)
            raise Failed(f"audio: the log's fingerprint of {sid} is {detail}, not {actual}")
    raise Failed(f"audio: no {FINGERPRINTED} event of {sid} among the proven events")


def verify_pack(path: str, trusted: str) -> str:
    """A line saying what was verified; Failed or Unreadable otherwise."""
    _public_key(trusted)
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise Unreadable(f"{path}: not a readable ZIP ({exc})") from None
    with archive:
        size, root = check_tree_head(_json(archive, TREE_HEAD), trusted)
        proven = check_events(_json(archive, EVENTS), size, root)
        sid = check_audio(archive, _json(archive, RECORDING), proven)
    return (
        f"evidence pack verified: recording {sid}, its audio matches its fingerprint, "
        f"{len(proven)} events proven in the signed log of {size} events (root {root.hex()})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Check a callguard evidence pack offline.")
    parser.add_argument("pack", help="the evidence pack (ZIP)")
    parser.add_argument("--public-key", required=True, help="the log's Ed25519 key (base64)")
    args = parser.parse_args(argv)
    try:
        print(verify_pack(args.pack, args.public_key))
    except Failed as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    except Unreadable as exc:
        print(f"unreadable: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
