"""Small helpers shared by the ROS tests."""

from __future__ import annotations

import time


def spin_until(executor, predicate, timeout: float = 10.0) -> bool:
    """Spin `executor` until `predicate()` holds or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        executor.spin_once(timeout_sec=0.05)
    return True
