"""``python -m bench [scenario ...] [--quick]``: run scenarios, print a table, write JSON."""

import argparse
import sys
import time
import traceback
from datetime import UTC, datetime

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
    args = parser.parse_args(argv)

    if args.list:
        for entry in registry.values():
            print(f"{entry.name:16} {entry.summary}")
        return 0
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
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
