"""The reconcile sweep in the background of `callguard serve`: a pause, resume or stop that
failed is retried here until the platform matches the decision, never dropped."""

from __future__ import annotations

import threading

import structlog

from app.calls.reconcile import Reconciler

log = structlog.get_logger(__name__)

SWEEP_SECONDS = 15.0


class Sweeper:
    def __init__(self, reconciler: Reconciler, every: float = SWEEP_SECONDS) -> None:
        self.reconciler = reconciler
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="reconcile-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                drifted = self.reconciler.sweep()
            except Exception:  # keep sweeping: the next pass may find the database back
                log.exception("reconcile_sweep_failed")
                continue
            if drifted:
                log.info("reconcile_sweep", calls=drifted)
