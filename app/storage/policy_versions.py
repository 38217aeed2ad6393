"""Policy versions in the database: every instance uses the newest activation."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit import log as audit
from app.recording_policy import DEFAULT_POLICY_PATH, Policy, PolicyError, load_policy_text
from app.storage.driver import Sql
from app.storage.models import PolicyActivation, PolicyVersion

_ACTIVATION_LOCK = 0x63_67_70_6F_6C  # "cgpol": the advisory lock of ensure_active


@dataclass(frozen=True)
class ActivePolicy:
    version: int
    policy: Policy


# Parsed policies by content hash: a version's content never changes, and the hash (not
# the version number) is what identifies it across databases.
_parsed: dict[str, Policy | PolicyError] = {}
_parsed_lock = threading.Lock()


def _parse(session: Session, version: int, digest: str) -> Policy | None:
    """None when the stored content no longer validates."""
    with _parsed_lock:
        cached = _parsed.get(digest)
    if cached is None:
        source = session.scalar(
            select(PolicyVersion.source).where(PolicyVersion.version == version)
        )
        try:
            cached = load_policy_text(source or "", f"policy version {version}")
        except PolicyError as exc:
            cached = exc
        with _parsed_lock:
            _parsed[digest] = cached
    return None if isinstance(cached, PolicyError) else cached


# The newest activation and its content hash: on every webhook's path, so sent to the
# driver (app/storage/driver.py).
_ACTIVE = Sql(
    "SELECT a.version, v.content_sha256 FROM policy_activations AS a"
    " JOIN policy_versions AS v ON v.version = a.version ORDER BY a.id DESC LIMIT 1"
)


def active_policy(session: Session) -> ActivePolicy | None:
    """The active version, or None when there is none or it no longer validates
    (callers then apply the fail-safe)."""
    # On the connection (Core): no autoflush of a webhook's pending call row, which would
    # cost a second UPDATE at commit; `activate` flushes its activation itself.
    rows = _ACTIVE.run(session.connection()).fetchall()
    if not rows:
        return None
    ((version, digest),) = rows
    policy = _parse(session, version, digest)
    return None if policy is None else ActivePolicy(version, policy)


def policy_version(session: Session, version: int) -> Policy | None:
    digest = session.scalar(
        select(PolicyVersion.content_sha256).where(PolicyVersion.version == version)
    )
    return None if digest is None else _parse(session, version, digest)


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
    session.flush()  # seen by active_policy, which reads without autoflush
    audit.append(
        session,
        audit.EventType.POLICY_ACTIVATED,
        actor=actor,
        policy_version=row.version,
        detail={"name": policy.name, "content_sha256": digest},
    )
    return row.version, True


def ensure_active(session: Session, path: Path | None, actor: str = "system") -> int | None:
    """At start: activate the configured (or bundled) policy file if none is active yet.
    Instances starting together on a fresh PostgreSQL queue here (SQLite's writers are
    serialised already), so one activates and the others find it active."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_ACTIVATION_LOCK)))
    current = active_policy(session)
    if current is not None:
        return current.version
    source_path = path or DEFAULT_POLICY_PATH
    source = Path(source_path).read_text(encoding="utf-8")
    policy = load_policy_text(source, str(source_path))
    version, _ = activate(session, policy, source, actor)
    return version
