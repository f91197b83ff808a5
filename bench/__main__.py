"""``python -m bench [scenario ...] [--quick]``: run scenarios, print a table, write JSON, and
rewrite the summary table between the markers in BENCHMARKS.md (``report.summary_write``)."""

import argparse
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import report
from bench.registry import Context, discover


def main(argv: list[str] | None = None) -> int:
    registry = discover()
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Run Flowdesk's benchmarks against real processes on this machine.",
    )
    parser.add_argument(
        "scenarios", nargs="*", metavar="scenario", help="default: all of them, in order"
    )
    parser.add_argument(
        "--quick", action="store_true", help="small counts: a smoke run in under a minute"
    )
    parser.add_argument(
        "--pool",
        choices=["threads", "prefork"],
        default="threads",
        help="Celery worker pool (threads: --concurrency=8; prefork: one process per core)",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the processes' logs, the database and the broker's queue (kept on failure)",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--summary",
        type=Path,
        default=None,
        metavar="PATH",
        help="rewrite the summary table between the markers in PATH (default: BENCHMARKS.md "
        "after a full run; a --quick run writes one only when PATH is given)",
    )
    parser.add_argument(
        "--no-summary", action="store_true", help="leave the summary table as it is"
    )
    parser.add_argument(
        "--summary-only",
        action="store_true",
        help="run nothing: rewrite the summary from the newest results in bench/results/",
    )
    args = parser.parse_args(argv)

    if args.list:
        for entry in registry.values():
            print(f"{entry.name:16} {entry.summary}")
        return 0
    summary_path = None if args.no_summary else args.summary
    if summary_path is None and not args.no_summary and not args.quick:
        summary_path = report.SUMMARY_PATH
    if args.summary_only:
        return _summary(summary_path or report.SUMMARY_PATH, quick=args.quick)
    unknown = [name for name in args.scenarios if name not in registry]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(registry)}")
    chosen = args.scenarios or list(registry)
    ctx = Context(quick=args.quick, pool=args.pool, keep=args.keep)
    stamp = report.utc_stamp(datetime.now(UTC))

    failures = 0
    for name in chosen:
        entry = registry[name]
        print(f"-- {name}: {entry.summary}", flush=True)
        started_at = datetime.now(UTC)
        machine = report.machine()
        began = time.monotonic()
        try:
            outcome = entry.run(ctx)
        except Exception:
            failures += 1
            traceback.print_exc()
            print(f"-- {name} FAILED", file=sys.stderr, flush=True)
            continue
        result = report.Result(
            scenario=name,
            quick=ctx.quick,
            started_at=started_at.isoformat(timespec="seconds"),
            duration_s=round(time.monotonic() - began, 1),
            machine=machine,
            outcome=outcome,
        )
        path = report.write(result, stamp)
        print(report.table(result))
        print(f"   written to {path.relative_to(report.BASE_DIR)}\n", flush=True)
    if summary_path is not None:
        failures += _summary(summary_path, quick=args.quick)
    return 1 if failures else 0


def _summary(path: Path, *, quick: bool) -> int:
    """Rewrite the summary table in ``path`` from the newest result of each scenario."""
    try:
        report.summary_write(path, report.latest_results(quick=quick), now=datetime.now(UTC))
    except (OSError, ValueError) as exc:
        print(f"-- summary not written: {exc}", file=sys.stderr, flush=True)
        return 1
    print(f"-- summary table rewritten in {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
