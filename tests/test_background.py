"""The background passes of `callguard serve`: the first runs at once, a failing pass
does not stop the next, and stop() ends them."""

from __future__ import annotations

import threading

from app.runtime.background import Periodic


def test_periodic_work_survives_a_failing_pass_and_stops() -> None:
    passes: list[int] = []
    second = threading.Event()

    def action() -> int:
        passes.append(1)
        if len(passes) == 1:
            raise RuntimeError("database briefly away")
        second.set()
        return 1

    worker = Periodic("test", 0.01, action)
    worker.start()
    assert second.wait(timeout=5)
    worker.stop()
    assert len(passes) >= 2
    assert not worker._thread.is_alive()


def test_the_first_pass_runs_at_start_not_after_a_period() -> None:
    ran = threading.Event()
    worker = Periodic("test", 3600, lambda: ran.set() or 0)
    worker.start()
    assert ran.wait(timeout=5)
    worker.stop()
