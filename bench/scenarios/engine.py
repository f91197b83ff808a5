"""``engine``: how fast the embedded Flows engine takes a Run to its first pause.

(a) Runs/s from Create Run to ``PENDING`` for ``coverage-check`` v1 with lastName ``Notfound``
    (Discovery finds nothing, the choice falls through, the Run pauses at ``collect-member-id``):
    ``clients`` httpx clients create the Runs concurrently, then the database is polled until all
    are ``PENDING``; runs/s = runs / (first request to last ``PENDING``).
(b) Baseline: no-op Celery tasks/s, published to the same broker and run by the same worker.
    (a) and (b) alternate for ``rounds`` rounds; the figures are medians over rounds.
(c) p50/p95 of Get Run and Update Run over HTTP next to ``GET /ping`` on the same gunicorn:
    one keep-alive client, sequential requests, the three kinds interleaved (rotating order), so
    each sees the same machine. Update Run resumes Runs that (a) left ``PENDING``.

(a) runs in two variants each round. "Engine alone": the webhook endpoints are switched off, so
the worker only executes Runs. "With webhook loop", as under ``make run``: every transition also
writes a webhook message that the worker delivers to Flowdesk's receiver on the same gunicorn,
whose task then calls Get Run to refresh the mirror; this variant also reports runs/s until
Flowdesk's mirror shows every Run ``PENDING``. CPU per Run is counted until the broker is quiet,
so it includes the loop's tail. (c) runs with the loop on. The broker is drained between phases
so that one phase's tail does not load the next.
"""

import itertools
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

import httpx
import psycopg

from bench.measure import BenchError, CpuMeter, median, percentile, wait_until
from bench.registry import Context, Metric, Outcome, scenario
from bench.world import World, provision, settle

TEMPLATE = "coverage-check"
VERSION = 1
PAUSE_STATE = "collect-member-id"
RUN_INPUT = {
    "patient": {"firstName": "Bench", "lastName": "Notfound", "dateOfBirth": "1980-01-01"},
    "payerId": "60054",
}
UPDATE_INPUT = {"memberId": "00000000"}
CLIENT_ID, CLIENT_SECRET = "demo-sandbox", "demo-sandbox-secret"


@dataclass(frozen=True)
class Sizes:
    rounds: int
    runs: int  # Runs created per round
    noop_tasks: int  # baseline tasks per round
    clients: int  # concurrent httpx clients creating Runs
    requests: int  # latency samples per request kind
    phase_timeout: float  # seconds any one phase may take


FULL = Sizes(rounds=3, runs=200, noop_tasks=500, clients=4, requests=500, phase_timeout=300)
QUICK = Sizes(rounds=1, runs=60, noop_tasks=100, clients=4, requests=50, phase_timeout=60)


# The two ways (a) is measured: the engine on its own (no webhook endpoint), and the engine in
# make run's loop (every transition delivered to Flowdesk's receiver, which calls Get Run back).
VARIANTS = {
    "alone": ("engine alone", False),
    "webhooks": ("with webhook loop", True),
}


@dataclass
class Series:
    """What the rounds of one variant of (a) add up to."""

    rates: list[float] = field(default_factory=list)
    mirror_rates: list[float] = field(default_factory=list)
    create_rates: list[float] = field(default_factory=list)
    per_run_ms: list[float] = field(default_factory=list)
    cpu_s: dict[str, float] = field(default_factory=dict)
    runs: int = 0

    def add(self, batch: "RunBatch", cpu_s: dict[str, float]) -> None:
        self.rates.append(batch.runs_per_s)
        if batch.mirror_per_s is not None:
            self.mirror_rates.append(batch.mirror_per_s)
        self.create_rates.append(batch.creates_per_s)
        self.per_run_ms.extend(batch.create_to_pending)
        self.runs += len(batch.run_ids)
        for component, seconds in cpu_s.items():
            self.cpu_s[component] = self.cpu_s.get(component, 0.0) + seconds

    def cpu_ms_per_run(self) -> dict[str, float]:
        return {k: round(v * 1000 / self.runs, 2) for k, v in self.cpu_s.items()}


@scenario("engine", "Create Run to PENDING runs/s vs no-op task/s; Get/Update Run vs /ping")
def engine(ctx: Context) -> Outcome:
    sizes = QUICK if ctx.quick else FULL
    warnings: list[str] = []

    def settled(world: World, when: str) -> None:
        if not settle(world, timeout=sizes.phase_timeout):
            warnings.append(f"the worker was still busy {when}")

    with provision("engine", ctx) as world:
        token = _token(world)
        meter = world.cpu_meter()
        _warm_up(world, token, sizes)

        noop_rates: list[float] = []
        series = {name: Series() for name in VARIANTS}
        pending: list[str] = []
        for round_ in range(sizes.rounds):
            settled(world, "before a baseline round")
            noop_rates.append(_noop_throughput(world, sizes.noop_tasks, sizes.phase_timeout))
            # Alternate the variants' order, so a machine getting busier favours neither.
            order = list(VARIANTS.items())
            for name, (_label, webhooks) in order if round_ % 2 == 0 else order[::-1]:
                _webhooks_active(world, webhooks)
                settled(world, f"before an engine round ({name})")
                before = meter.sample()
                batch = _runs_throughput(world, token, sizes, mirror=webhooks)
                # CPU until the broker is quiet: all the work a Run caused, the loop's tail too.
                settled(world, f"{sizes.phase_timeout:.0f} s after an engine round ({name})")
                series[name].add(batch, CpuMeter.spent(before, meter.sample()))
                pending.extend(batch.run_ids)

        settled(world, "before the latency phase")
        latency = _latencies(world, token, pending, sizes)
        rss = world.rss()
        settled(world, "at teardown (resuming the updated Runs)")
        commands = world.commands()
        loop = _loop_counts(world)

    metrics = [
        Metric(
            "noop_per_s",
            "no-op Celery tasks/s (baseline)",
            median(noop_rates),
            "tasks/s",
            rounds=noop_rates,
        )
    ]
    for name, (label, _webhooks) in VARIANTS.items():
        metrics += _variant_metrics(name, label, series[name])
    for kind, label in (("ping", "GET /ping"), ("get", "Get Run"), ("update", "Update Run")):
        for q in (50, 95):
            metrics.append(
                Metric(
                    f"{kind}_p{q}_ms",
                    f"{label} p{q}",
                    percentile(latency[kind], q),
                    "ms",
                    baseline=None if kind == "ping" else f"ping_p{q}_ms",
                )
            )
    return Outcome(
        metrics=metrics,
        config={
            "sizes": asdict(sizes),
            "template": f"{TEMPLATE} v{VERSION}",
            "input": RUN_INPUT,
            "worker_pool": world.config.pool,
            "worker_concurrency": world.config.worker_concurrency,
            "web": f"{world.config.web_workers} workers x {world.config.web_threads} threads",
            "commands": commands,
        },
        details={
            "cpu_ms_per_run": {name: s.cpu_ms_per_run() for name, s in series.items()},
            "rss_mb": rss,
            "latency_p99_ms": {k: round(percentile(v, 99), 2) for k, v in latency.items()},
            "webhook_loop": loop,
            "warnings": warnings,
        },
    )


def _variant_metrics(name: str, label: str, runs: Series) -> list[Metric]:
    suffix = "" if name == "alone" else f"_{name}"
    metrics = [
        Metric(
            f"runs_per_s{suffix}",
            f"Create Run -> PENDING, {label}",
            median(runs.rates),
            "runs/s",
            baseline="noop_per_s",
            rounds=runs.rates,
        )
    ]
    if runs.mirror_rates:
        metrics.append(
            Metric(
                "mirror_per_s",
                "Create Run -> PENDING in Flowdesk's mirror",
                median(runs.mirror_rates),
                "runs/s",
                baseline="noop_per_s",
                rounds=runs.mirror_rates,
            )
        )
    return [
        *metrics,
        Metric(
            f"creates_per_s{suffix}",
            f"  Create Run answers, {label}",
            median(runs.create_rates),
            "runs/s",
            rounds=runs.create_rates,
        ),
        Metric(
            f"run_p50_ms{suffix}",
            f"  one Run to PENDING p50, {label}",
            percentile(runs.per_run_ms, 50),
            "ms",
        ),
        Metric(
            f"run_p95_ms{suffix}",
            f"  one Run to PENDING p95, {label}",
            percentile(runs.per_run_ms, 95),
            "ms",
        ),
    ]


# --- Phases ----------------------------------------------------------------------------------


def _token(world: World) -> str:
    response = httpx.post(
        f"{world.base_url}/flows-api/oauth/token",
        json={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET},
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def _warm_up(world: World, token: str, sizes: Sizes) -> None:
    """Import, connect and cache everything once, so the first round does not pay for it."""
    with httpx.Client(base_url=world.base_url, timeout=30) as http:
        for _ in range(20):
            http.get("/ping").raise_for_status()
    warm = Sizes(
        rounds=1,
        runs=2 * sizes.clients,
        noop_tasks=20,
        clients=sizes.clients,
        requests=0,
        phase_timeout=sizes.phase_timeout,
    )
    _noop_throughput(world, warm.noop_tasks, warm.phase_timeout)
    _runs_throughput(world, token, warm, mirror=True)


def _webhooks_active(world: World, active: bool) -> None:
    """Switch the engine's webhook endpoints (registered by ``load_demo``) on or off; the
    engine reads ``active`` at every transition."""
    with world.db() as conn:
        conn.execute("UPDATE flows_engine_webhookendpoint SET active = %s", (active,))


def _noop_throughput(world: World, count: int, timeout: float) -> float:
    key = f"bench:noop:{uuid.uuid4().hex}"
    started = time.monotonic()
    world.send_task("bench.tasks.noop", key, count=count)
    done = wait_until(
        lambda: int(world.redis.get(key) or 0) >= count,
        timeout=timeout,
        what=f"{count} no-op tasks",
        interval=0.01,
        alive=world.check_alive,
    )
    return count / (done - started)


@dataclass
class RunBatch:
    run_ids: list[str]
    runs_per_s: float
    mirror_per_s: float | None  # until Flowdesk's mirror shows every Run PENDING too
    creates_per_s: float
    create_to_pending: list[float]  # ms, per Run, by the engine's own timestamps


def _runs_throughput(world: World, token: str, sizes: Sizes, *, mirror: bool) -> RunBatch:
    deadline = time.monotonic() + sizes.phase_timeout
    shares = [
        sizes.runs // sizes.clients + (i < sizes.runs % sizes.clients) for i in range(sizes.clients)
    ]

    def create(count: int) -> list[str]:
        ids = []
        with httpx.Client(base_url=world.base_url, timeout=30, headers=_auth(token)) as http:
            for _ in range(count):
                if time.monotonic() > deadline:
                    raise BenchError("Create Run took longer than the phase timeout")
                response = http.post(
                    f"/flows-api/v1/flows/{TEMPLATE}/runs",
                    json={"version": VERSION, "inputData": RUN_INPUT},
                )
                if response.status_code != 201:
                    raise BenchError(f"Create Run answered {response.status_code}: {response.text}")
                ids.append(response.json()["flowRunId"])
        return ids

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=sizes.clients) as pool:
        run_ids = list(itertools.chain.from_iterable(pool.map(create, shares)))
    created = time.monotonic()

    with world.db() as conn:

        def all_pending() -> bool:
            rows = conn.execute(
                "SELECT status, state_id, count(*) FROM flows_engine_run"
                " WHERE id = ANY(%s::uuid[]) GROUP BY status, state_id",
                (run_ids,),
            ).fetchall()
            for status, state_id, _count in rows:
                if status in ("COMPLETE", "ERROR") or (
                    status == "PENDING" and state_id != PAUSE_STATE
                ):
                    raise BenchError(f"a Run went {status} at {state_id!r}, not {PAUSE_STATE}")
            return sum(c for s, _, c in rows if s == "PENDING") == len(run_ids)

        done = wait_until(
            all_pending,
            timeout=max(1.0, deadline - time.monotonic()),
            what=f"{len(run_ids)} Runs to reach PENDING",
            alive=world.check_alive,
        )
        mirrored = None
        if mirror:

            def all_mirrored() -> bool:
                row = conn.execute(
                    "SELECT count(*) FROM flows_integration_flowrun"
                    " WHERE flow_run_id = ANY(%s::uuid[]) AND status = 'PENDING'",
                    (run_ids,),
                ).fetchone()
                return row is not None and row[0] == len(run_ids)

            mirrored = wait_until(
                all_mirrored,
                timeout=max(1.0, deadline - time.monotonic()),
                what=f"Flowdesk's mirror to show {len(run_ids)} Runs PENDING",
                alive=world.check_alive,
            )
        per_run = [
            float(ms)
            for (ms,) in conn.execute(
                "SELECT extract(epoch FROM updated_at - created_at) * 1000 FROM flows_engine_run"
                " WHERE id = ANY(%s::uuid[])",
                (run_ids,),
            )
        ]
    return RunBatch(
        run_ids=run_ids,
        runs_per_s=len(run_ids) / (done - started),
        mirror_per_s=None if mirrored is None else len(run_ids) / (mirrored - started),
        creates_per_s=len(run_ids) / (created - started),
        create_to_pending=per_run,
    )


def _latencies(
    world: World, token: str, pending: list[str], sizes: Sizes
) -> dict[str, list[float]]:
    if len(pending) < sizes.requests:
        raise BenchError(f"only {len(pending)} PENDING Runs for {sizes.requests} Update Runs")
    deadline = time.monotonic() + sizes.phase_timeout
    samples: dict[str, list[float]] = {"ping": [], "get": [], "update": []}
    with httpx.Client(base_url=world.base_url, timeout=30, headers=_auth(token)) as http:

        def request(kind: str, i: int) -> httpx.Response:
            if kind == "ping":
                return http.get("/ping")
            if kind == "get":
                return http.get(f"/flows-api/v1/flow-runs/{pending[-1 - i]}")
            return http.put(f"/flows-api/v1/flow-runs/{pending[i]}", json={"input": UPDATE_INPUT})

        kinds = list(samples)
        for i in range(sizes.requests):
            if time.monotonic() > deadline:
                raise BenchError("the latency phase took longer than the phase timeout")
            # Rotate the order so no kind always follows an Update Run's background work.
            for kind in kinds[i % 3 :] + kinds[: i % 3]:
                began = time.perf_counter()
                response = request(kind, i)
                elapsed = (time.perf_counter() - began) * 1000
                if response.status_code != 200:
                    raise BenchError(f"{kind} answered {response.status_code}: {response.text}")
                samples[kind].append(elapsed)
    return samples


def _loop_counts(world: World) -> dict[str, object]:
    """Evidence that the webhook loop really ran: the engine's messages by status, and how
    many Runs Flowdesk's mirror holds."""
    with world.db() as conn:
        messages: dict[str, int] = dict(
            conn.execute(
                "SELECT status, count(*) FROM flows_engine_webhookmessage GROUP BY status"
            ).fetchall()
        )
        mirrored: int | str
        try:
            row = conn.execute("SELECT count(*) FROM flows_integration_flowrun").fetchone()
            mirrored = row[0] if row else 0
        except psycopg.Error as exc:  # the mirror's table is another app's to rename
            mirrored = f"unknown ({type(exc).__name__})"
    return {"webhook_messages": messages, "mirrored_runs": mirrored}


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
