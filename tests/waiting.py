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


class Clock:
    """A stand-in for the ``time`` module of code that only reads ``monotonic()`` and
    ``sleep()``s (the Flows client): time moves only when the test moves it or the code sleeps,
    so neither a token's expiry nor a back-off depends on how loaded the machine is. ``slept``
    lists every wait the code asked for, in order."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds
