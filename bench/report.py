"""Printing the table and writing ``bench/results/<timestamp>-<scenario>.json``."""

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.registry import Metric, Outcome

RESULTS_DIR = Path(__file__).resolve().parent / "results"
BASE_DIR = Path(__file__).resolve().parent.parent


@dataclass
class Result:
    scenario: str
    quick: bool
    started_at: str  # ISO 8601, UTC
    duration_s: float
    machine: dict[str, Any]
    outcome: Outcome


def ratio(metric: Metric, metrics: list[Metric]) -> float | None:
    """``metric`` divided by its baseline: below 1 for a slower throughput, above 1 for a
    longer latency."""
    if metric.baseline is None:
        return None
    base = next((m for m in metrics if m.key == metric.baseline), None)
    if base is None or base.value == 0:
        return None
    return metric.value / base.value


def machine() -> dict[str, Any]:
    """What the figures depend on; the load average shows how noisy the machine was."""
    mem_kb = 0
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kb = int(line.split()[1])
    cpu_model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu_model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu_model,
        "memory_gb": round(mem_kb / 1024 / 1024, 1),
        "loadavg": list(os.getloadavg()),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "git_commit": _git_commit(),
    }


def _git_commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=BASE_DIR,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


def write(result: Result, stamp: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{stamp}-{result.scenario}.json"
    body = asdict(result)
    body["ratios"] = {
        m.key: ratio(m, result.outcome.metrics)
        for m in result.outcome.metrics
        if m.baseline is not None
    }
    path.write_text(json.dumps(body, indent=2, default=str) + "\n")
    return path


def table(result: Result) -> str:
    metrics = result.outcome.metrics
    by_key = {m.key: m for m in metrics}
    rows = [("metric", "value", "baseline", "baseline value", "ratio")]
    for m in metrics:
        base = by_key.get(m.baseline) if m.baseline else None
        r = ratio(m, metrics)
        rows.append(
            (
                m.label,
                _fmt(m.value, m.unit),
                base.label if base else "",
                _fmt(base.value, base.unit) if base else "",
                f"{r:.3f}x" if r is not None else "",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        f"== {result.scenario}{' (quick)' if result.quick else ''}: "
        f"{result.started_at}, {result.duration_s:.0f} s, "
        f"{result.machine['nproc']} cores, load {result.machine['loadavg'][0]:.2f}"
    ]
    for i, row in enumerate(rows):
        lines.append(
            "  ".join(
                cell.ljust(w) if j in (0, 2) else cell.rjust(w)
                for j, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _fmt(value: float, unit: str) -> str:
    if abs(value) >= 100:
        return f"{value:.0f} {unit}"
    if abs(value) >= 10:
        return f"{value:.1f} {unit}"
    return f"{value:.2f} {unit}"


def utc_stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")
