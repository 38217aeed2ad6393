"""Work `callguard serve` does in the background, each on a thread of its own:
the reconcile sweep (a failed pause, resume or stop is retried until the platform matches
the decision, never dropped), the journal replay (webhooks kept while the database was
away are applied once it is back), the audit sequencer's pass (events whose process died
before they were placed in the log: app/audit/sequencer.py) and the fingerprint pass
(app/retention/fingerprints.py: completed recordings' audio hashed once, off the webhook's
path)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import structlog

log = structlog.get_logger(__name__)

SWEEP_SECONDS = 15.0
REPLAY_SECONDS = 1.0
SEQUENCER_SECONDS = 1.0
FINGERPRINT_SECONDS = 10.0


class Periodic:
    def __init__(self, name: str, every: float, action: Callable[[], int]) -> None:
        self.name = name
        self.every = every
        self.action = action
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        # The first pass runs at once: after a crash, what the dead process left half-done
        # (a pause the platform carried out but nobody recorded) is put right on restart.
        while True:
            try:
                done = self.action()
            except Exception:  # keep going: the next pass may find the database back
                log.exception("background_pass_failed", worker=self.name)
                done = 0
            if done:
                log.info("background_pass", worker=self.name, items=done)
            if self._stop.wait(self.every):
                return
