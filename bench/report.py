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


# --- The summary table in BENCHMARKS.md ------------------------------------------------------

SUMMARY_START = "<!-- summary:start -->"
SUMMARY_END = "<!-- summary:end -->"
SUMMARY_PATH = BASE_DIR / "BENCHMARKS.md"

# DESIGN.md's performance targets, by scenario and metric key: (comparison, bound).
TARGETS: dict[str, dict[str, tuple[str, float]]] = {
    "webhooks": {"webhook_p99_50rps": ("<", 250)},
    "reconcile": {
        "pass1_db_ms": ("<", 2000),
        "pass1_mirror_db_ms": ("<", 1000),
        "pass2_rows": ("==", 0),
    },
    "queue": {
        **{
            f"{view}_p95_ms": ("<", 100)
            for view in ("default", "filtered", "search", "page50", "default_supervisor")
        },
        **{f"frag_{name}_p95_ms": ("<", 100) for name in ("rows", "claim", "form", "release")},
        "visible_p95_ms": ("<", 1000),
        "submit_p95_ms": ("<", 1000),
        "web_rss_mb": ("<", 150),
        "worker_rss_mb": ("<", 250),
    },
    "dashboard": {"dashboard_p95_ms": ("<", 300), "fragment_p95_ms": ("<", 300)},
    "staff": {
        "errors": ("==", 0),
        "failed_requests": ("==", 0),
        "lost": ("==", 0),
        "duplicated": ("==", 0),
    },
    "burst": {
        "burst_5xx": ("==", 0),
        "burst_not_stored": ("==", 0),
        "burst_visible_s": ("<", 30),
    },
}


def target_met(op: str, bound: float, value: float) -> bool:
    return {"<": value < bound, "<=": value <= bound, "==": value == bound, ">=": value >= bound}[
        op
    ]


def latest_results(results_dir: Path = RESULTS_DIR, *, quick: bool = False) -> list[dict]:
    """The newest result file of each scenario (full runs only, unless ``quick``), in the
    order the scenarios were run."""
    newest: dict[str, dict] = {}
    for path in sorted(results_dir.glob("*.json")):  # names start with a UTC timestamp
        try:
            body = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(body, dict) or "scenario" not in body:
            continue
        if body.get("quick") and not quick:
            continue
        body["_file"] = path.name
        newest[body["scenario"]] = body
    return sorted(newest.values(), key=lambda b: (b.get("started_at", ""), b["scenario"]))


def summary_table(results: list[dict]) -> str:
    """A Markdown table: every figure that has a same-run baseline or a target, with both."""
    lines = [
        "| scenario | figure | value | baseline (same run) | ratio | target | met | run |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for body in results:
        name = body["scenario"]
        metrics = body["outcome"]["metrics"]
        by_key = {m["key"]: m for m in metrics}
        targets = TARGETS.get(name, {})
        load = body.get("machine", {}).get("loadavg") or [0.0]
        run = (
            f"{body.get('started_at', '')[:16].replace('T', ' ')}, load {load[0]:.1f}"
            f"{', quick' if body.get('quick') else ''}"
        )
        for m in metrics:
            target = targets.get(m["key"])
            if m.get("baseline") is None and target is None:
                continue
            base = by_key.get(m["baseline"]) if m.get("baseline") else None
            ratio = (
                f"{m['value'] / base['value']:.2f}x" if base is not None and base["value"] else ""
            )
            met = ""
            if target is not None:
                met = "yes" if target_met(target[0], target[1], m["value"]) else "**no**"
            lines.append(
                "| "
                + " | ".join(
                    [
                        f"`{name}`",
                        m["label"],
                        _fmt(m["value"], m["unit"]),
                        f"{_fmt(base['value'], base['unit'])} ({base['label']})" if base else "",
                        ratio,
                        f"{target[0]} {target[1]:g} {m['unit']}" if target else "",
                        met,
                        run,
                    ]
                ).replace("\n", " ")
                + " |"
            )
    return "\n".join(lines)


def summary_write(path: Path, results: list[dict], *, now: datetime) -> None:
    """Rewrite what lies between the summary markers in ``path`` (Markdown), nothing else.
    Refuses (ValueError) when the markers are missing, doubled or out of order."""
    text = path.read_text()
    if text.count(SUMMARY_START) != 1 or text.count(SUMMARY_END) != 1:
        raise ValueError(f"{path} needs exactly one {SUMMARY_START} and one {SUMMARY_END}")
    if text.index(SUMMARY_END) < text.index(SUMMARY_START):
        raise ValueError(f"{SUMMARY_END} comes before {SUMMARY_START} in {path}")
    head, rest = text.split(SUMMARY_START)
    tail_ = rest.split(SUMMARY_END)[1]
    files = ", ".join(f"`{b['_file']}`" for b in results if "_file" in b)
    block = (
        f"\n_Written by `python -m bench` at {now.strftime('%Y-%m-%d %H:%M')} UTC from the "
        f"newest result of each scenario in `bench/results/` ({files or 'none'}). Each figure "
        "stands next to the baseline measured in the same run; ratios compare those two only._"
        f"\n\n{summary_table(results)}\n"
    )
    path.write_text(head + SUMMARY_START + block + SUMMARY_END + tail_)
