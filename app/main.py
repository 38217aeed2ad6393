"""The ASGI application. Nothing happens at import: create_app builds everything."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from app import web
from app.api import (
    controls,
    errors,
    evidence,
    governance,
    health,
    limits,
    observability,
    people,
    ratelimit,
)
from app.audit.sequencer import place_waiting
from app.config import Settings, get_settings
from app.platforms import platform_named
from app.platforms.base import Worker
from app.retention.fingerprints import Fingerprinter
from app.runtime.background import (
    FINGERPRINT_SECONDS,
    REPLAY_SECONDS,
    SEQUENCER_SECONDS,
    SWEEP_SECONDS,
    Periodic,
)
from app.runtime.logging import configure_logging
from app.runtime.metrics import StateCollector
from app.runtime.services import Services, build_services
from app.storage.db import unit_of_work
from app.storage.policy_versions import ensure_active


def create_app(
    settings: Settings | None = None,
    services: Services | None = None,
    *,
    background: bool = False,
) -> FastAPI:
    """`services` may be injected (tests). `background` (serve mode) starts the reconcile
    sweep, the journal replay, the audit sequencer's pass (events a dead process left
    waiting), the fingerprint pass and the platform's own workers (the
    simulator's callback sender); tests drive them themselves. The platform's routes are
    CALLGUARD_PROVIDER's."""
    settings = settings or (services.settings if services else get_settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        built = services or build_services(settings)
        with unit_of_work(built.sessions) as session:
            ensure_active(session, settings.policy_file)
        app.state.services = built
        state_registry.register(StateCollector(built.sessions, built.journal.backlog))
        workers: list[Worker] = []
        if background:
            workers.append(Periodic("reconcile-sweep", SWEEP_SECONDS, built.reconciler.sweep))
            workers.append(Periodic("journal-replay", REPLAY_SECONDS, built.replayer.run_once))
            workers.append(
                Periodic("audit-sequencer", SEQUENCER_SECONDS, partial(place_waiting, built.engine))
            )
            fingerprints = Fingerprinter(built.sessions, built.media)
            workers.append(Periodic("fingerprints", FINGERPRINT_SECONDS, fingerprints.drain))
            workers += built.platform.workers(built)
        for worker in workers:
            worker.start()
        try:
            yield
        finally:
            for worker in workers:
                worker.stop()
            if services is None:
                built.close()

    configure_logging()
    app = FastAPI(
        title="callguard",
        version="0.1.0",
        summary="Call-recording control middleware",
        lifespan=lifespan,
    )
    errors.install(app)
    ratelimit.install(app, settings)  # failed bearer tokens: 429 per client
    app.add_middleware(limits.BodyLimit)  # inside Observe, so a 413 is logged and counted
    state_registry = CollectorRegistry(auto_describe=True)
    observability.install(app, state_registry)
    app.include_router(health.router)
    for router in platform_named(settings.provider).routers():
        app.include_router(router)
    app.include_router(people.router)
    app.include_router(controls.router)
    app.include_router(governance.router)
    app.include_router(evidence.router)
    web.install(app)
    return app


def serve_app() -> FastAPI:
    """uvicorn's factory for `callguard serve`."""
    return create_app(background=True)
