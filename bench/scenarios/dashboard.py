"""``dashboard``: the supervisors' dashboard and CSV export under gunicorn with PostgreSQL, at
1,000,000 mirrored Runs, the queue benchmark's 100,000 open items and 100,000 completed items of
history (issue 12, "Benchmark").

(1) Dashboard, server latency: one keep-alive client signed in as the demo supervisor sam
    requests, in rotating order, ``GET /supervisor/`` (the whole page, default period 7 days),
    the same with ``HX-Request`` (the numbers fragment htmx refreshes every minute), the page
    over 30 days, and ``GET /ping`` (the baseline); p50, p95 and p99 of each. One request at a
    time, so the figure is the server's time plus loopback, not queueing.
(2) CSV export of completed work, ``/supervisor/reports/completed.csv``: one day (about 1,000
    rows) and the whole history (100,000 rows), each downloaded in full, one at a time, with
    ``/ping`` between downloads. The server runs one gunicorn worker (one process), so the
    resident memory (RSS, from /proc) sampled every 10 ms during a download is that download's;
    its growth over the RSS just before is what the export holds. Constant memory = the
    100,000-row growth is about the 1,000-row one, not 100 times it.

The dataset: the queue benchmark's Runs and open items (``bench/queue_data.py``: 1,000,000 Runs,
100,000 open or claimed items opened over 48 hours, one in 20 claimed), but the other Runs created
over the last ``HISTORY_DAYS`` days instead of a year, and ``closed_items`` of them have a
completed item: claimed by one of ``REVIEWERS`` reviewers 5-120 minutes after it opened, answered
2-40 minutes later, delivered, resumed; each with its audit trail (opened, claimed, viewed,
submitted, resumed) as the services write it, and one in 100 with an answer Flows rejected
first. Generated once into ``<name>_cache_full`` (or ``_quick``) and cloned for each run, as the
queue scenario does.
"""

import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg

from bench import queue_data
from bench.measure import BenchError, percentile, process_tree, rss_mb
from bench.queue_data import DataSizes
from bench.registry import Context, Metric, Outcome, scenario
from bench.scenarios.queue import _client
from bench.stack import bench_urls
from bench.world import (
    BASE_DIR,
    PYTHON,
    World,
    WorldConfig,
    bench_broker_url,
    file_lock,
    provision,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/flowdesk_bench_dashboard"
GENERATOR_VERSION = 2  # 2: answers keep their claim time (claimed_at)
HISTORY_DAYS = 90
REVIEWERS = 20  # bench-reviewer-N, besides the demo's alice, bob and maria
TARGET_MS = 300.0
PAGE_MARK = 'id="dashboard-numbers"'


@dataclass(frozen=True)
class Sizes:
    data: DataSizes
    page_rounds: int  # (1): requests of each view
    export_rounds: int  # (2): downloads of each export


FULL = Sizes(
    data=DataSizes(runs=1_000_000, open_items=100_000, closed_items=100_000),
    page_rounds=150,
    export_rounds=3,
)
QUICK = Sizes(
    data=DataSizes(runs=50_000, open_items=5_000, closed_items=5_000),
    page_rounds=20,
    export_rounds=2,
)


@scenario("dashboard", "Supervisor dashboard p95 at 1M Runs / 100k items; CSV export memory")
def dashboard(ctx: Context) -> Outcome:
    sizes = QUICK if ctx.quick else FULL
    base_url = os.environ.get("BENCH_DASHBOARD_DATABASE_URL") or DEFAULT_DATABASE_URL
    broker_url = bench_broker_url()
    base = queue_data.db_name(base_url)
    if "bench" not in base:
        raise BenchError(f"refusing database {base!r}: a benchmark database's name has 'bench'")
    cache_url = queue_data.with_name(base_url, f"{base}_cache_{'quick' if ctx.quick else 'full'}")
    run_url = queue_data.with_name(base_url, f"{base}_run")
    details: dict[str, Any] = {"warnings": [], "loadavg": {}}
    lock = file_lock(f"dashboard-{base}", what="another dashboard benchmark held the lock")
    with lock, bench_urls(base_url, broker_url):
        details["cache"] = _cache_ensure(ctx, sizes, cache_url)
        began = time.monotonic()
        queue_data.database_create(run_url, template=cache_url)
        details["clone_s"] = round(time.monotonic() - began, 1)
        failed = True
        try:
            # One web process: the export's memory is that process's (see (2) above).
            config = WorldConfig(
                pool=ctx.pool, worker=False, web_workers=1, env={"DATABASE_URL": run_url}
            )
            with provision("dashboard", ctx, config) as world:
                details["dataset"] = _summary(run_url)
                outcome = _measure(world, sizes, details)
            failed = False
        finally:
            if failed or ctx.keep:
                print(f"   database {queue_data.db_name(run_url)} kept", file=sys.stderr)
            else:
                queue_data.database_drop(run_url)
    return outcome


def _measure(world: World, sizes: Sizes, details: dict[str, Any]) -> Outcome:
    warnings: list[str] = details["warnings"]
    session = _session(world, "sam")
    views = {
        "dashboard": ("/supervisor/", False),
        "fragment": ("/supervisor/", True),
        "dashboard_30d": ("/supervisor/?period=30d", False),
    }
    with _client(world, session, "x" * 32) as client:
        details["loadavg"]["pages_start"] = os.getloadavg()
        pages = _pages(client, views, sizes)
        details["loadavg"]["pages_end"] = os.getloadavg()
        details["loadavg"]["exports_start"] = os.getloadavg()
        exports = _exports(world, client, sizes, warnings)
        details["loadavg"]["exports_end"] = os.getloadavg()
    return _outcome(world, sizes, pages, exports, details)


# --- (1) The dashboard -----------------------------------------------------------------------


def _pages(
    client: httpx.Client, views: dict[str, tuple[str, bool]], sizes: Sizes
) -> dict[str, list[float]]:
    kinds = ["ping", *views]

    def request(kind: str) -> float:
        path, htmx = ("/ping", False) if kind == "ping" else views[kind]
        headers = {"HX-Request": "true"} if htmx else {}
        began = time.perf_counter()
        response = client.get(path, headers=headers)
        elapsed = (time.perf_counter() - began) * 1000
        mark = "pong" if kind == "ping" else PAGE_MARK
        if response.status_code != 200 or mark not in response.text:
            raise BenchError(
                f"{kind} {path} answered {response.status_code}: {response.text[:300]}"
            )
        if htmx and "<html" in response.text:
            raise BenchError(f"{kind} {path} answered the whole page to htmx")
        return elapsed

    for kind in kinds:  # warm every connection, template and cache
        for _ in range(3):
            request(kind)
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    for i in range(sizes.page_rounds):
        shift = i % len(kinds)  # rotate, so no view always follows the same one
        for kind in kinds[shift:] + kinds[:shift]:
            samples[kind].append(request(kind))
    return samples


# --- (2) The CSV export ----------------------------------------------------------------------


def _exports(
    world: World, client: httpx.Client, sizes: Sizes, warnings: list[str]
) -> dict[str, Any]:
    """Each export downloaded ``export_rounds`` times, alternating, the worker's RSS sampled
    during each; a small export first, unrecorded, to load the code and the connection."""
    today = datetime.now(UTC).date()
    first = today - timedelta(days=HISTORY_DAYS + 1)
    day = today - timedelta(days=10)
    paths = {
        "export_day": f"/supervisor/reports/completed.csv?from={day}&to={day}",
        "export_all": f"/supervisor/reports/completed.csv?from={first}&to={today}",
    }
    (worker,) = _web_workers(world)
    _download(client, paths["export_day"], worker)
    found: dict[str, Any] = {
        kind: {"ms": [], "rows": [], "mb": [], "growth_mb": [], "rss_before_mb": []}
        for kind in paths
    }
    found["ping_ms"] = []
    found["paths"] = paths
    for _ in range(sizes.export_rounds):
        for kind, path in paths.items():
            began = time.perf_counter()
            assert client.get("/ping").status_code == 200
            found["ping_ms"].append((time.perf_counter() - began) * 1000)
            measured = _download(client, path, worker)
            for key, value in measured.items():
                found[kind][key].append(value)
    if min(found["export_all"]["rows"]) < 10 * max(found["export_day"]["rows"]):
        warnings.append("(2) the whole-history export is not 10 times the day's rows")
    return found


def _download(client: httpx.Client, path: str, worker: int) -> dict[str, float]:
    """Stream one export to nowhere, sampling the worker's RSS every 10 ms meanwhile."""
    before = rss_mb([worker])[worker]
    peak, rows, size = before, 0, 0
    last_sample = 0.0
    began = time.perf_counter()
    with client.stream("GET", path) as response:
        if response.status_code != 200:
            raise BenchError(f"{path} answered {response.status_code}")
        for chunk in response.iter_bytes():
            rows += chunk.count(b"\n")
            size += len(chunk)
            now = time.perf_counter()
            if now - last_sample >= 0.01:
                peak = max(peak, rss_mb([worker]).get(worker, peak))
                last_sample = now
    elapsed = (time.perf_counter() - began) * 1000
    peak = max(peak, rss_mb([worker]).get(worker, peak))
    return {
        "ms": elapsed,
        "rows": rows - 1,  # the header
        "mb": size / 1e6,
        "growth_mb": peak - before,
        "rss_before_mb": before,
    }


def _web_workers(world: World) -> list[int]:
    pids = [pid for pid, mb in rss_mb(_children(world.processes["web"].popen.pid)).items() if mb]
    if len(pids) != 1:
        raise BenchError(f"expected one gunicorn worker, found {pids}")
    return pids


def _children(parent: int) -> list[int]:
    return [pid for pid in process_tree(parent) if pid != parent]


# --- The report ------------------------------------------------------------------------------


def _outcome(
    world: World,
    sizes: Sizes,
    pages: dict[str, list[float]],
    exports: dict[str, Any],
    details: dict[str, Any],
) -> Outcome:
    metrics: list[Metric] = []

    def latency(key: str, label: str, values: list[float], baseline: str | None) -> None:
        for q in (50, 95):
            metrics.append(
                Metric(
                    f"{key}_p{q}_ms",
                    f"{label} p{q}",
                    percentile(values, q),
                    "ms",
                    baseline=f"{baseline}_p{q}_ms" if baseline else None,
                )
            )

    latency("ping", "(1) GET /ping (baseline)", pages["ping"], None)
    latency("dashboard", "(1) dashboard page, 7 days", pages["dashboard"], "ping")
    latency("fragment", "(1) dashboard htmx refresh, 7 days", pages["fragment"], "ping")
    latency("dashboard_30d", "(1) dashboard page, 30 days", pages["dashboard_30d"], "ping")

    ping = percentile(exports["ping_ms"], 50)
    metrics.append(Metric("export_ping_ms", "(2) GET /ping between exports (baseline)", ping, "ms"))
    for kind, label in (("export_day", "one day"), ("export_all", "whole history")):
        found = exports[kind]
        rows = f"{max(found['rows']):,} rows"
        metrics.append(
            Metric(
                f"{kind}_ms",
                f"(2) CSV export, {label} ({rows}), median time",
                percentile(found["ms"], 50),
                "ms",
                baseline="export_ping_ms",
                rounds=[round(v, 1) for v in found["ms"]],
            )
        )
    for kind, label in (("export_day", "one day"), ("export_all", "whole history")):
        found = exports[kind]
        metrics.append(
            Metric(
                f"{kind}_growth_mb",
                f"(2) worker RSS growth during export, {label}, largest",
                max(found["growth_mb"]),
                "MB",
                baseline="export_day_growth_mb" if kind == "export_all" else None,
                rounds=[round(v, 1) for v in found["growth_mb"]],
            )
        )
    p95 = {m.key: m.value for m in metrics}
    targets = {
        "dashboard_p95_lt_300ms": p95["dashboard_p95_ms"] < TARGET_MS,
        "fragment_p95_lt_300ms": p95["fragment_p95_ms"] < TARGET_MS,
        # Constant memory: 100 times the rows, not much more memory than the small export.
        "export_growth_lt_day_plus_10mb": max(exports["export_all"]["growth_mb"])
        < max(exports["export_day"]["growth_mb"]) + 10,
    }
    return Outcome(
        metrics=metrics,
        config={
            "sizes": asdict(sizes),
            "history_days": HISTORY_DAYS,
            "reviewers": REVIEWERS + 3,
            "web": f"{world.config.web_workers} worker x {world.config.web_threads} threads",
            "commands": world.commands(),
            "export_paths": exports["paths"],
        },
        details={
            **details,
            "targets": targets,
            "p99_ms": {k: round(percentile(v, 99), 1) for k, v in pages.items()},
            "samples": {k: len(v) for k, v in pages.items()},
            "exports": {k: v for k, v in exports.items() if k != "paths"},
            "rss_mb_after": world.rss(),
        },
    )


# --- Plumbing --------------------------------------------------------------------------------


def _session(world: World, username: str) -> str:
    """A signed-in session of ``username`` (``force_login``: no password hashing measured)."""
    code = (
        "from django.contrib.auth import get_user_model\n"
        "from django.test import Client\n"
        "c = Client(HTTP_HOST='127.0.0.1')\n"
        f"c.force_login(get_user_model().objects.get(username={username!r}))\n"
        "print(c.cookies['sessionid'].value)\n"
    )
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=BASE_DIR,
        env=world.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise BenchError(f"signing in {username} failed:\n{done.stderr[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def _summary(url: str) -> dict[str, Any]:
    found = queue_data.summary(url)
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT status, count(*) FROM reviewqueue_submission GROUP BY status"
        ).fetchall()
        found["submissions"] = dict(rows)
        found["runs_by_status"] = dict(
            conn.execute(
                "SELECT status, count(*) FROM flows_integration_flowrun GROUP BY status"
            ).fetchall()
        )
    return found


def _fingerprint(sizes: DataSizes) -> str:
    import hashlib
    from pathlib import Path

    digest = hashlib.sha256(queue_data.fingerprint(sizes).encode())
    digest.update(f"{GENERATOR_VERSION}:{HISTORY_DAYS}:{REVIEWERS}".encode())
    digest.update(Path(__file__).read_bytes())
    return digest.hexdigest()[:16]


def _cache_ensure(ctx: Context, sizes: Sizes, cache_url: str) -> dict[str, Any]:
    want = _fingerprint(sizes.data)
    label = queue_data.cache_label(cache_url)
    if label is not None and label.get("fingerprint") == want:
        return {**label, "reused": True}
    print(
        f"   building the dataset ({sizes.data.runs:,} runs, {sizes.data.open_items:,} open and "
        f"{sizes.data.closed_items:,} completed items) into {queue_data.db_name(cache_url)}",
        flush=True,
    )
    began = time.monotonic()
    queue_data.database_create(cache_url)
    config = WorldConfig(
        pool=ctx.pool, worker=False, web_workers=1, env={"DATABASE_URL": cache_url}
    )
    with provision("dashboard-cache", ctx, config) as world:
        world.manage("load_templates")
    timings = generate(cache_url, sizes.data)
    label = {
        "fingerprint": want,
        "sizes": asdict(sizes.data),
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_s": round(time.monotonic() - began, 1),
        "steps_s": timings,
    }
    queue_data.label_set(cache_url, label)
    return {**label, "reused": False}


# --- Generation ------------------------------------------------------------------------------


def generate(url: str, sizes: DataSizes) -> dict[str, float]:
    """The queue benchmark's Runs and open items, then the completed history."""
    timings: dict[str, float] = {}
    with psycopg.connect(url, autocommit=True) as conn:

        def step(name: str, statement: Any, params: Any = None) -> None:
            began = time.monotonic()
            conn.execute(statement, params)
            timings[name] = round(time.monotonic() - began, 2)

        queue_data._pauses(conn)
        built = datetime.now(UTC)
        params = {
            "first": queue_data.FIRST_NAMES,
            "last": queue_data.LAST_NAMES,
            "payers": queue_data.PAYERS,
            "built": built,
            "runs": sizes.runs,
            "open": sizes.open_items,
            "closed": sizes.closed_items,
            "spread": f"{queue_data.OPEN_SPREAD_HOURS} hours",
            "history": f"{HISTORY_DAYS} days",
            "claimed_every": queue_data.CLAIMED_EVERY,
            "urgent_every": queue_data.URGENT_EVERY,
            "reviewers": REVIEWERS,
        }
        step("reviewers", _REVIEWERS_SQL, params)
        step("flowrun", queue_data._RUNS_SQL, params)
        step("items_open", queue_data._ITEMS_OPEN_SQL, params)
        step("items_done", _ITEMS_DONE_SQL, params)
        step("submissions", _SUBMISSIONS_SQL, params)
        step("audit", _AUDIT_SQL, params)
        conn.execute("DROP TABLE bench_pause")
        step("endpoints", "DELETE FROM flows_engine_webhookendpoint")
        for table in (
            "flows_integration_flowrun",
            "reviewqueue_reviewitem",
            "reviewqueue_submission",
            "audit_auditevent",
        ):
            step(f"vacuum_{table}", f"VACUUM (ANALYZE, FREEZE) {table}")
        step("analyze", "ANALYZE")
    return timings


_REVIEWERS_SQL = """
WITH made AS (
    INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email,
                           is_staff, is_active, date_joined)
    SELECT '!', false, 'bench-reviewer-' || n, 'Reviewer', n::text, '', false, true, now()
    FROM generate_series(1, %(reviewers)s) AS n
    RETURNING id
)
INSERT INTO auth_user_groups (user_id, group_id)
SELECT made.id, g.id FROM made, auth_group g
WHERE g.name IN ('Reviewer', 'Clinical team', 'Billing team', 'Sign-off team')
"""

# Completed items: Runs open+1 .. open+closed (COMPLETE), opened over the history, ending 3
# hours before the build at the latest. Per item i: claimed 5-120 min after opening, answered
# 2-40 min after the claim, delivered 3 s later, resumed 2 s after that.
_ITEMS_DONE_SQL = f"""
INSERT INTO reviewqueue_reviewitem (
    run_id, episode, queue_id, version_id, state_id, status, status_changed_at, priority,
    due_at, opened_at, closed_at, claimed_by_id, lease_until, patient_name, run_ref)
SELECT
    run.id, 1, r.queue_id, r.version_id, r.state_id, 'resumed',
    r.opened - interval '3 hours' + t.done + interval '5 seconds',
    r.priority, r.opened - interval '3 hours' + r.sla, r.opened - interval '3 hours',
    r.opened - interval '3 hours' + t.done + interval '5 seconds', NULL, NULL,
    r.first_name || ' ' || r.last_name, r.flow_run_id::text
FROM generate_series(%(open)s + 1, %(open)s + %(closed)s::bigint) AS i
CROSS JOIN LATERAL (
    SELECT {queue_data._ROW}
    FROM bench_pause p WHERE p.k = i %% (SELECT count(*) FROM bench_pause)
) AS r
CROSS JOIN LATERAL (
    SELECT interval '1 minute' * (5 + (i * 37) %% 116 + 2 + (i * 53) %% 39) AS done
) AS t
JOIN flows_integration_flowrun run ON run.flow_run_id = r.flow_run_id
ORDER BY i
"""

# Who answered a completed item: the demo reviewers and bench-reviewer-N, by the item's id.
_SUBMITTERS = """
    (SELECT array_agg(id ORDER BY id) FROM auth_user
     WHERE username IN ('alice', 'bob', 'maria') OR username LIKE 'bench-reviewer-%%')
"""

_SUBMISSIONS_SQL = f"""
WITH done AS (
    SELECT i.id, i.closed_at, i.opened_at,
           ({_SUBMITTERS})[1 + i.id %% cardinality({_SUBMITTERS})] AS by,
           i.closed_at - interval '5 seconds' AS submitted,
           i.closed_at - interval '5 seconds' - interval '1 minute' * (2 + (i.id * 53) %% 39)
               AS claimed
    FROM reviewqueue_reviewitem i WHERE i.status = 'resumed'
)
INSERT INTO reviewqueue_submission (item_id, submitted_by_id, input, status, created_at, attempts,
    next_attempt_at, maybe_sent, last_error, field_errors, finished_at, claimed_at)
SELECT id, by, jsonb_build_object('decision', CASE WHEN id %% 5 = 0 THEN 'deny' ELSE 'approve' END),
       'delivered', submitted, 1, submitted, false, '', '[]'::jsonb,
       submitted + interval '3 seconds', claimed
FROM done
UNION ALL
SELECT id, by, '{{}}'::jsonb, 'rejected', submitted - interval '1 minute', 1,
       submitted - interval '1 minute', false, 'Flows answered 400', '[]'::jsonb,
       submitted - interval '50 seconds', claimed
FROM done WHERE id %% 100 = 0
ORDER BY 5
"""

# Each item's trail as the services write it: opened; for a completed item also claimed by whoever
# answered it, viewed, submitted and resumed; for a claimed one, claimed.
_AUDIT_SQL = """
INSERT INTO audit_auditevent (at, action, item_id, flow_run_id, ip, detail, actor_id, link)
SELECT at, action, item_id, run_ref::uuid, NULL, detail, actor_id, '' FROM (
    SELECT opened_at AS at, 'item.opened' AS action, id AS item_id, run_ref,
           jsonb_build_object('queue', queue_id, 'state', state_id) AS detail, NULL::int AS actor_id
    FROM reviewqueue_reviewitem
    UNION ALL
    SELECT e.at, e.action, i.id, i.run_ref, '{}'::jsonb, s.submitted_by_id
    FROM reviewqueue_reviewitem i
    JOIN reviewqueue_submission s ON s.item_id = i.id AND s.status = 'delivered'
    CROSS JOIN LATERAL (VALUES
        (s.claimed_at, 'item.claimed'),
        (s.claimed_at + interval '10 seconds', 'item.viewed'),
        (s.created_at, 'item.submitted'),
        (i.closed_at, 'item.resumed')
    ) AS e (at, action)
    UNION ALL
    SELECT status_changed_at, 'item.claimed', id, run_ref, '{}'::jsonb, claimed_by_id
    FROM reviewqueue_reviewitem WHERE status = 'claimed'
) AS events
ORDER BY at
"""
