"""Waiting for work that other threads and processes do (a worker, the engine, webhooks)."""

import time
from collections.abc import Callable


def eventually[T](check: Callable[[], T], timeout: float = 45, what: str = "condition") -> T:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds. The
    bound is generous: a loaded two-core machine runs the server, engine and worker at once."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
    return result
