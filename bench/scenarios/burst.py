"""``burst``: 5,000 webhooks in 10 s, as the engine finishing a batch job would send them
(issue 13, DESIGN.md: "a burst of 5,000 events in 10 s stored with no 5xx and every item
visible within 30 s").

The stack: Flowdesk's gunicorn (3 workers x 4 threads), two Celery workers (separate
processes), PostgreSQL, Redis. Get Run is answered by the fake Flows API of the ``webhooks``
scenario (``bench/scenarios/integration.py``), a process of its own, for the same reason given
there: the engine's Get Run would spend this 2-core machine's CPU that Sohar's machines spend in
production, and the figure is Flowdesk's drain, not the engine's.

Before: ``N`` Runs in the mirror, ``IN_PROGRESS`` (``coverage-check`` v1, as if synced earlier);
the fake answers each as ``PENDING`` at ``collect-member-id``, so every event opens an item.

(a) Same-run baselines, closed loop, 8 keep-alive clients, no Celery worker running (as the
    ``webhooks`` scenario's (a)): ``GET /ping``; ``POST /bench/insert``, a bench-only view
    (``bench/web_urls.py``, served with ``DJANGO_SETTINGS_MODULE=bench.web_settings``) doing
    one autocommitted INSERT of the body into a scratch table; the receiver with fresh signed
    events. Rotated for ``rounds`` rounds; medians. Also a bare autocommitted INSERT from the
    load generator's side (psycopg, 8 connections, no HTTP): PostgreSQL's durable-commit rate.
(b) The burst, with both workers running: ``N`` signed ``flow.updated`` events (PENDING at the
    callback, one per mirrored Run, each its own ``svix-id``), sent open loop at ``N / 10`` per
    second from 16 threads. Then wait (bounded) until every event is processed and every item
    open. From the database's own timestamps: the receiver's accept rate (events stored per
    second, first to last ``received_at``), the inbox drain rate (events processed per second,
    first ``received_at`` to last ``processed_at``), and the time from the first event stored to
    the last item opened.
"""

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from bench.measure import BenchError, median, percentile
from bench.registry import Context, Metric, Outcome, scenario
from bench.scenarios import integration
from bench.scenarios.integration import (
    PING,
    WEBHOOK_PATH,
    Request,
    closed_loop,
    fake_flows_api,
    open_loop,
    signed_webhooks,
)
from bench.stack import bench_urls, start_more_workers
from bench.world import World, WorldConfig, bench_broker_url, manage, provision, start_worker

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/flowdesk_bench_burst"
WEBHOOK_SECRET = "whsec_Zmxvd2Rlc2stYmVuY2gtYnVyc3Qtc2VjcmV0"
INSERT_PATH = "/bench/insert"
TEMPLATE, VERSION, STATE = "coverage-check", 1, "collect-member-id"
RUN_INPUT = {
    "patient": {"firstName": "Bench", "lastName": "Notfound", "dateOfBirth": "1980-01-01"},
    "payerId": "60054",
}
# closed_loop() checks each answer by path: the bench-only view says "inserted".
integration.EXPECTED[INSERT_PATH] = b"inserted"


@dataclass(frozen=True)
class Sizes:
    events: int
    burst_s: float
    rounds: int  # (a)
    seconds: float  # (a): each phase
    clients: int  # (a)
    burst_clients: int
    visible_target_s: float
    timeout_s: float  # (b): how long to wait for the drain before giving up


FULL = Sizes(events=5000, burst_s=10, rounds=3, seconds=6, clients=8, burst_clients=16,
             visible_target_s=30, timeout_s=300)  # fmt: skip
QUICK = Sizes(events=1000, burst_s=2, rounds=1, seconds=3, clients=8, burst_clients=16,
              visible_target_s=30, timeout_s=120)  # fmt: skip


@scenario("burst", "5,000 webhooks in 10 s: all stored, no 5xx, items in 30 s; drain rate")
def burst(ctx: Context) -> Outcome:
    sizes = QUICK if ctx.quick else FULL
    database_url = os.environ.get("BENCH_BURST_DATABASE_URL") or DATABASE_URL
    run_ids = [str(uuid.uuid4()) for _ in range(sizes.events)]
    created = datetime.now(UTC) - timedelta(hours=1)
    answers = {run_id: _get_run(run_id, created, i) for i, run_id in enumerate(run_ids)}
    details: dict[str, Any] = {"loadavg": {}, "warnings": []}
    with bench_urls(database_url, bench_broker_url()):
        scratch = Path(tempfile.mkdtemp(prefix="flowdesk-bench-burst-"))
        with fake_flows_api(scratch, answers) as fake_url:
            config = WorldConfig(
                web_workers=3,
                web_threads=4,
                pool=ctx.pool,
                worker=False,
                env={
                    "DJANGO_SETTINGS_MODULE": "bench.web_settings",
                    "FLOWS_API_URL": fake_url,
                    "FLOWS_WEBHOOK_SECRET": WEBHOOK_SECRET,
                },
            )
            with provision("burst", ctx, config) as world:
                # The mirror's template versions, from the embedded engine as an admin would.
                manage({**world.env, "FLOWS_API_URL": f"{world.base_url}/flows-api"},
                       world.log_dir, "load_templates")  # fmt: skip
                _mirror(world, run_ids, created)
                with world.db() as conn:
                    conn.execute("CREATE TABLE bench_scratch (id bigserial PRIMARY KEY,"
                                 " body text NOT NULL)")  # fmt: skip
                details["loadavg"]["baselines_start"] = os.getloadavg()
                rates = _baselines(world, sizes)
                details["loadavg"]["baselines_end"] = os.getloadavg()
                # (a) left its events' messages in Redis: not the burst's work.
                world.redis.delete("celery")
                # Nor are its events, still unprocessed in the inbox: a drain takes the oldest
                # waiting events first, so it would work through (a)'s thousands before the burst.
                with world.db() as conn:
                    conn.execute("UPDATE flows_integration_webhookevent SET processed_at = now()"
                                 " WHERE processed_at IS NULL")  # fmt: skip
                start_worker(world)
                start_more_workers(world, 2)
                details["loadavg"]["burst_start"] = os.getloadavg()
                result = _burst(world, sizes, run_ids)
                details["loadavg"]["burst_end"] = os.getloadavg()
                details["rss_mb"] = world.rss()
                details["commands"] = world.commands()
        shutil.rmtree(scratch, ignore_errors=True)
    return _outcome(sizes, rates, result, details)


def _get_run(run_id: str, created: datetime, i: int) -> dict[str, Any]:
    """The engine-shaped Get Run answer: PENDING at the callback."""
    return {
        "flowRunId": run_id,
        "status": "PENDING",
        "output": {},
        "templateId": TEMPLATE,
        "version": VERSION,
        "stateId": STATE,
        "createdAt": created.isoformat(),
        "updatedAt": (created + timedelta(minutes=30, microseconds=i)).isoformat(),
        "inputData": RUN_INPUT,
        "states": {"discover": {"found": False}},
    }


def _mirror(world: World, run_ids: list[str], created: datetime) -> None:
    """The Runs in Flowdesk's mirror, IN_PROGRESS, as a sync before the batch left them."""
    ids = world.log_dir / "run-ids.json"
    ids.write_text(json.dumps(run_ids))
    code = (
        "import json\n"
        "from datetime import datetime\n"
        "from flows_integration.models import FlowRun, RunStatus, TemplateVersion\n"
        f"created = datetime.fromisoformat({created.isoformat()!r})\n"
        "version = TemplateVersion.objects.select_related('template').get(\n"
        f"    template__template_id={TEMPLATE!r}, number={VERSION})\n"
        f"ids = json.load(open({str(ids)!r}))\n"
        "FlowRun.objects.bulk_create([FlowRun(\n"
        "    flow_run_id=r, template=version.template, version=version,\n"
        "    status=RunStatus.IN_PROGRESS, input_data=" + repr(RUN_INPUT) + ",\n"
        "    remote_created_at=created, remote_updated_at=created, synced_at=created)\n"
        "    for r in ids], batch_size=1000)\n"
    )
    world.manage("shell", "-c", code)


def _baselines(world: World, sizes: Sizes) -> dict[str, list[float]]:
    base = world.base_url
    insert = Request("POST", INSERT_PATH, b'{"event":"bench"}',
                     {"Content-Type": "application/json"})  # fmt: skip
    count = 20_000
    # Warm every gunicorn thread's connections.
    closed_loop(base, [PING] * 300, clients=sizes.clients, seconds=20)
    closed_loop(base, [insert] * 300, clients=sizes.clients, seconds=20)
    closed_loop(base, signed_webhooks(300, WEBHOOK_SECRET), clients=sizes.clients, seconds=20)
    rates: dict[str, list[float]] = {"ping": [], "insert_view": [], "webhook": [], "insert_sql": []}
    kinds = ["ping", "insert_view", "webhook", "insert_sql"]
    for round_ in range(sizes.rounds):
        shift = round_ % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            world.check_alive()
            if kind == "insert_sql":
                rates[kind].append(_sql_inserts(world, sizes.clients, sizes.seconds))
                continue
            requests = {
                "ping": [PING] * count,
                "insert_view": [insert] * count,
                "webhook": signed_webhooks(count, WEBHOOK_SECRET),
            }[kind]
            load = closed_loop(base, requests, clients=sizes.clients, seconds=sizes.seconds)
            if load.failed:
                raise BenchError(f"(a) {kind}: {load.failed} failed; first: {load.first_failure}")
            rates[kind].append(load.rate)
    return rates


def _sql_inserts(world: World, clients: int, seconds: float) -> float:
    """Bare autocommitted INSERTs from here (psycopg, one connection per thread), closed loop."""
    done = [0] * clients
    start = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def client(j: int) -> None:
        with psycopg.connect(world.database_url, autocommit=True) as conn:
            start.wait()
            while time.monotonic() < deadline[0]:
                conn.execute("INSERT INTO bench_scratch (body) VALUES (%s)", ('{"event":"sql"}',))
                done[j] += 1

    threads = [threading.Thread(target=client, args=(j,), daemon=True) for j in range(clients)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    deadline.append(began + seconds)
    start.wait()
    for thread in threads:
        thread.join(seconds + 30)
    return sum(done) / (time.monotonic() - began)


def _burst_webhooks(run_ids: list[str]) -> list[Request]:
    """One signed ``flow.updated`` (PENDING at the callback) per Run, ``svix-id`` msg_burst_*."""
    from standardwebhooks import Webhook

    signer = Webhook(WEBHOOK_SECRET)
    now = datetime.now(UTC)
    stamp = str(int(now.timestamp()))
    found = []
    for run_id in run_ids:
        msg_id = f"msg_burst_{uuid.uuid4().hex}"
        body = json.dumps(
            {"event": "flow.updated", "flowRunId": run_id, "status": "PENDING", "stateId": STATE},
            separators=(",", ":"),
        )
        found.append(
            Request("POST", WEBHOOK_PATH, body.encode(), {
                "Content-Type": "application/json", "svix-id": msg_id,
                "svix-timestamp": stamp, "svix-signature": signer.sign(msg_id, now, body),
            })
        )  # fmt: skip
    return found


def _counts(conn: psycopg.Connection) -> tuple[int, int, int]:
    row = conn.execute(
        "SELECT count(*), count(processed_at) FROM flows_integration_webhookevent"
        " WHERE svix_id LIKE 'msg_burst_%'"
    ).fetchone()
    items = conn.execute(
        "SELECT count(*) FROM reviewqueue_reviewitem WHERE status = 'open'"
    ).fetchone()
    assert row is not None and items is not None
    return int(row[0]), int(row[1]), int(items[0])


def _burst(world: World, sizes: Sizes, run_ids: list[str]) -> dict[str, Any]:
    requests = _burst_webhooks(run_ids)  # signed before the clock starts
    progress: list[tuple[float, int, int, int]] = []
    stop = threading.Event()

    def watch() -> None:
        with world.db() as conn:
            while not stop.is_set():
                progress.append((time.time(), *_counts(conn)))
                stop.wait(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    began = time.time()
    watcher.start()
    load = open_loop(world.base_url, requests, clients=sizes.burst_clients,
                     rate=sizes.events / sizes.burst_s)  # fmt: skip
    sent_s = time.time() - began
    deadline = time.monotonic() + sizes.timeout_s
    with world.db() as conn:
        while time.monotonic() < deadline:
            world.check_alive()
            stored, processed, items = _counts(conn)
            if processed >= sizes.events and items >= sizes.events:
                break
            time.sleep(0.25)
        stop.set()
        watcher.join(5)
        stored, processed, items = _counts(conn)
        times = conn.execute(
            "SELECT extract(epoch FROM min(received_at)), extract(epoch FROM max(received_at)),"
            " extract(epoch FROM max(processed_at)) FROM flows_integration_webhookevent"
            " WHERE svix_id LIKE 'msg_burst_%'"
        ).fetchone()
        opened = conn.execute(
            "SELECT extract(epoch FROM max(opened_at)), count(DISTINCT run_ref)"
            " FROM reviewqueue_reviewitem WHERE status = 'open'"
        ).fetchone()
    assert times is not None and opened is not None
    first, last, drained = (float(t) if t is not None else 0.0 for t in times)
    return {
        "sent": len(requests),
        "ok": load.ok,
        "failed": load.failed,
        "first_failure": load.first_failure,
        "reconnects": load.reconnects,
        "late_starts": load.late_starts,
        "send_s": round(sent_s, 2),
        "stored": stored,
        "processed": processed,
        "items_open": items,
        "items_distinct_runs": int(opened[1]),
        "first_received": first,
        "last_received": last,
        "last_processed": drained,
        "last_item": float(opened[0] or 0),
        "progress": [(round(t - began, 2), s, p, i) for t, s, p, i in progress],
        "latency_ms": {q: round(percentile(load.latencies_ms, q), 1) for q in (50, 95, 99)}
        if load.latencies_ms
        else {},
    }  # fmt: skip


def _outcome(
    sizes: Sizes, rates: dict[str, list[float]], result: dict[str, Any], details: dict[str, Any]
) -> Outcome:
    n = sizes.events
    first = result["first_received"]
    accept_s = max(result["last_received"] - first, 1e-6)
    drain_s = max(result["last_processed"] - first, 1e-6)
    visible_s = result["last_item"] - first if result["items_open"] >= n else float("inf")
    r = {k: median(v) for k, v in rates.items()}
    metrics = [
        Metric("ping_rps", "(a) GET /ping req/s (baseline)", r["ping"], "req/s",
               rounds=[round(v, 1) for v in rates["ping"]]),
        Metric("insert_view_rps", "(a) bench view, one autocommitted INSERT, req/s",
               r["insert_view"], "req/s", baseline="ping_rps",
               rounds=[round(v, 1) for v in rates["insert_view"]]),
        Metric("insert_sql_rps", "(a) bare autocommitted INSERT via psycopg, no HTTP, /s",
               r["insert_sql"], "rows/s", rounds=[round(v, 1) for v in rates["insert_sql"]]),
        Metric("webhook_rps", "(a) receiver req/s, next to /ping", r["webhook"], "req/s",
               baseline="ping_rps", rounds=[round(v, 1) for v in rates["webhook"]]),
        Metric("webhook_vs_insert_rps", "(a) receiver req/s, next to the INSERT view",
               r["webhook"], "req/s", baseline="insert_view_rps"),
        Metric("burst_accept_rps", f"(b) receiver accept rate during the burst of {n:,}",
               n / accept_s, "events/s"),
        Metric("burst_drain_rps", "(b) inbox drain rate (events processed/s)", n / drain_s,
               "events/s", baseline="burst_accept_rps"),
        Metric("burst_5xx", "(b) requests failed (5xx, refused, no answer)", result["failed"],
               "requests"),
        Metric("burst_not_stored", "(b) events sent but not stored", n - result["stored"],
               "events"),
        Metric("burst_visible_s", "(b) first event stored -> last item open", visible_s, "s"),
    ]  # fmt: skip
    return Outcome(
        metrics=metrics,
        config={
            "sizes": asdict(sizes),
            "flows_api": "fake (stdlib HTTP server on 127.0.0.1, engine-shaped Get Run)",
            "insert_baseline": "bench-only view POST /bench/insert (bench/web_urls.py) and "
            "psycopg from the harness, both into bench_scratch(id bigserial, body text)",
            "web": "gunicorn 3 workers x 4 threads; (b) 2 Celery workers",
        },
        details={
            **details,
            "burst": result,
            "send_rate_target": n / sizes.burst_s,
            "send_rate_achieved": round(n / result["send_s"], 1) if result["send_s"] else None,
            "drain_after_last_received_s": round(
                result["last_processed"] - result["last_received"], 2
            ),
            "target_visible_within_s": sizes.visible_target_s,
            "target_met": {
                "stored_all": result["stored"] == n,
                "no_5xx": result["failed"] == 0,
                "visible_within_30s": visible_s < sizes.visible_target_s,
            },
        },
    )
