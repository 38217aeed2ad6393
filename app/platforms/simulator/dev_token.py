"""The simulator's signing token when TWILIO_AUTH_TOKEN is not set: written by the service
at start to ./var/dev-token (mode 0600), where `callguard simulate` reads it."""

from __future__ import annotations

import secrets
from pathlib import Path

from app.config import VAR_DIR

DEV_TOKEN_FILE = VAR_DIR / "dev-token"


def dev_token(path: Path = DEV_TOKEN_FILE) -> str:
    """Kept across restarts so `callguard simulate` and a running simulator keep agreeing."""
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(32)
    path.write_text(token + "\n", encoding="utf-8")
    path.chmod(0o600)
    return token
