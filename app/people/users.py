"""People and their bearer tokens. Only a SHA-256 of a token is stored: tokens are 256-bit
random values, so a fast hash is enough (there is no password to brute-force)."""

from __future__ import annotations

import hashlib
import re
import secrets
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.errors import BadRequest, Conflict, NotFound
from app.storage.models import User, utcnow

TOKEN_PREFIX = "cg_"  # noqa: S105  (a prefix, not a secret)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class Role(StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    GOVERNANCE = "governance"
    ADMIN = "admin"


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def add_user(session: Session, name: str, role: Role, actor: str = "cli") -> str:
    """Create a person; returns their new token (shown once, never stored)."""
    if not _NAME.match(name):
        raise BadRequest(f"user name {name!r} must be 1-100 letters, digits or . _ @ - (no spaces)")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} already exists")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(User(name=name, role=str(role), token_sha256=token_digest(token)))
    audit.append(
        session, audit.EventType.USER_ADDED, actor=actor, detail={"user": name, "role": role}
    )
    return token


def disable_user(session: Session, name: str, actor: str = "cli") -> None:
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user named {name!r}")
    if user.disabled_at is None:
        user.disabled_at = utcnow()
        audit.append(session, audit.EventType.USER_DISABLED, actor=actor, detail={"user": name})


def user_for_token(session: Session, token: str) -> User | None:
    """The enabled user holding this token, checked on every request (so a disable
    takes effect at once)."""
    user = session.scalar(select(User).where(User.token_sha256 == token_digest(token)))
    if user is None or user.disabled_at is not None:
        return None
    return user
