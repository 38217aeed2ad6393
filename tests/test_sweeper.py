from __future__ import annotations

import threading

from app.sweeper import Sweeper


class FakeReconciler:
    def __init__(self) -> None:
        self.calls = 0
        self.swept = threading.Event()

    def sweep(self) -> int:
        self.calls += 1
        if self.calls == 1:
            raise RuntimeError("database briefly away")  # the sweeper keeps going
        self.swept.set()
        return 1


def test_sweeper_retries_until_stopped() -> None:
    reconciler = FakeReconciler()
    sweeper = Sweeper(reconciler, every=0.01)  # type: ignore[arg-type]
    sweeper.start()
    assert reconciler.swept.wait(timeout=5)
    sweeper.stop()
    calls = reconciler.calls
    assert calls >= 2
    assert not sweeper._thread.is_alive()
