"""Waiting in tests: poll a condition until it holds or a timeout passes."""

from __future__ import annotations

from collections.abc import Callable
import time


def wait_for(
    predicate: Callable[[], object],
    timeout: float = 20.0,
    period: float = 0.02,
    step: Callable[[], None] | None = None,
) -> bool:
    """Poll `predicate` until it holds (True) or `timeout` seconds pass (False).

    Between polls it runs `step` (e.g. spinning an executor), or sleeps `period` seconds.
    """
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        if step is None:
            time.sleep(period)
        else:
            step()
    return True


def spin_until(executor, predicate: Callable[[], object], timeout: float = 10.0) -> bool:
    """Spin `executor` until `predicate()` holds or `timeout` seconds pass."""
    return wait_for(predicate, timeout, step=lambda: executor.spin_once(timeout_sec=0.05))
