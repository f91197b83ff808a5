"""``queue``: the review queue under gunicorn with PostgreSQL, at 100,000 open items and
1,000,000 mirrored Runs (issue 5, DESIGN.md "Performance targets").

(1) Queue page, server latency: one keep-alive client signed in as the demo reviewer alice
    (her teams see the three demo queues) requests, in rotating order, the default view, a
    filtered view (the Eligibility queue, overdue only), a search by patient name, page 50,
    the supervisor's default view (sam, every queue), and ``GET /ping`` (the baseline); p50,
    p95 and p99 of each. Low concurrency (one request at a time), so the figure is the
    server's time plus loopback, not queueing.
    In-process, in a Django process of its own on the same database (``bench.queue_django``):
    queries per page through Django's test client at page sizes 10, 50 and 200
    (``selectors.PAGE_SIZE`` patched), each query's time, ``EXPLAIN (ANALYZE, BUFFERS)`` of
    every read of the items table (does the main query use ``item_workable_idx``?), the same
    with the candidate indexes of the report built on the throwaway copy, and a cProfile of
    the default view.
(2) htmx fragments at 10 concurrent staff, with locust (headless, on 127.0.0.1, see
    ``bench/queue_locustfile.py``): rows refresh, claim, form re-render, release, and
    ``/ping`` in the same users' loop (the baseline under the same load). Twice: with a think
    time of 0.5-1.5 s after each request (staff working fast), and with none (ten clients
    back to back: the stack saturated).
(3) Through the whole stack (engine, receiver, a real Celery worker): Create Run on the
    embedded engine (``coverage-check`` v1, lastName ``Notfound``, which pauses at
    ``collect-member-id``) until the item shows in the queue rows (searched by Run id), and
    ``POST /items/<pk>/submit/`` until the engine's Run is no longer ``PENDING`` at that state.
    One Run at a time. Baseline: a no-op Celery task's publish-to-run latency, measured
    alternately with them on the same broker and worker.
(4) Memory after the runs: RSS of each gunicorn worker and of the Celery worker.

The dataset (``bench/queue_data.py``) is generated once and kept as a cached database that
each run clones, so a run starts in seconds. The world's processes are pointed at the clone
through ``WorldConfig.env`` (``DATABASE_URL``); the database ``provision()`` creates stays empty.
"""

import contextlib
import json
import os
import secrets
import string
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import psycopg

from bench import queue_data
from bench.measure import BenchError, CpuMeter, percentile, wait_until
from bench.queue_data import DataSizes
from bench.queue_django import CLINICAL_DRAFT
from bench.registry import Context, Metric, Outcome, scenario
from bench.stack import bench_urls
from bench.world import (
    BASE_DIR,
    PYTHON,
    World,
    WorldConfig,
    bench_broker_url,
    file_lock,
    provision,
    settle,
    tail,
)

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/flowdesk_bench_queue"
ENGINE_CLIENT = ("demo-sandbox", "demo-sandbox-secret")
_TEMPLATE = "coverage-check"
PAUSING_RUN = {
    "version": 1,
    "inputData": {
        "patient": {"firstName": "Bench", "lastName": "Notfound", "dateOfBirth": "1980-01-01"},
        "payerId": "60054",
    },
}
PAUSE_STATE = "collect-member-id"
MEMBER_ID = "W12345678"
PAGE_MARK = 'id="queue-rows"'
ROW_MARK = "<tr data-href="
TARGET_MS = 100.0
TARGET_LOOP_S = 1.0
TARGET_WEB_MB = 150.0
TARGET_WORKER_MB = 250.0


@dataclass(frozen=True)
class Sizes:
    data: DataSizes
    page_rounds: int  # (1): requests of each view
    repeats: int  # (1) in-process: requests per view for timings
    profile_repeats: int  # (1) in-process: default views under cProfile
    staff: int  # (2): concurrent locust users
    items_per_staff: int
    locust_s: float  # (2): each locust run, after the warm-up
    saturated_s: float  # (2): the run without think time
    warmup_s: float
    loop_runs: int  # (3): Runs taken through the stack
    phase_timeout: float


FULL = Sizes(
    data=queue_data.FULL_DATA,
    page_rounds=300,
    repeats=20,
    profile_repeats=30,
    staff=10,
    items_per_staff=20,
    locust_s=90,
    saturated_s=40,
    warmup_s=5,
    loop_runs=100,
    phase_timeout=600,
)
QUICK = Sizes(
    data=queue_data.QUICK_DATA,
    page_rounds=30,
    repeats=5,
    profile_repeats=5,
    staff=10,
    items_per_staff=5,
    locust_s=15,
    saturated_s=8,
    warmup_s=3,
    loop_runs=10,
    phase_timeout=120,
)
THINK_S = (0.5, 1.5)


@scenario("queue", "Queue page p95 + queries at 100k items; htmx fragments; webhook/submit loop")
def queue(ctx: Context) -> Outcome:
    sizes = QUICK if ctx.quick else FULL
    base_url = os.environ.get("BENCH_QUEUE_DATABASE_URL") or DEFAULT_DATABASE_URL
    broker_url = bench_broker_url()
    base = queue_data.db_name(base_url)
    if "bench" not in base:
        raise BenchError(f"refusing database {base!r}: a benchmark database's name has 'bench'")
    cache_url = queue_data.with_name(base_url, f"{base}_cache_{'quick' if ctx.quick else 'full'}")
    run_url = queue_data.with_name(base_url, f"{base}_run")
    details: dict[str, Any] = {"warnings": [], "loadavg": {}}

    with _lock(base_url), bench_urls(base_url, broker_url):
        details["cache"] = _cache_ensure(ctx, sizes, cache_url)
        began = time.monotonic()
        queue_data.database_create(run_url, template=cache_url)
        details["clone_s"] = round(time.monotonic() - began, 1)
        failed = True
        try:
            config = WorldConfig(pool=ctx.pool, env={"DATABASE_URL": run_url})
            with provision("queue", ctx, config) as world:
                details["dataset"] = queue_data.summary(run_url)
                outcome = _measure(world, ctx, sizes, run_url, details)
            failed = False
        finally:
            if failed or ctx.keep:
                print(f"   database {queue_data.db_name(run_url)} kept", file=sys.stderr)
            else:
                queue_data.database_drop(run_url)
    return outcome


def _measure(
    world: World, ctx: Context, sizes: Sizes, run_url: str, details: dict[str, Any]
) -> Outcome:
    warnings: list[str] = details["warnings"]
    load = details["loadavg"]
    meter = world.cpu_meter()
    cpu: dict[str, dict[str, float]] = {}
    with psycopg.connect(run_url, autocommit=True) as conn:
        # load_demo registered this world's webhook endpoints; nothing else points anywhere.
        endpoints = conn.execute(
            "SELECT url, active FROM flows_engine_webhookendpoint ORDER BY id"
        ).fetchall()
    details["webhook_endpoints"] = [list(row) for row in endpoints]

    prep = _django(
        world, "prepare", {"staff": sizes.staff, "items_per_staff": sizes.items_per_staff}
    )
    csrf = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    since = _now_iso()
    views = {
        "default": ("reviewer", "/"),
        "filtered": ("reviewer", f"/?queue={prep['queues']['eligibility']}&overdue=1"),
        "search": ("reviewer", "/"),  # the URL of the posted search, below
        "page50": ("reviewer", "/?page=50"),
        "default_supervisor": ("supervisor", "/"),
    }

    with (
        _client(world, prep["reviewer"]["session"], csrf) as reviewer,
        _client(world, prep["supervisor"]["session"], csrf) as supervisor,
    ):
        clients = {"reviewer": reviewer, "supervisor": supervisor}
        views["search"] = ("reviewer", _searched(reviewer, queue_data.SEARCH_NAME))
        # (1) The queue page, one request at a time.
        load["page_start"] = os.getloadavg()
        before = meter.sample()
        pages = _pages(clients, views, sizes, warnings)
        cpu["pages"] = CpuMeter.spent(before, meter.sample())
        load["page_end"] = os.getloadavg()

        inproc = _django(
            world,
            "queries",
            {
                "queues": prep["queues"],
                "search": queue_data.SEARCH_NAME,
                "since": since,
                "repeats": sizes.repeats,
                "profile_repeats": sizes.profile_repeats,
                "fragment_item": prep["spare_item"],
            },
            timeout=sizes.phase_timeout,
        )

        # (2) htmx fragments, 10 concurrent staff.
        fragments: dict[str, Any] = {}
        for variant, think, seconds in (
            ("staff", THINK_S, sizes.locust_s),
            ("saturated", (0.0, 0.0), sizes.saturated_s),
        ):
            settled(world, warnings, f"before the {variant} fragments run")
            load[f"fragments_{variant}_start"] = os.getloadavg()
            before = meter.sample()
            fragments[variant] = _locust(world, prep, csrf, since, think, seconds, sizes)
            cpu[f"fragments_{variant}"] = CpuMeter.spent(before, meter.sample())
            load[f"fragments_{variant}_end"] = os.getloadavg()
            _check_fragments(fragments[variant], variant, warnings)

        # (3) Through the whole stack.
        settled(world, warnings, "before the loop phase")
        load["loop_start"] = os.getloadavg()
        before = meter.sample()
        loop = _loop(world, run_url, reviewer, sizes)
        settled(world, warnings, "after the loop phase")
        cpu["loop"] = CpuMeter.spent(before, meter.sample())
        load["loop_end"] = os.getloadavg()

    # (4) Memory after the runs.
    rss = world.rss()
    commands = world.commands()
    return _outcome(ctx, sizes, world, pages, inproc, fragments, loop, rss, cpu, commands, details)


def settled(world: World, warnings: list[str], when: str) -> None:
    if not settle(world, timeout=120):
        warnings.append(f"the worker was still busy {when}")


# --- (1) The queue page ----------------------------------------------------------------------


def _pages(
    clients: dict[str, httpx.Client],
    views: dict[str, tuple[str, str]],
    sizes: Sizes,
    warnings: list[str],
) -> dict[str, Any]:
    kinds = ["ping", *views]

    def request(kind: str) -> tuple[float, str]:
        client = clients["reviewer" if kind == "ping" else views[kind][0]]
        path = "/ping" if kind == "ping" else views[kind][1]
        began = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - began) * 1000
        mark = "pong" if kind == "ping" else PAGE_MARK
        if response.status_code != 200 or mark not in response.text:
            raise BenchError(
                f"{kind} {path} answered {response.status_code}: {response.text[:300]}"
            )
        return elapsed, response.text

    rows: dict[str, int] = {}
    for kind in kinds:  # warm every connection, template and cache once
        for _ in range(5):
            _, body = request(kind)
        rows[kind] = body.count(ROW_MARK)
    for kind, count in rows.items():
        if kind != "ping" and count == 0:
            warnings.append(f"(1) the {kind} view showed no rows")
    samples: dict[str, list[float]] = {kind: [] for kind in kinds}
    deadline = time.monotonic() + sizes.phase_timeout
    for i in range(sizes.page_rounds):
        if time.monotonic() > deadline:
            warnings.append(f"(1) stopped after {i} rounds: the phase timeout")
            break
        shift = i % len(kinds)  # rotate, so no view always follows the same one
        for kind in kinds[shift:] + kinds[:shift]:
            samples[kind].append(request(kind)[0])
    return {"samples_ms": samples, "rows": rows, "paths": {k: v[1] for k, v in views.items()}}


# --- (2) htmx fragments ----------------------------------------------------------------------


def _locust(
    world: World,
    prep: dict[str, Any],
    csrf: str,
    since: str,
    think: tuple[float, float],
    seconds: float,
    sizes: Sizes,
) -> dict[str, Any]:
    scratch = world.log_dir / f"locust-{think[1]:g}"
    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / "samples.json"
    plan = {
        "host": world.base_url,
        "staff": prep["staff"],
        "csrf": csrf,
        "since": urlencode({"s": since})[2:],
        "queue": prep["queues"]["clinical"],
        "form_data": CLINICAL_DRAFT,
        "think_min_s": think[0],
        "think_max_s": think[1],
        "warmup_s": sizes.warmup_s,
        "out": str(out),
    }
    assert world.base_url.startswith("http://127.0.0.1:"), "load stays on loopback"
    (scratch / "plan.json").write_text(json.dumps(plan))
    command = [
        PYTHON,
        "-m",
        "locust",
        "-f",
        str(BASE_DIR / "bench" / "queue_locustfile.py"),
        "--headless",
        "--users",
        str(sizes.staff),
        "--spawn-rate",
        str(sizes.staff),
        "--run-time",
        f"{int(seconds + sizes.warmup_s)}s",
        "--stop-timeout",
        "10",
        "--only-summary",
        "--loglevel",
        "WARNING",
        "--host",
        world.base_url,
    ]
    env = {**os.environ, "FLOWDESK_QUEUE_PLAN": str(scratch / "plan.json")}
    with (scratch / "locust.log").open("wb") as log:
        code = subprocess.run(
            command,
            cwd=BASE_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=seconds + sizes.warmup_s + 120,
        ).returncode
    world.check_alive()
    if not out.exists():
        raise BenchError(f"locust wrote no samples (exit {code}):\n{tail(scratch / 'locust.log')}")
    found = json.loads(out.read_text())
    found["exit_code"] = code
    found["command"] = " ".join(command)
    found["think_s"] = list(think)
    return found


def _check_fragments(found: dict[str, Any], variant: str, warnings: list[str]) -> None:
    for name, count in found["failures"].items():
        if count:
            first = found["first_failure"].get(name, "")
            warnings.append(f"(2) {variant}: {count} failed {name} requests; first: {first}")
    for name in ("rows", "claim", "form", "release", "ping"):
        if not found["samples_ms"].get(name):
            raise BenchError(f"(2) {variant}: no {name} samples")


# --- (3) Through the whole stack -------------------------------------------------------------


def _loop(world: World, run_url: str, reviewer: httpx.Client, sizes: Sizes) -> dict[str, Any]:
    """One Run at a time: create it, wait until the queue rows show its item, claim and submit
    it, wait until the engine's Run has left the pause. A no-op task before each."""
    samples: dict[str, list[float]] = {
        "noop": [],
        "visible": [],
        "pending_to_visible": [],
        "submit": [],
        "submit_answer": [],
        "rows_by_run_id": [],
    }
    deadline = time.monotonic() + sizes.phase_timeout
    with (
        httpx.Client(base_url=f"{world.base_url}/flows-api", timeout=30) as api,
        psycopg.connect(run_url, autocommit=True) as conn,
    ):
        token = api.post(
            "/oauth/token",
            json={"client_id": ENGINE_CLIENT[0], "client_secret": ENGINE_CLIENT[1]},
        )
        token.raise_for_status()
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

        def left(seconds: float) -> float:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BenchError("the loop phase took longer than the phase timeout")
            return min(seconds, remaining)

        for i in range(sizes.loop_runs + 1):  # the first one warms up, unrecorded
            record = i > 0
            # Baseline: a no-op task, published to the same broker, run by the same worker.
            key = f"bench:queue-noop:{uuid.uuid4().hex}"
            began = time.perf_counter()
            world.send_task("bench.tasks.noop", key)

            def ran(key: str = key) -> bool:
                return world.redis.get(key) is not None

            wait_until(
                ran,
                timeout=left(30),
                what="a no-op task",
                interval=0.002,
                alive=world.check_alive,
            )
            if record:
                samples["noop"].append((time.perf_counter() - began) * 1000)

            # Create Run -> the item in the queue rows.
            began = time.perf_counter()
            created = api.post(f"/v1/flows/{_TEMPLATE}/runs", json=PAUSING_RUN)
            if created.status_code != 201:
                raise BenchError(f"Create Run answered {created.status_code}: {created.text}")
            run_id = created.json()["flowRunId"]
            # The search is posted once (its URL names the Run by a token); not part of the
            # time to visible, which the rows fetched below measure.
            posted_at = time.perf_counter()
            rows_url = _searched(reviewer, run_id)
            began += time.perf_counter() - posted_at

            def item_pk(run_id: str = run_id) -> int | None:
                row = conn.execute(
                    "SELECT id FROM reviewqueue_reviewitem WHERE run_ref = %s AND status = 'open'",
                    (run_id,),
                ).fetchone()
                return None if row is None else int(row[0])

            wait_until(
                lambda: item_pk() is not None,
                timeout=left(60),
                what=f"an item for Run {run_id}",
                interval=0.005,
                alive=world.check_alive,
            )
            # Visible = the rows fragment, searched by the Run's id, shows it.
            while True:
                fetched = time.perf_counter()
                rows = reviewer.get(
                    rows_url,
                    headers={"HX-Request": "true", "X-Flowdesk-Background": "1"},
                )
                done = time.perf_counter()
                if rows.status_code != 200:
                    raise BenchError(f"the rows fragment answered {rows.status_code}")
                if run_id[:8] in rows.text:
                    break
                left(60)
            visible_at = time.time()
            if record:
                samples["visible"].append((done - began) * 1000)
                samples["rows_by_run_id"].append((done - fetched) * 1000)
                pended = conn.execute(
                    "SELECT status, state_id, extract(epoch FROM updated_at)"
                    " FROM flows_engine_run WHERE id = %s",
                    (run_id,),
                ).fetchone()
                if pended is None or pended[0] != "PENDING":
                    raise BenchError(f"Run {run_id} is {pended}, not PENDING")
                samples["pending_to_visible"].append((visible_at - float(pended[2])) * 1000)

            # Claim, then submit -> the engine's Run leaves the pause.
            pk = item_pk()
            htmx = {"HX-Request": "true"}
            claimed = reviewer.post(f"/items/{pk}/claim/", headers=htmx)
            if claimed.status_code != 200:
                raise BenchError(f"claim answered {claimed.status_code}: {claimed.text[:300]}")
            began = time.perf_counter()
            answer = reviewer.post(
                f"/items/{pk}/submit/", data={"~form": "1", "memberId": MEMBER_ID}, headers=htmx
            )
            answered = time.perf_counter()
            if answer.status_code != 200:
                raise BenchError(f"submit answered {answer.status_code}: {answer.text[:300]}")

            def moved_on(run_id: str = run_id) -> bool:
                row = conn.execute(
                    "SELECT status, state_id FROM flows_engine_run WHERE id = %s", (run_id,)
                ).fetchone()
                return row is not None and (row[0] != "PENDING" or row[1] != PAUSE_STATE)

            wait_until(
                moved_on,
                timeout=left(60),
                what=f"Run {run_id} to leave {PAUSE_STATE}",
                interval=0.005,
                alive=world.check_alive,
            )
            if record:
                samples["submit"].append((time.perf_counter() - began) * 1000)
                samples["submit_answer"].append((answered - began) * 1000)
        statuses: dict[str, int] = dict(
            conn.execute(
                "SELECT status, count(*) FROM reviewqueue_submission GROUP BY status"
            ).fetchall()
        )
    return {"samples_ms": samples, "submissions": statuses}


# --- The report ------------------------------------------------------------------------------


def _outcome(
    ctx: Context,
    sizes: Sizes,
    world: World,
    pages: dict[str, Any],
    inproc: dict[str, Any],
    fragments: dict[str, Any],
    loop: dict[str, Any],
    rss: dict[str, list[float]],
    cpu: dict[str, dict[str, float]],
    commands: dict[str, str],
    details: dict[str, Any],
) -> Outcome:
    metrics: list[Metric] = []

    def latency(key: str, label: str, values: list[float], baseline: str | None, qs=(50, 95)):
        for q in qs:
            metrics.append(
                Metric(
                    f"{key}_p{q}_ms",
                    f"{label} p{q}",
                    percentile(values, q),
                    "ms",
                    baseline=f"{baseline}_p{q}_ms" if baseline else None,
                )
            )

    page = pages["samples_ms"]
    latency("ping", "(1) GET /ping (baseline)", page["ping"], None)
    labels = {
        "default": "(1) queue page, default view",
        "filtered": "(1) queue page, queue + overdue",
        "search": "(1) queue page, patient name search",
        "page50": "(1) queue page, page 50",
        "default_supervisor": "(1) queue page, supervisor default",
    }
    for kind, label in labels.items():
        latency(kind, label, page[kind], "ping")

    per_size = inproc["per_page_size"]
    counts = {
        name: {size: v["queries"] for size, v in sizes_.items()}
        for name, sizes_ in per_size.items()
    }
    for name in labels:
        metrics.append(
            Metric(
                f"{name}_queries",
                f"(1) queries per page, {name}",
                float(counts[name]["50"]),
                "queries",
            )
        )
    bounded = {name: len(set(c.values())) == 1 for name, c in counts.items()}

    staff = fragments["staff"]["samples_ms"]
    latency("frag_ping", "(2) /ping under 10 staff (baseline)", staff["ping"], None)
    for name in ("rows", "claim", "form", "release"):
        latency(f"frag_{name}", f"(2) {name} fragment, 10 staff", staff[name], "frag_ping")
    saturated = fragments["saturated"]["samples_ms"]
    latency("sat_ping", "(2') /ping, 10 clients no think time (baseline)", saturated["ping"], None)
    for name in ("rows", "claim", "form", "release"):
        latency(
            f"sat_{name}", f"(2') {name}, 10 clients no think time", saturated[name], "sat_ping"
        )

    lp = loop["samples_ms"]
    latency("noop", "(3) no-op Celery task publish -> run (baseline)", lp["noop"], None)
    latency("visible", "(3) Create Run -> item in queue rows", lp["visible"], "noop")
    latency(
        "pending_visible",
        "(3) engine PENDING -> item in queue rows",
        lp["pending_to_visible"],
        "noop",
    )
    latency("submit", "(3) submit -> Run no longer PENDING", lp["submit"], "noop")

    web = rss.get("web", [])
    worker = rss.get("worker", [])
    metrics.append(Metric("web_rss_mb", "(4) gunicorn worker RSS, largest", max(web or [0]), "MB"))
    metrics.append(Metric("worker_rss_mb", "(4) Celery worker RSS", sum(worker), "MB"))

    p95 = {m.key: m.value for m in metrics}
    targets = {
        "queue_page_p95_lt_100ms": {k: p95[f"{k}_p95_ms"] < TARGET_MS for k in labels},
        "queries_bounded": bounded,
        "fragments_p95_lt_100ms_10_staff": {
            k: p95[f"frag_{k}_p95_ms"] < TARGET_MS for k in ("rows", "claim", "form", "release")
        },
        "webhook_to_visible_p95_lt_1s": p95["visible_p95_ms"] < TARGET_LOOP_S * 1000,
        "submit_to_in_progress_p95_lt_1s": p95["submit_p95_ms"] < TARGET_LOOP_S * 1000,
        "web_rss_lt_150mb": max(web or [0]) < TARGET_WEB_MB,
        "worker_rss_lt_250mb": sum(worker) < TARGET_WORKER_MB,
    }
    rates = {}
    for variant, found in fragments.items():
        total = sum(len(v) for v in found["samples_ms"].values())
        rates[variant] = round(total / found["window_s"], 1) if found["window_s"] else None
    return Outcome(
        metrics=metrics,
        config={
            "sizes": asdict(sizes),
            "think_s": list(THINK_S),
            "views": pages["paths"],
            "worker_pool": world.config.pool,
            "worker_concurrency": world.config.worker_concurrency,
            "web": f"{world.config.web_workers} workers x {world.config.web_threads} threads",
            "commands": commands,
            "locust": {k: v["command"] for k, v in fragments.items()},
        },
        details={
            **details,
            "targets": targets,
            "rows_shown": pages["rows"],
            "p99_ms": {k: round(percentile(v, 99), 2) for k, v in page.items()},
            "samples": {
                "pages": {k: len(v) for k, v in page.items()},
                "fragments": {
                    variant: {k: len(v) for k, v in found["samples_ms"].items()}
                    for variant, found in fragments.items()
                },
                "loop": {k: len(v) for k, v in lp.items()},
            },
            "fragment_requests_per_s": rates,
            "fragment_failures": {k: v["failures"] for k, v in fragments.items()},
            "rows_by_run_id_ms": {
                q: round(percentile(lp["rows_by_run_id"], q), 2) for q in (50, 95)
            },
            "submit_answer_ms": {q: round(percentile(lp["submit_answer"], q), 2) for q in (50, 95)},
            "submissions": loop["submissions"],
            "queries_per_page_size": counts,
            "statements_default_50": per_size["default"]["50"]["statements"],
            "inprocess": inproc["timing"],
            "explain": inproc["explain"],
            "fragments_inprocess": inproc["fragments"],
            "what_if": inproc["what_if"],
            "profile_default_view": inproc["profile"],
            "rss_mb": rss,
            "cpu_s": {phase: {k: round(v, 2) for k, v in c.items()} for phase, c in cpu.items()},
        },
    )


# --- Plumbing --------------------------------------------------------------------------------


def _cache_ensure(ctx: Context, sizes: Sizes, cache_url: str) -> dict[str, Any]:
    """The cached dataset's label; built first if missing or built by other code."""
    want = queue_data.fingerprint(sizes.data)
    label = queue_data.cache_label(cache_url)
    if label is not None and label.get("fingerprint") == want:
        return {**label, "reused": True}
    print(
        f"   building the dataset ({sizes.data.runs:,} runs, {sizes.data.open_items:,} open "
        f"items) into {queue_data.db_name(cache_url)}; later runs clone it",
        flush=True,
    )
    began = time.monotonic()
    queue_data.database_create(cache_url)
    config = WorldConfig(
        pool=ctx.pool, worker=False, web_workers=1, env={"DATABASE_URL": cache_url}
    )
    with provision("queue-cache", ctx, config) as world:
        # The mirror's template versions, imported from the engine as an operator would.
        world.manage("load_templates")
    timings = queue_data.generate(cache_url, sizes.data)
    label = {
        "fingerprint": want,
        "sizes": asdict(sizes.data),
        "built_at": _now_iso(),
        "build_s": round(time.monotonic() - began, 1),
        "steps_s": timings,
    }
    queue_data.label_set(cache_url, label)
    return {**label, "reused": False}


def _lock(database_url: str) -> contextlib.AbstractContextManager[None]:
    """One queue scenario at a time per database name: the cache and the clone are shared."""
    name = queue_data.db_name(database_url)
    return file_lock(f"queue-{name}", what="another queue benchmark held the lock 15 minutes")


def _searched(client: httpx.Client, text: str) -> str:
    """The queue's URL for a search: the term is posted, the answer's Location names it by a
    token (reviewqueue/searches.py)."""
    response = client.post("/", data={"q": text})
    if response.status_code != 302:
        raise BenchError(f"the search answered {response.status_code}: {response.text[:300]}")
    return response.headers["location"]


def _client(world: World, session: str, csrf: str) -> httpx.Client:
    return httpx.Client(
        base_url=world.base_url,
        timeout=60,
        cookies={"sessionid": session, "csrftoken": csrf},
        headers={"X-CSRFToken": csrf},
    )


def _django(world: World, command: str, spec: dict[str, Any], timeout: float = 300) -> Any:
    spec_path = world.log_dir / f"django-{command}-spec.json"
    out_path = world.log_dir / f"django-{command}-out.json"
    log = world.log_dir / f"django-{command}.log"
    spec_path.write_text(json.dumps(spec))
    with log.open("wb") as out:
        code = subprocess.run(
            [PYTHON, "-m", "bench.queue_django", command, str(spec_path), str(out_path)],
            cwd=BASE_DIR,
            env=world.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            timeout=timeout,
        ).returncode
    if code != 0:
        raise BenchError(f"bench.queue_django {command} failed ({code}):\n{tail(log)}")
    return json.loads(out_path.read_text())


def _now_iso() -> str:
    from datetime import UTC, datetime

    return datetime.now(UTC).isoformat(timespec="seconds")
