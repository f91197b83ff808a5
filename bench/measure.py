"""Small measuring tools: percentiles, bounded waits, CPU and memory of processes from /proc."""

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


class BenchError(Exception):
    """A scenario could not measure what it set out to (a process died, a wait timed out)."""


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100), interpolating between the two nearest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: list[float]) -> float:
    return percentile(values, 50)


def wait_until(
    check: Callable[[], bool],
    *,
    timeout: float,
    what: str,
    interval: float = 0.05,
    alive: Callable[[], None] | None = None,
) -> float:
    """Poll ``check`` until it holds; return the time it held. ``alive`` raises if a process
    the wait depends on has died, so a crash fails fast instead of at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if check():
            return time.monotonic()
        if alive is not None:
            alive()
        if time.monotonic() > deadline:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


# --- /proc -----------------------------------------------------------------------------------


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(command name, parent pid, CPU seconds) of one process, or None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    ppid = int(fields[1])
    cpu = (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime
    return name, ppid, cpu


def _all_pids() -> list[int]:
    return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants that are alive now."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        stat = _stat(pid)
        if stat is not None:
            children.setdefault(stat[1], []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


class CpuMeter:
    """CPU seconds used per component between two ``sample()`` calls.

    Components are process trees we started (by root pid), the current process, and system
    services recognised by command name (``postgres``, ``redis-server``). Postgres and Redis
    serve everyone on the machine, so their share includes any other user's load.
    """

    def __init__(self, roots: dict[str, int], by_name: dict[str, str]) -> None:
        self.roots = roots
        self.by_name = by_name

    def sample(self) -> dict[str, float]:
        totals = dict.fromkeys([*self.roots, *self.by_name.values(), "bench"], 0.0)
        stats = {pid: s for pid in _all_pids() if (s := _stat(pid)) is not None}
        children: dict[int, list[int]] = {}
        for pid, (_, ppid, _) in stats.items():
            children.setdefault(ppid, []).append(pid)
        for component, root in self.roots.items():
            todo = [root]
            while todo:
                pid = todo.pop()
                if pid in stats:
                    totals[component] += stats[pid][2]
                todo.extend(children.get(pid, []))
        for name, cpu in ((s[0], s[2]) for s in stats.values()):
            if name in self.by_name:
                totals[self.by_name[name]] += cpu
        own = os.times()
        totals["bench"] = own.user + own.system
        return totals

    @staticmethod
    def spent(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
        # A process that exited in between (a postgres backend) takes its seconds with it,
        # so a component can come out slightly low, never negative.
        return {k: max(0.0, after[k] - before.get(k, 0.0)) for k in after}


def rss_mb(pids: Iterable[int]) -> dict[int, float]:
    """Resident memory of each live process, in MB."""
    found = {}
    for pid in pids:
        try:
            pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
        found[pid] = pages * PAGE_KB / 1024
    return found
