"""``webhooks`` and ``reconcile``: the two measured paths of flows_integration (issue 3).

``webhooks``: the webhook receiver (``POST /flows/webhooks/``) under gunicorn with PostgreSQL,
next to ``GET /ping`` on the same gunicorn in the same run.

(a) Requests/s, closed loop: ``clients`` threads of the harness, each with one keep-alive
    HTTP/1.1 connection, send requests back to back for ``seconds`` (or ``count`` requests).
    Every webhook is a validly signed ``flow.updated`` event with its own ``svix-id`` and a
    random ``flowRunId``, so each one is a real inbox INSERT (its own transaction), handed to
    the process's next publish to Redis (one ``process_events`` message per 0.2 s per
    process). Phases alternate (ping, webhooks; then webhooks, ping; ...) for
    ``rounds`` rounds; figures are medians over rounds. No Celery worker runs during (a):
    the published ``process_events`` messages wait in Redis, so the measurement is the
    receiver's own work and not the worker's competing for the two cores (or its Get Runs
    loading the same gunicorn).
(b) Latency at a steady 50 requests/s, open loop: request ``i`` is due at ``t0 + i / 50``, sent
    by one of ``clients`` threads; its latency counts from when it was due, so a slow answer
    that delays the next ones shows in theirs too. Ping and webhook phases alternate. During (b)
    a Celery worker runs and processes every event as in production: ``process_events`` calls
    Get Run on a fake Flows API (answering like Sohar's, no extensions) and upserts the mirror.

``reconcile``: ``services.reconcile()`` over ``runs`` non-terminal mirrored runs, run in a
Django process of its own against a fake Flows API (see ``_reconcile_child``), with every SQL
statement timed through ``connection.execute_wrapper`` and every COMMIT timed too; statements
sent by ``run_status_changed``'s receivers (the review queue) are counted apart as well.

The fake Flows API (``_fake_api_main``) is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 in a
process of its own, answering ``/oauth/token`` and Get Run from a dict. It is used rather than
the embedded engine because Get Run on the engine costs gunicorn CPU and PostgreSQL queries on
this same two-core machine (three or four per call): those would be measured as Flowdesk's own
database time and CPU, where in production Get Run is served by Sohar's machines.
"""

import base64
import contextlib
import http.client
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.measure import BenchError, CpuMeter, median, percentile
from bench.registry import Context, Metric, Outcome, scenario
from bench.world import (
    BASE_DIR,
    PYTHON,
    World,
    WorldConfig,
    provision,
    settle,
    start_worker,
    stop_group,
    tail,
)

# A secret of this benchmark's own (``whsec_`` + base64), given to gunicorn and the worker.
WEBHOOK_SECRET = "whsec_Zmxvd2Rlc2stYmVuY2gtaW50ZWdyYXRpb24tc2VjcmV0"
WEBHOOK_PATH = "/flows/webhooks/"
PING_PATH = "/ping"
STEADY_RATE = 50.0  # requests/s of (b)
FAKE_TOKEN = "bench-fake-token"


# --- The fake Flows API ----------------------------------------------------------------------


def _fake_api_main(answers_path: str) -> None:
    """Serve ``/oauth/token`` and ``GET /v1/flow-runs/<id>`` on a free port of 127.0.0.1.

    ``answers_path`` is a JSON object ``{flowRunId: Get Run body}`` (or empty: ``-``). An id
    not in it gets a Sohar-shaped ``PENDING`` answer without our extensions, so the mirror takes
    the state from the webhook's ``stateId``. Anything else answers 404 without ``param``,
    which the client reads as "this server lacks the endpoint". Prints the port, then serves
    until SIGTERM.
    """
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answers: dict[str, bytes] = {}
    if answers_path != "-":
        raw = json.loads(Path(answers_path).read_text())
        answers = {run_id: json.dumps(body).encode() for run_id, body in raw.items()}
    token = json.dumps(
        {"access_token": FAKE_TOKEN, "token_type": "Bearer", "expires_in": 3600}
    ).encode()
    prefix = "/v1/flow-runs/"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects
        # Headers and body leave in two writes: with Nagle's algorithm on, the body waits for
        # the client's delayed ACK of the headers (40 ms a request).
        disable_nagle_algorithm = True

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path == "/oauth/token":
                self._send(200, token)
            else:
                self._send(404, b'{"error": "not_found"}')

        def do_GET(self) -> None:  # noqa: N802
            if self.path.startswith(prefix):
                run_id = self.path[len(prefix) :]
                body = answers.get(run_id)
                if body is None:
                    body = json.dumps(
                        {"flowRunId": run_id, "status": "PENDING", "output": {}}
                    ).encode()
                self._send(200, body)
            else:
                self._send(404, b'{"error": "not_found"}')

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(server.server_address[1], flush=True)
    server.serve_forever(poll_interval=0.2)


@contextlib.contextmanager
def fake_flows_api(log_dir: Path, answers: dict[str, dict] | None = None) -> Iterator[str]:
    """Start the fake Flows API in a process of its own; yield its base URL; stop it."""
    log_dir.mkdir(parents=True, exist_ok=True)
    answers_path = "-"
    if answers is not None:
        path = log_dir / "fake-api-answers.json"
        path.write_text(json.dumps(answers))
        answers_path = str(path)
    with (log_dir / "fake-api.log").open("wb") as log:
        popen = subprocess.Popen(
            [PYTHON, "-m", "bench.scenarios.integration", "fake-api", answers_path],
            cwd=BASE_DIR,
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        assert popen.stdout is not None
        line = _readline(popen, timeout=30)
        base_url = f"http://127.0.0.1:{int(line)}"
        yield base_url
    finally:
        stop_group(popen, timeout=15.0)


def _readline(popen: subprocess.Popen[bytes], *, timeout: float) -> bytes:
    found: list[bytes] = []
    reader = threading.Thread(target=lambda: found.append(popen.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    if not found or not found[0].strip():
        raise BenchError(f"the fake Flows API did not start (exit code {popen.poll()})")
    return found[0]


# --- Load generation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


PING = Request("GET", PING_PATH)


def signed_webhooks(count: int, secret: str = WEBHOOK_SECRET) -> list[Request]:
    """``count`` validly signed ``flow.updated`` events, each with its own ``svix-id`` and a new
    random ``flowRunId``, timestamped now (the receiver accepts 5 minutes either way)."""
    from standardwebhooks import Webhook

    signer = Webhook(secret)
    now = datetime.now(UTC)
    stamp = str(int(now.timestamp()))
    found = []
    for _ in range(count):
        msg_id = f"msg_{uuid.uuid4().hex}"
        body = json.dumps(
            {
                "event": "flow.updated",
                "flowRunId": str(uuid.uuid4()),
                "status": "PENDING",
                "stateId": "collect-member-id",
            },
            separators=(",", ":"),
        )
        found.append(
            Request(
                "POST",
                WEBHOOK_PATH,
                body.encode(),
                {
                    "Content-Type": "application/json",
                    "svix-id": msg_id,
                    "svix-timestamp": stamp,
                    "svix-signature": signer.sign(msg_id, now, body),
                },
            )
        )
    return found


# What a successful answer of each kind contains (a duplicate or an ignored event is a failure).
EXPECTED = {PING_PATH: b"pong", WEBHOOK_PATH: b'"accepted"'}


@dataclass
class Load:
    """What one load phase did."""

    ok: int = 0
    failed: int = 0
    reconnects: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # from when each request was due
    service_ms: list[float] = field(default_factory=list)  # from when it was actually sent
    late_starts: int = 0  # requests sent more than 10 ms after they were due
    first_failure: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s else 0.0


class _Connection:
    """One keep-alive HTTP/1.1 connection; reopened once if the server closed it between
    requests (gunicorn's keep-alive timeout)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.conn = http.client.HTTPConnection(host, port, timeout=30)
        self.reconnects = 0

    def send(self, request: Request) -> tuple[int, bytes]:
        for attempt in (1, 2):
            try:
                self.conn.request(
                    request.method, request.path, body=request.body, headers=request.headers
                )
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
                self.reconnects += 1
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        self.conn.close()


def _address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    assert parts.hostname == "127.0.0.1", "load stays on loopback"
    return parts.hostname, int(parts.port or 80)


def closed_loop(base_url: str, requests: list[Request], *, clients: int, seconds: float) -> Load:
    """Send ``requests`` from ``clients`` threads, each request as soon as the thread's previous
    one was answered, until they run out or ``seconds`` have passed."""
    host, port = _address(base_url)
    load = Load()
    lock = threading.Lock()
    counter = itertools.count()
    start = threading.Barrier(clients + 1)
    deadline: list[float] = []

    def client() -> None:
        conn = _Connection(host, port)
        ok = failed = 0
        failure = ""
        start.wait()
        try:
            while time.monotonic() < deadline[0]:
                i = next(counter)
                if i >= len(requests):
                    break
                request = requests[i]
                try:
                    status, body = conn.send(request)
                except OSError as exc:
                    failed += 1
                    failure = failure or f"{type(exc).__name__}: {exc}"
                    continue
                if status == 200 and EXPECTED[request.path] in body:
                    ok += 1
                else:
                    failed += 1
                    failure = failure or f"{status} {body[:200]!r}"
        finally:
            conn.close()
            with lock:
                load.ok += ok
                load.failed += failed
                load.reconnects += conn.reconnects
                load.first_failure = load.first_failure or failure

    threads = [threading.Thread(target=client, daemon=True) for _ in range(clients)]
    for thread in threads:
        thread.start()
    began = time.monotonic()
    deadline.append(began + seconds)
    start.wait()
    for thread in threads:
        thread.join(seconds + 60)
    load.elapsed_s = time.monotonic() - began
    if any(thread.is_alive() for thread in threads):
        raise BenchError("a load thread did not finish within a minute of its deadline")
    return load


def open_loop(base_url: str, requests: list[Request], *, clients: int, rate: float) -> Load:
    """Send request ``i`` at ``t0 + i / rate`` from one of ``clients`` threads (thread ``j``
    sends ``j``, ``j + clients``, ...); each latency counts from when its request was due."""
    host, port = _address(base_url)
    load = Load()
    lock = threading.Lock()
    start = threading.Barrier(clients + 1)
    t0: list[float] = []

    def client(j: int) -> None:
        conn = _Connection(host, port)
        latencies, service, late, ok, failed, failure = [], [], 0, 0, 0, ""
        start.wait()
        try:
            for i in range(j, len(requests), clients):
                due = t0[0] + i / rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                elif now - due > 0.010:
                    late += 1
                sent = time.monotonic()
                try:
                    status, body = conn.send(requests[i])
                except OSError as exc:
                    failed += 1
                    failure = failure or f"{type(exc).__name__}: {exc}"
                    continue
                done = time.monotonic()
                if status == 200 and EXPECTED[requests[i].path] in body:
                    ok += 1
                    latencies.append((done - due) * 1000)
                    service.append((done - sent) * 1000)
                else:
                    failed += 1
                    failure = failure or f"{status} {body[:200]!r}"
        finally:
            conn.close()
            with lock:
                load.ok += ok
                load.failed += failed
                load.late_starts += late
                load.reconnects += conn.reconnects
                load.latencies_ms.extend(latencies)
                load.service_ms.extend(service)
                load.first_failure = load.first_failure or failure

    threads = [threading.Thread(target=client, args=(j,), daemon=True) for j in range(clients)]
    for thread in threads:
        thread.start()
    t0.append(time.monotonic() + 0.05)
    start.wait()
    budget = len(requests) / rate + 90
    for thread in threads:
        thread.join(budget)
    load.elapsed_s = time.monotonic() - t0[0]
    if any(thread.is_alive() for thread in threads):
        raise BenchError("a steady-rate load thread did not finish in time")
    return load


# --- webhooks --------------------------------------------------------------------------------


@dataclass(frozen=True)
class WebhookSizes:
    rounds: int  # (a): rounds of one ping phase and one webhook phase
    seconds: float  # (a): length of each phase
    count: int  # (a): at most this many requests per phase
    clients: int  # concurrent connections of (a) and threads of (b)
    steady_rounds: int  # (b): rounds of one ping phase and one webhook phase at 50/s
    steady_seconds: float  # (b): length of each phase
    warm_up: int  # requests of each kind before anything is measured


WEBHOOKS_FULL = WebhookSizes(
    rounds=3, seconds=8, count=30_000, clients=8, steady_rounds=2, steady_seconds=20, warm_up=400
)
WEBHOOKS_QUICK = WebhookSizes(
    rounds=1, seconds=3, count=10_000, clients=8, steady_rounds=1, steady_seconds=5, warm_up=100
)


@scenario("webhooks", "Webhook receiver req/s vs GET /ping (gunicorn + PostgreSQL); p99 at 50/s")
def webhooks(ctx: Context) -> Outcome:
    sizes = WEBHOOKS_QUICK if ctx.quick else WEBHOOKS_FULL
    warnings: list[str] = []
    with _scratch(ctx) as scratch, fake_flows_api(scratch) as fake_url:
        config = WorldConfig(
            pool=ctx.pool,
            worker=False,  # (a) runs without one; (b) starts one, see start_worker()
            env={"FLOWS_WEBHOOK_SECRET": WEBHOOK_SECRET, "FLOWS_API_URL": fake_url},
        )
        with provision("webhooks", ctx, config) as world:
            base = world.base_url
            # Warm every gunicorn thread's database and broker connections.
            closed_loop(base, [PING] * sizes.warm_up, clients=sizes.clients, seconds=30)
            warm = closed_loop(
                base, signed_webhooks(sizes.warm_up), clients=sizes.clients, seconds=30
            )
            accepted = warm.ok

            # (a) Throughput, no worker.
            meter = CpuMeter({"web": world.processes["web"].popen.pid}, {"postgres": "postgres"})
            rates: dict[str, list[float]] = {"ping": [], "webhook": []}
            cpu: dict[str, dict[str, float]] = {"ping": {}, "webhook": {}}
            served: dict[str, int] = {"ping": 0, "webhook": 0}
            for round_ in range(sizes.rounds):
                order = ["ping", "webhook"] if round_ % 2 == 0 else ["webhook", "ping"]
                for kind in order:
                    requests = (
                        [PING] * sizes.count
                        if kind == "ping"
                        else signed_webhooks(sizes.count)  # signed before the clock starts
                    )
                    world.check_alive()
                    before = meter.sample()
                    load = closed_loop(base, requests, clients=sizes.clients, seconds=sizes.seconds)
                    _add(cpu[kind], CpuMeter.spent(before, meter.sample()))
                    _check(load, f"(a) {kind}", warnings)
                    rates[kind].append(load.rate)
                    served[kind] += load.ok
                    if kind == "webhook":
                        accepted += load.ok
                        if load.ok >= len(requests):
                            warnings.append("(a) a webhook phase ran out of signed requests")

            # Each process publishes what it held a moment after the last request.
            time.sleep(1)
            stored, queued = _inbox_and_queue(world)
            if stored != accepted or queued != accepted:
                raise BenchError(
                    f"{accepted} webhooks accepted, but {stored} inbox rows and {queued} "
                    "distinct events in the broker's process_events messages"
                )
            # The backlog of (a) would keep the worker busy for minutes: drop it, as if the
            # broker had lost it (the inbox rows stay unprocessed, for the sweeper).
            world.redis.delete("celery")

            # (b) Latency at 50 requests/s, with a worker processing every event.
            start_worker(world)
            meter = world.cpu_meter()
            samples: dict[str, list[float]] = {"ping": [], "webhook": []}
            service: dict[str, list[float]] = {"ping": [], "webhook": []}
            steady_cpu: dict[str, dict[str, float]] = {"ping": {}, "webhook": {}}
            late = 0
            steady_webhooks = 0
            n = int(sizes.steady_seconds * STEADY_RATE)
            for round_ in range(sizes.steady_rounds):
                order = ["ping", "webhook"] if round_ % 2 == 0 else ["webhook", "ping"]
                for kind in order:
                    requests = [PING] * n if kind == "ping" else signed_webhooks(n)
                    if not settle(world, timeout=120):
                        warnings.append(f"(b) the worker was still busy before a {kind} phase")
                    before = meter.sample()
                    load = open_loop(base, requests, clients=sizes.clients, rate=STEADY_RATE)
                    # The phase's work includes the worker finishing what it was given.
                    if kind == "webhook" and not settle(world, timeout=120):
                        warnings.append("(b) the worker did not finish a webhook phase's events")
                    _add(steady_cpu[kind], CpuMeter.spent(before, meter.sample()))
                    _check(load, f"(b) {kind}", warnings)
                    samples[kind].extend(load.latencies_ms)
                    service[kind].extend(load.service_ms)
                    late += load.late_starts
                    if kind == "webhook":
                        steady_webhooks += load.ok
            processed, mirrored = _processed(world)
            rss = world.rss()
            commands = world.commands()

    ratio = median(rates["webhook"]) / median(rates["ping"])
    p99 = percentile(samples["webhook"], 99)
    metrics = [
        Metric("ping_rps", "GET /ping req/s (baseline)", median(rates["ping"]), "req/s",
               rounds=_r(rates["ping"])),
        Metric("webhook_rps", "POST /flows/webhooks/ req/s", median(rates["webhook"]), "req/s",
               baseline="ping_rps", rounds=_r(rates["webhook"])),
    ]  # fmt: skip
    for kind, label in (("ping", "GET /ping"), ("webhook", "webhook")):
        for q in (50, 95, 99):
            metrics.append(
                Metric(
                    f"{kind}_p{q}_50rps",
                    f"{label} p{q} at 50 req/s",
                    percentile(samples[kind], q),
                    "ms",
                    baseline=f"ping_p{q}_50rps" if kind == "webhook" else None,
                )
            )
    metrics.append(Metric("webhook_max_50rps", "webhook max at 50 req/s",
                          max(samples["webhook"]), "ms"))  # fmt: skip
    return Outcome(
        metrics=metrics,
        config={
            "sizes": sizes.__dict__,
            "throughput_worker": "none (published messages wait in Redis)",
            "steady_worker": f"celery --pool={ctx.pool}, Get Run on a fake Sohar-like API",
            "commands": commands,
        },
        details={
            "ratio_webhook_to_ping": round(ratio, 3),
            "target_ratio_met": ratio >= 0.5,
            "target_p99_met": p99 < 250,
            "cpu_ms_per_request_throughput": {
                kind: {k: round(v * 1000 / served[kind], 3) for k, v in cpu[kind].items()}
                for kind in cpu
            },
            "cpu_s_steady": {k: _round(v) for k, v in steady_cpu.items()},
            "service_time_ms_steady": {
                kind: {f"p{q}": round(percentile(service[kind], q), 1) for q in (50, 95, 99)}
                for kind in service
            },
            "late_starts_steady": late,
            "webhooks_accepted_throughput": accepted,
            "steady_webhooks": steady_webhooks,
            "steady_events_processed": processed,
            "mirror_rows": mirrored,
            "rss_mb": rss,
            "warnings": warnings,
        },
    )


def _check(load: Load, what: str, warnings: list[str]) -> None:
    if load.failed:
        raise BenchError(f"{what}: {load.failed} requests failed, first: {load.first_failure}")
    if load.reconnects:
        warnings.append(f"{what}: {load.reconnects} connections reopened")


def _add(into: dict[str, float], spent: dict[str, float]) -> None:
    for key, value in spent.items():
        into[key] = into.get(key, 0.0) + value


def _r(values: list[float]) -> list[float]:
    return [round(v, 1) for v in values]


def _round(values: dict[str, float]) -> dict[str, float]:
    return {k: round(v, 2) for k, v in values.items()}


def _inbox_and_queue(world: World) -> tuple[int, int]:
    """Inbox rows, and the distinct events the ``process_events`` messages waiting in Redis
    carry (Celery's message protocol 2: a base64 JSON body ``[args, kwargs, embed]``)."""
    with world.db() as conn:
        row = conn.execute("SELECT count(*) FROM flows_integration_webhookevent").fetchone()
    queued: set[int] = set()
    for raw_message in world.redis.lrange("celery", 0, -1):
        message = json.loads(raw_message)
        if message["headers"]["task"] == "flows_integration.tasks.process_events":
            args, _, _ = json.loads(base64.b64decode(message["body"]))
            queued.update(args[0])
    return (row[0] if row else 0), len(queued)


def _processed(world: World) -> tuple[int, int]:
    with world.db() as conn:
        events = conn.execute(
            "SELECT count(*) FROM flows_integration_webhookevent WHERE processed_at IS NOT NULL"
        ).fetchone()
        runs = conn.execute("SELECT count(*) FROM flows_integration_flowrun").fetchone()
    return (events[0] if events else 0), (runs[0] if runs else 0)


# --- reconcile -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReconcileSizes:
    runs: int
    rounds: int  # rounds of (reset, pass 1, pass 2)
    baseline_repeats: int


RECONCILE_FULL = ReconcileSizes(runs=10_000, rounds=3, baseline_repeats=5)
RECONCILE_QUICK = ReconcileSizes(runs=2_000, rounds=1, baseline_repeats=3)

TEMPLATE, VERSION, STATE = "coverage-check", 1, "collect-member-id"
# What reconcile compares with Get Run's answer: baseline (i) reads these of every row.
COMPARED_FIELDS = ("flow_run_id", "status", "state_id", "output", "errors", "remote_updated_at")
RUN_INPUT = {
    "patient": {"firstName": "Bench", "lastName": "Notfound", "dateOfBirth": "1980-01-01"},
    "payerId": "60054",
}


@scenario("reconcile", "reconcile() of N non-terminal runs: DB time, queries, rows written")
def reconcile(ctx: Context) -> Outcome:
    sizes = RECONCILE_QUICK if ctx.quick else RECONCILE_FULL
    # What the server says: every run PENDING at collect-member-id, changed an hour after the
    # mirror last saw it. The mirror (set up by the child) has them IN_PROGRESS.
    created = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    updated = created + timedelta(hours=1)
    run_ids = [str(uuid.uuid4()) for _ in range(sizes.runs)]
    answers = {
        run_id: {
            "flowRunId": run_id,
            "status": "PENDING",
            "output": {},
            "templateId": TEMPLATE,
            "version": VERSION,
            "stateId": STATE,
            "createdAt": created.isoformat(),
            "updatedAt": (updated + timedelta(microseconds=i)).isoformat(),
            # Our engine's extensions for a reviewer's context (the mirror does not keep them).
            "inputData": RUN_INPUT,
            "states": {"discover": {"found": False}},
        }
        for i, run_id in enumerate(run_ids)
    }
    config = WorldConfig(pool=ctx.pool, worker=False)
    with _scratch(ctx) as scratch, provision("reconcile", ctx, config) as world:
        shape = _engine_shape(world)
        if set(shape) != set(next(iter(answers.values()))):
            raise BenchError(f"the fake's Get Run keys differ from the engine's: {sorted(shape)}")
        # The mirror's copy of the template, imported from the engine as an admin would.
        world.manage("load_templates")
        with fake_flows_api(scratch, answers) as fake_url:
            spec = scratch / "reconcile-spec.json"
            out = scratch / "reconcile-result.json"
            spec.write_text(
                json.dumps(
                    {
                        "run_ids": run_ids,
                        "created": created.isoformat(),
                        "rounds": sizes.rounds,
                        "baseline_repeats": sizes.baseline_repeats,
                    }
                )
            )
            env = {**world.env, "FLOWS_API_URL": fake_url}
            log = world.log_dir / "reconcile-child.log"
            with log.open("wb") as stream:
                code = subprocess.run(
                    [PYTHON, "-m", "bench.scenarios.integration", "reconcile-child", str(spec),
                     str(out)],
                    cwd=BASE_DIR, env=env, stdout=stream, stderr=subprocess.STDOUT,
                    timeout=900,
                ).returncode  # fmt: skip
            if code != 0:
                raise BenchError(f"the reconcile process failed ({code}):\n{tail(log)}")
            result = json.loads(out.read_text())
    first, second = result["pass1"], result["pass2"]

    def med(passes: list[dict], key: str) -> float:
        return median([p[key] for p in passes])

    def rounds(passes: list[dict], key: str) -> list[float]:
        return [round(p[key], 3) for p in passes]

    base = result["baseline"]
    n = sizes.runs
    metrics = [
        Metric("select_db_ms", f"baseline: values_list of {n} rows, DB", base["select_db_s"] * 1000,
               "ms"),
        Metric("bulk_db_ms", f"baseline: bulk_update of {n} rows, DB",
               base["bulk_update_db_s"] * 1000, "ms"),
        Metric("pass1_db_ms", "pass 1 (all changed): DB time", med(first, "db_s") * 1000, "ms",
               baseline="bulk_db_ms", rounds=[round(p["db_s"] * 1000, 1) for p in first]),
        Metric("pass1_mirror_db_ms", "pass 1: DB time of the mirror (without receivers)",
               med(first, "mirror_db_s") * 1000, "ms", baseline="bulk_db_ms",
               rounds=[round(p["mirror_db_s"] * 1000, 1) for p in first]),
        Metric("pass1_receivers_db_ms", "pass 1: DB time inside the review queue's receivers",
               med(first, "receivers_db_s") * 1000, "ms",
               rounds=[round(p["receivers_db_s"] * 1000, 1) for p in first]),
        Metric("pass1_signals", "pass 1: announcements sent (one per chunk)", med(first, "signals"),
               "signals"),
        Metric("pass1_wall_s", "pass 1: wall time", med(first, "wall_s"), "s",
               rounds=rounds(first, "wall_s")),
        Metric("pass1_cpu_s", "pass 1: CPU of the process", med(first, "cpu_s"), "s",
               rounds=rounds(first, "cpu_s")),
        Metric("pass1_queries", "pass 1: statements + COMMITs",
               med(first, "statements_and_commits"), "stmts"),
        Metric("pass1_rows", "pass 1: flowrun rows written", med(first, "flowrun_rows_written"),
               "rows"),
        Metric("pass2_db_ms", "pass 2 (nothing changed): DB time", med(second, "db_s") * 1000,
               "ms", baseline="select_db_ms", rounds=[round(p["db_s"] * 1000, 1) for p in second]),
        Metric("pass2_wall_s", "pass 2: wall time", med(second, "wall_s"), "s",
               rounds=rounds(second, "wall_s")),
        Metric("pass2_cpu_s", "pass 2: CPU of the process", med(second, "cpu_s"), "s",
               rounds=rounds(second, "cpu_s")),
        Metric("pass2_queries", "pass 2: statements + COMMITs",
               med(second, "statements_and_commits"), "stmts"),
        Metric("pass2_rows", "pass 2: flowrun rows written",
               max(p["flowrun_rows_written"] for p in second), "rows",
               rounds=rounds(second, "flowrun_rows_written")),
        Metric("pass2_tuples", "pass 2: flowrun tuples new (xmin)",
               max(p["flowrun_tuples_new"] for p in second), "rows"),
    ]  # fmt: skip
    return Outcome(
        metrics=metrics,
        config={
            "sizes": sizes.__dict__,
            "flows_api": "fake (stdlib HTTP server on 127.0.0.1, engine-shaped Get Run)",
            "mirror_before": "IN_PROGRESS, no state; server: PENDING at collect-member-id",
        },
        details={
            "target_pass1_db_under_1s": med(first, "db_s") < 1.0,
            "target_pass1_mirror_db_under_1s": med(first, "mirror_db_s") < 1.0,
            "target_pass2_zero_rows": all(p["flowrun_rows_written"] == 0 for p in second),
            "pass1": first,
            "pass2": second,
            "baseline": base,
            "postgres": result["postgres"],
        },
    )


def _engine_shape(world: World) -> list[str]:
    """The keys of a real Get Run answer of the embedded engine (a Run just created)."""
    with httpx.Client(base_url=f"{world.base_url}/flows-api", timeout=30) as http:
        token = http.post(
            "/oauth/token",
            json={"client_id": "demo-sandbox", "client_secret": "demo-sandbox-secret"},
        ).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        created = http.post(
            f"/v1/flows/{TEMPLATE}/runs", json={"inputData": RUN_INPUT}, headers=headers
        )
        created.raise_for_status()
        run_id = created.json()["flowRunId"]
        answer = http.get(f"/v1/flow-runs/{run_id}", headers=headers)
        answer.raise_for_status()
        return sorted(answer.json())


@contextlib.contextmanager
def _scratch(ctx: Context) -> Iterator[Path]:
    """A folder for the fake API's answers and log and the reconcile process's files; removed
    afterwards unless the scenario failed or ``--keep`` was given."""
    path = Path(tempfile.mkdtemp(prefix="flowdesk-bench-integration-"))
    yield path
    if ctx.keep:
        print(f"   scratch files kept in {path}", file=sys.stderr)
    else:
        shutil.rmtree(path, ignore_errors=True)


# --- The reconcile process (runs Django) -----------------------------------------------------


class _SqlMeter:
    """Every SQL statement on this thread's connection, timed, and every COMMIT.

    ``execute_wrapper`` times a statement's round trip (with psycopg 3, the result set arrives
    inside ``execute``, and so does the implicit ``BEGIN`` of a transaction); COMMIT does not go
    through it, so ``DatabaseWrapper._commit`` is timed as well. Python's work on the rows
    (Django building models) is not database time and is left out. Statements sent while
    ``run_status_changed``'s receivers run (the review queue opening items, in the same
    transaction) are counted apart too, as ``receivers_*``: see ``_TimedSignal``.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.seconds = 0.0
        self.in_receivers = 0
        self.signals = 0
        self.receivers_s = 0.0
        self.receivers_statements = 0
        self.receivers_wall_s = 0.0
        self.by_kind: dict[str, list[float]] = {}  # kind -> [count, seconds]
        self.writes: dict[str, list[int]] = {}  # table -> [statements, rows]
        self.commit_s = 0.0
        self.commits = 0

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            spent = time.perf_counter() - began
            self.seconds += spent
            if self.in_receivers:
                self.receivers_s += spent
                self.receivers_statements += 1
            kind = sql.lstrip().split(None, 1)[0].upper()
            entry = self.by_kind.setdefault(kind, [0, 0.0])
            entry[0] += 1
            entry[1] += spent
            if kind in ("INSERT", "UPDATE", "DELETE"):
                table = _table_written(sql)
                rows = getattr(context.get("cursor"), "rowcount", -1)
                write = self.writes.setdefault(table, [0, 0])
                write[0] += 1
                write[1] += max(rows, 0)

    def timed_commit(self, commit: Any) -> Any:
        def wrapped() -> Any:
            began = time.perf_counter()
            try:
                return commit()
            finally:
                self.commit_s += time.perf_counter() - began
                self.commits += 1

        return wrapped

    def summary(self) -> dict[str, Any]:
        statements = sum(int(c) for c, _ in self.by_kind.values())
        return {
            "db_s": self.seconds + self.commit_s,
            "statements_s": self.seconds,
            "commit_s": self.commit_s,
            "statements": statements,
            "commits": self.commits,
            "statements_and_commits": statements + self.commits,
            "signals": self.signals,
            "receivers_db_s": self.receivers_s,
            "receivers_statements": self.receivers_statements,
            "receivers_wall_s": self.receivers_wall_s,
            "mirror_db_s": self.seconds + self.commit_s - self.receivers_s,
            "by_kind": {
                k: {"count": int(c), "s": round(s, 4)} for k, (c, s) in self.by_kind.items()
            },
            "writes": {t: {"statements": s, "rows": r} for t, (s, r) in self.writes.items()},
        }


class _TimedSignal:
    """Stands in for ``run_status_changed`` in ``services``: sends it, and tells the meter that
    what runs meanwhile is the receivers' work, not the mirror's."""

    def __init__(self, signal: Any, meter: _SqlMeter) -> None:
        self.signal, self.meter = signal, meter

    def send(self, *args: Any, **kwargs: Any) -> Any:
        self.meter.signals += 1
        self.meter.in_receivers += 1
        began = time.perf_counter()
        try:
            return self.signal.send(*args, **kwargs)
        finally:
            self.meter.in_receivers -= 1
            self.meter.receivers_wall_s += time.perf_counter() - began


def _table_written(sql: str) -> str:
    words = sql.split()
    upper = [w.upper() for w in words]
    for marker in ("INTO", "UPDATE", "FROM"):
        if marker in upper:
            index = upper.index(marker) + 1
            if index < len(words):
                return words[index].strip('"')
    return "?"


def _reconcile_child(spec_path: str, out_path: str) -> None:
    """Set up the mirror rows, then reconcile them ``rounds`` times over; write the figures.

    Each round: reset the rows to what the mirror saw before (not measured), VACUUM ANALYZE,
    pass 1 (the server's answers differ for every run), VACUUM ANALYZE, pass 2 (nothing
    changed). Then the baselines, on the same rows.
    """
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.db import connection, connections, transaction

    from flows_integration import services
    from flows_integration.models import FlowRun, RunStatus, TemplateVersion
    from reviewqueue.models import ACTIVE_STATUSES, ItemStatus, ReviewItem

    spec = json.loads(Path(spec_path).read_text())
    run_ids = [uuid.UUID(r) for r in spec["run_ids"]]
    created = datetime.fromisoformat(spec["created"])
    version = TemplateVersion.objects.select_related("template").get(
        template__template_id=TEMPLATE, number=VERSION
    )
    FlowRun.objects.bulk_create(
        [
            FlowRun(
                flow_run_id=run_id,
                template=version.template,
                version=version,
                status=RunStatus.IN_PROGRESS,
                input_data=RUN_INPUT,
                remote_created_at=created,
                remote_updated_at=created,
                synced_at=created + timedelta(milliseconds=i),
            )
            for i, run_id in enumerate(run_ids)
        ],
        batch_size=1000,
    )

    def reset() -> None:
        # Every round opens its 10,000 items: the review queue's work is part of the pass.
        # (The audit log is append-only, so the last round's items are closed, not deleted.)
        ReviewItem.objects.filter(status__in=ACTIVE_STATUSES).update(
            status=ItemStatus.SUPERSEDED, closed_at=created
        )
        FlowRun.objects.update(
            status=RunStatus.IN_PROGRESS,
            state_id="",
            state_unresolved=False,
            remote_updated_at=created,
            synced_at=created,
            sync_error="",
        )

    def vacuum() -> None:
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE flows_integration_flowrun")

    def txid() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            return int(cursor.fetchone()[0])

    def tuples_since(xid: int) -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM flows_integration_flowrun WHERE xmin::text::bigint >= %s",
                [xid % 2**32],
            )
            return int(cursor.fetchone()[0])

    meter = _SqlMeter()
    services.run_status_changed = _TimedSignal(services.run_status_changed, meter)  # type: ignore[assignment]
    services.runs_status_changed = _TimedSignal(services.runs_status_changed, meter)  # type: ignore[assignment]
    # Django's private commit hook is the only place COMMIT's own time can be read.
    wrapper: Any = connections["default"]
    original_commit = wrapper._commit

    def measured(fn: Any) -> tuple[dict[str, Any], Any]:
        meter.reset()
        wrapper._commit = meter.timed_commit(original_commit)
        try:
            with connection.execute_wrapper(meter):
                began, cpu = time.perf_counter(), time.process_time()
                value = fn()
                wall, cpu = time.perf_counter() - began, time.process_time() - cpu
        finally:
            del wrapper._commit
        return {"wall_s": wall, "cpu_s": cpu, **meter.summary()}, value

    passes: dict[str, list[dict[str, Any]]] = {"pass1": [], "pass2": []}
    expected_changes = {"pass1": len(run_ids), "pass2": 0}
    for _ in range(spec["rounds"]):
        reset()
        for name in ("pass1", "pass2"):
            vacuum()
            xid = txid()
            figures, sync_pass = measured(services.reconcile)
            figures["flowrun_tuples_new"] = tuples_since(xid)
            figures["flowrun_rows_written"] = figures["writes"].get(
                FlowRun._meta.db_table, {"rows": 0}
            )["rows"]
            figures["checked"] = sync_pass.runs_checked
            figures["changed"] = sync_pass.runs_changed
            figures["failed"] = sync_pass.runs_failed
            if (sync_pass.runs_checked, sync_pass.runs_changed, sync_pass.runs_failed) != (
                len(run_ids),
                expected_changes[name],
                0,
            ):
                raise SystemExit(f"{name}: unexpected pass {figures}")
            passes[name].append(figures)

    # Baseline 1: read the same rows' compared fields in one query.
    selects = []
    for _ in range(spec["baseline_repeats"]):
        figures, rows = measured(
            lambda: list(
                FlowRun.objects.exclude(status__in=[RunStatus.COMPLETE, RunStatus.ERROR])
                .order_by("synced_at", "pk")
                .values_list(*COMPARED_FIELDS)
            )
        )
        assert len(rows) == len(run_ids)
        selects.append(figures)
    # Baseline 2: the same change to every row written set-wise, in one transaction.
    reset()
    vacuum()
    runs = list(FlowRun.objects.all())
    later = created + timedelta(hours=1)
    for run in runs:
        run.status, run.state_id = RunStatus.PENDING, STATE
        run.remote_updated_at = run.synced_at = later

    def bulk() -> None:
        with transaction.atomic():
            FlowRun.objects.bulk_update(
                runs, ["status", "state_id", "remote_updated_at", "synced_at"], batch_size=1000
            )

    bulk_figures, _ = measured(bulk)

    with connection.cursor() as cursor:
        settings = {}
        for name in ("synchronous_commit", "fsync", "shared_buffers", "server_version"):
            cursor.execute(f"SHOW {name}")
            settings[name] = cursor.fetchone()[0]

    Path(out_path).write_text(
        json.dumps(
            {
                "pass1": passes["pass1"],
                "pass2": passes["pass2"],
                "baseline": {
                    "select_db_s": median([s["db_s"] for s in selects]),
                    "select_wall_s": median([s["wall_s"] for s in selects]),
                    "select_rounds": [round(s["db_s"], 4) for s in selects],
                    "bulk_update_db_s": bulk_figures["db_s"],
                    "bulk_update_wall_s": bulk_figures["wall_s"],
                    "bulk_update": bulk_figures,
                },
                "postgres": settings,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    if sys.argv[1] == "fake-api":
        _fake_api_main(sys.argv[2])
    elif sys.argv[1] == "reconcile-child":
        _reconcile_child(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r}")
