"""Webhooks that arrive while the database is unreachable are not lost: each is written to
a local journal (one file per entry, fsync'd, then renamed into place, so a crash never
leaves half an entry) and replayed into the database, oldest first, when it is back.

Replay is exactly-once because every webhook is applied through its usual dedupe key: an
entry applied just before a crash, and so replayed again, is recognised as a duplicate.
Entries hold webhook forms, which carry phone numbers: they are encrypted (AES-GCM, with a
key derived from CALLGUARD_NUMBER_KEY)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SUFFIX = ".entry"


@dataclass(frozen=True)
class Entry:
    name: str
    path: str  # the webhook's path and query, as the platform called it (names the platform)
    form: dict[str, Any]  # the platform's payload as it arrived
    token: str | None  # the platform's idempotency token, if it sent one
    received_at_ns: int


class Journal:
    def __init__(self, directory: Path, secret: str) -> None:
        self.directory = directory
        self._aead = AESGCM(hashlib.sha256(f"callguard-journal:{secret}".encode()).digest())

    def append(self, path: str, form: dict[str, Any], token: str | None) -> str:
        """Durably record one webhook; returns the entry's name."""
        self.directory.mkdir(parents=True, exist_ok=True)
        now = time.time_ns()
        name = f"{now:020d}-{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}"
        payload = json.dumps({"path": path, "form": form, "token": token, "at": now}).encode()
        nonce = secrets.token_bytes(12)
        data = nonce + self._aead.encrypt(nonce, payload, name.encode())
        temporary = self.directory / f".{name}.tmp"
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(self.directory / name)
        self._sync_directory()
        return name

    def backlog(self) -> int:
        if not self.directory.exists():
            return 0
        return sum(1 for p in self.directory.iterdir() if p.name.endswith(SUFFIX))

    def replay(self, apply: Callable[[Entry], None]) -> int:
        """Apply every entry, oldest first, removing each once applied. Stops at the first
        failure (the database went away again): order is kept for the next attempt. One
        replayer at a time across processes (a lock file)."""
        replayed = 0
        with self._replay_lock() as locked:
            if not locked:
                return 0
            for entry_path in sorted(self.directory.glob(f"*{SUFFIX}")):
                apply(self._read(entry_path))
                entry_path.unlink()
                replayed += 1
            if replayed:
                self._sync_directory()
        return replayed

    def _read(self, entry_path: Path) -> Entry:
        data = entry_path.read_bytes()
        payload: dict[str, Any] = json.loads(
            self._aead.decrypt(data[:12], data[12:], entry_path.name.encode())
        )
        return Entry(
            name=entry_path.name,
            path=payload["path"],
            form=payload["form"],
            token=payload["token"],
            received_at_ns=payload["at"],
        )

    @contextmanager
    def _replay_lock(self) -> Iterator[bool]:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / "replay.lock").open("w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _sync_directory(self) -> None:
        descriptor = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
