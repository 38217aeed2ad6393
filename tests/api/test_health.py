"""/healthz and /readyz: liveness, and readiness (database reachable, migrations at
head)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from app.storage.db import make_engine


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_ready_at_head(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": "ok",
        "migrations": "ok",
        "audit_sequencing": "ok",  # nothing waits for its place in the log
    }


def test_readyz_not_ready_behind_head(client: TestClient, services, migrated_url: str) -> None:
    from app.storage import migrate

    migrate.downgrade(migrated_url, "base")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert "head is" in response.json()["checks"]["migrations"]


def test_readyz_not_ready_without_database(client: TestClient, services, tmp_path) -> None:
    services.engine = make_engine(f"sqlite:///{tmp_path}")  # a directory: cannot be opened
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("unreachable")
