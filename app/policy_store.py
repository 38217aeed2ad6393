"""Policy versions in the database: every instance uses the newest activation."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import audit
from app.models import PolicyActivation, PolicyVersion
from app.recording_policy import DEFAULT_POLICY_PATH, Policy, PolicyError, load_policy_text


@dataclass(frozen=True)
class ActivePolicy:
    version: int
    policy: Policy


_parsed: dict[int, Policy | PolicyError] = {}
_parsed_lock = threading.Lock()


def _parse(session: Session, version: int) -> Policy | None:
    """Parse a stored version once per process (a version's content never changes).
    None when it does not exist or no longer validates."""
    with _parsed_lock:
        cached = _parsed.get(version)
    if cached is None:
        row = session.get(PolicyVersion, version)
        if row is None:
            return None
        try:
            cached = load_policy_text(row.source, f"policy version {version}")
        except PolicyError as exc:
            cached = exc
        with _parsed_lock:
            _parsed[version] = cached
    return None if isinstance(cached, PolicyError) else cached


def active_policy(session: Session) -> ActivePolicy | None:
    """The active version, or None when there is none or it no longer validates
    (callers then apply the fail-safe)."""
    version = session.scalar(
        select(PolicyActivation.version).order_by(PolicyActivation.id.desc()).limit(1)
    )
    if version is None:
        return None
    policy = _parse(session, version)
    return None if policy is None else ActivePolicy(version, policy)


def policy_version(session: Session, version: int) -> Policy | None:
    return _parse(session, version)


def activate(session: Session, policy: Policy, source: str, actor: str) -> tuple[int, bool]:
    """Store the content as a version (once per distinct content) and make it active.
    Returns (version, whether this changed the active version)."""
    digest = policy.content_hash()
    row = session.scalar(select(PolicyVersion).where(PolicyVersion.content_sha256 == digest))
    if row is None:
        row = PolicyVersion(content_sha256=digest, name=policy.name, source=source)
        session.add(row)
        session.flush()
    current = active_policy(session)
    if current is not None and current.version == row.version:
        return row.version, False
    session.add(PolicyActivation(version=row.version, activated_by=actor))
    audit.append(
        session,
        audit.EventType.POLICY_ACTIVATED,
        actor=actor,
        policy_version=row.version,
        detail={"name": policy.name, "content_sha256": digest},
    )
    return row.version, True


def ensure_active(session: Session, path: Path | None, actor: str = "system") -> int | None:
    """At start: activate the configured (or bundled) policy file if none is active yet."""
    current = active_policy(session)
    if current is not None:
        return current.version
    source_path = path or DEFAULT_POLICY_PATH
    source = Path(source_path).read_text(encoding="utf-8")
    policy = load_policy_text(source, str(source_path))
    version, _ = activate(session, policy, source, actor)
    return version
