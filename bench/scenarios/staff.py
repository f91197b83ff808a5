"""``staff``: 50 staff working the queue for 5 minutes (issue 13's proof under load).

The stack: Flowdesk's gunicorn (3 workers x 4 threads), two Celery workers (separate
processes), PostgreSQL and Redis; the Flows engine as a server of its own on 127.0.0.1
(``bench/stack.py``: its own gunicorn, worker and database). Runs are created on the engine
(``coverage-check`` v1, lastName ``Notfound``: Discovery finds nothing and the Run pauses at
``collect-member-id``); the engine's webhooks reach Flowdesk's receiver, which opens the items.
A top-up thread keeps at least ``3 x staff`` Runs paused on the engine during the run.

Each simulated person is a real account (a reviewer in the Clinical team, so the Eligibility
queue is theirs) and works as ``bench/staff_locustfile.py`` says: sign in, queue page, get
next, the item page, two autosaves, submit, with think times; one more locust user asks
``GET /ping`` once a second, the baseline under the same load.

Afterwards, once the outbox is empty: every submission Flowdesk accepted is looked up in the
ENGINE's own records: the Run's stored input at ``collect-member-id`` (each member ID is
unique) and the engine's access log of Update Run calls. Lost: accepted but not applied;
duplicated: applied more than once (more than one accepted PUT, or more than one transition
out of the pause in the engine's webhook log).
"""

import json
import os
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import psycopg

from bench.measure import BenchError, percentile, wait_until
from bench.registry import Context, Metric, Outcome, scenario
from bench.stack import (
    Engine,
    bench_urls,
    engine_client,
    engine_database,
    engine_env,
    engine_start,
    free_port,
    start_more_workers,
    update_runs_logged,
)
from bench.world import BASE_DIR, PYTHON, World, WorldConfig, bench_broker_url, provision, tail

DATABASE_URL = "postgres://postgres@127.0.0.1:5432/flowdesk_bench_staff"
ENGINE_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/flowdesk_bench_staff_engine"
WEBHOOK_SECRET = "whsec_Zmxvd2Rlc2stYmVuY2gtc3RhZmYtc2VjcmV0"
PASSWORD = "flowdesk-demo"  # the demo logins' password (reviewqueue/demo.py)
TEMPLATE, STATE = "coverage-check", "collect-member-id"
PAUSING_RUN = {
    "version": 1,
    "inputData": {
        "patient": {"firstName": "Bench", "lastName": "Notfound", "dateOfBirth": "1980-01-01"},
        "payerId": "60054",
    },
}
PAGES = ("queue", "get_next", "item", "autosave", "submit", "sign_in")


@dataclass(frozen=True)
class Sizes:
    staff: int
    seconds: float  # locust's run time, spawning and warm-up included
    spawn_rate: float  # users started per second (each signs in: a password hash)
    warmup_s: float  # after the last user started, before samples count
    think_s: tuple[float, float]
    runs_per_staff: int  # paused Runs created before the start, per person
    drain_timeout: float


FULL = Sizes(staff=50, seconds=300, spawn_rate=2, warmup_s=10, think_s=(1.0, 3.0),
             runs_per_staff=4, drain_timeout=300)  # fmt: skip
QUICK = Sizes(staff=10, seconds=45, spawn_rate=5, warmup_s=5, think_s=(1.0, 3.0),
              runs_per_staff=4, drain_timeout=120)  # fmt: skip


@scenario("staff", "50 staff for 5 min (locust): zero errors, exactly-once on the engine, p95s")
def staff(ctx: Context) -> Outcome:
    sizes = QUICK if ctx.quick else FULL
    database_url = os.environ.get("BENCH_STAFF_DATABASE_URL") or DATABASE_URL
    engine_url = os.environ.get("BENCH_STAFF_ENGINE_DATABASE_URL") or ENGINE_DATABASE_URL
    broker_url = bench_broker_url()
    port = free_port()
    engine = Engine(base_url=f"http://127.0.0.1:{port}/flows-api", database_url=engine_url,
                    env={})  # fmt: skip
    config = WorldConfig(
        web_workers=3,
        web_threads=4,
        pool=ctx.pool,
        env={
            "FLOWS_ENGINE_ENABLED": "false",
            "FLOWS_API_URL": engine.base_url,
            "FLOWS_WEBHOOK_SECRET": WEBHOOK_SECRET,
            # Staff think 1-3 s between requests and their connections stay open, as a
            # browser's (or a load balancer's) do; gunicorn's 2 s keep-alive closed them under
            # the next request ("connection reset", 54 in the first run).
            "GUNICORN_CMD_ARGS": "--keep-alive 75",
        },
    )
    details: dict[str, Any] = {"loadavg": {}, "warnings": []}
    with bench_urls(database_url, broker_url), provision("staff", ctx, config) as world:
        engine.env = engine_env(world.env, database_url=engine_url, var_dir=world.log_dir / "ev")
        with engine_database(engine_url, engine.env, world.log_dir):
            engine_start(world, engine, port, webhook_secret=WEBHOOK_SECRET)
            world.manage("load_templates")
            users = _users_create(world, sizes.staff)
            start_more_workers(world, 2)
            details["loadavg"]["setup"] = os.getloadavg()
            began = time.monotonic()
            _runs_create(engine, sizes.staff * sizes.runs_per_staff)
            wait_until(
                lambda: _open_items(world) >= sizes.staff * sizes.runs_per_staff,
                timeout=300, what="the first items", interval=0.5, alive=world.check_alive,
            )  # fmt: skip
            details["initial_runs_to_items_s"] = round(time.monotonic() - began, 1)
            details["loadavg"]["start"] = os.getloadavg()
            stop = threading.Event()
            topped = _top_up(engine, world, sizes, stop)
            try:
                found = _locust(world, users, sizes)
            finally:
                stop.set()
                topped["thread"].join(30)
            details["loadavg"]["end"] = os.getloadavg()
            details["runs_topped_up"] = topped["created"]
            drained = _drain(world, sizes.drain_timeout)
            check = _exactly_once(world, engine_url, found["accepted"])
            details["rss_mb"] = world.rss()
            # gunicorn's own word on dropped connections (the world's logs go with it).
            details["web_log"] = {
                name: {
                    marker: world.processes[name].log.read_text(errors="replace").count(marker)
                    for marker in ("WORKER TIMEOUT", "Traceback", "ERROR")
                }
                for name in ("web", "engine-web")
            }
            details["commands"] = world.commands()
    return _outcome(sizes, found, check, drained, details)


def _users_create(world: World, count: int) -> list[str]:
    """``count`` reviewers like the demo's bob (Clinical team), with the demo password."""
    names = [f"staff{n:02d}" for n in range(1, count + 1)]
    code = (
        "from django.contrib.auth import get_user_model\n"
        "from django.contrib.auth.hashers import make_password\n"
        "from django.contrib.auth.models import Group\n"
        "from reviewqueue import roles\n"
        f"names = {names!r}\n"
        f"hashed = make_password({PASSWORD!r})  # one hash: 50 would take a minute of CPU\n"
        "groups = [Group.objects.get(name=roles.REVIEWER),\n"
        "          Group.objects.get(name='Clinical team')]\n"
        "User = get_user_model()\n"
        "for n, name in enumerate(names, 1):\n"
        "    user = User.objects.create(\n"
        "        username=name, first_name=f'Staff {n}', last_name='Bench',\n"
        "        email=f'{name}@flowdesk.example', password=hashed)\n"
        "    user.groups.add(*groups)\n"
    )  # fmt: skip
    world.manage("shell", "-c", code)
    return names


def _runs_create(engine: Engine, count: int) -> list[str]:
    api = engine_client(engine)

    def create(_: int) -> str:
        created = api.post(f"/v1/flows/{TEMPLATE}/runs", json=PAUSING_RUN)
        if created.status_code != 201:
            raise BenchError(f"Create Run answered {created.status_code}: {created.text}")
        return str(created.json()["flowRunId"])

    try:
        with ThreadPoolExecutor(4) as pool:
            return list(pool.map(create, range(count)))
    finally:
        api.close()


def _open_items(world: World) -> int:
    with world.db() as conn:
        row = conn.execute(
            "SELECT count(*) FROM reviewqueue_reviewitem WHERE status = 'open'"
        ).fetchone()
    return int(row[0]) if row else 0


def _top_up(engine: Engine, world: World, sizes: Sizes, stop: threading.Event) -> dict[str, Any]:
    """Keep at least ``3 x staff`` Runs paused at the callback on the engine (checked every 2 s)."""
    state: dict[str, Any] = {"created": 0, "errors": []}
    floor = sizes.staff * 3

    def loop() -> None:
        with psycopg.connect(engine.database_url, autocommit=True) as conn:
            while not stop.wait(2.0):
                row = conn.execute(
                    "SELECT count(*) FROM flows_engine_run WHERE status = 'PENDING'"
                    " AND state_id = %s",
                    (STATE,),
                ).fetchone()
                missing = floor - (int(row[0]) if row else 0)
                if missing > 0:
                    try:
                        state["created"] += len(_runs_create(engine, min(missing, sizes.staff)))
                    except Exception as exc:  # reported, not fatal: the figures say enough
                        state["errors"].append(repr(exc)[:300])

    state["thread"] = threading.Thread(target=loop, daemon=True)
    state["thread"].start()
    return state


def _locust(world: World, users: list[str], sizes: Sizes) -> dict[str, Any]:
    scratch = world.log_dir / "locust"
    scratch.mkdir(parents=True, exist_ok=True)
    out = scratch / "samples.json"
    assert world.base_url.startswith("http://127.0.0.1:"), "load stays on loopback"
    plan = {
        "host": world.base_url,
        "users": users,
        "password": PASSWORD,
        "think_min_s": sizes.think_s[0],
        "think_max_s": sizes.think_s[1],
        "warmup_s": sizes.warmup_s,
        "ping_every_s": 1.0,
        "out": str(out),
    }
    (scratch / "plan.json").write_text(json.dumps(plan))
    command = [
        PYTHON, "-m", "locust", "-f", str(BASE_DIR / "bench" / "staff_locustfile.py"),
        "--headless", "--users", str(sizes.staff + 1), "--spawn-rate", str(sizes.spawn_rate),
        "--run-time", f"{int(sizes.seconds)}s", "--stop-timeout", "30", "--only-summary",
        "--loglevel", "WARNING", "--host", world.base_url,
    ]  # fmt: skip
    env = {**os.environ, "FLOWDESK_STAFF_PLAN": str(scratch / "plan.json")}
    with (scratch / "locust.log").open("wb") as log:
        code = subprocess.run(
            command, cwd=BASE_DIR, env=env, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, timeout=sizes.seconds + 180,
        ).returncode  # fmt: skip
    world.check_alive()
    if not out.exists():
        raise BenchError(f"locust wrote no samples (exit {code}):\n{tail(scratch / 'locust.log')}")
    found: dict[str, Any] = json.loads(out.read_text())
    found["exit_code"] = code
    found["command"] = " ".join(command)
    return found


def _drain(world: World, timeout: float) -> dict[str, Any]:
    """Wait (bounded) until no submission waits in the outbox."""
    began = time.monotonic()

    def empty() -> bool:
        with world.db() as conn:
            row = conn.execute(
                "SELECT count(*) FROM reviewqueue_submission WHERE status = 'pending'"
            ).fetchone()
        return row is not None and row[0] == 0

    try:
        wait_until(empty, timeout=timeout, what="the outbox to empty", interval=0.5,
                   alive=world.check_alive)  # fmt: skip
        ok = True
    except BenchError:
        ok = False
    with world.db() as conn:
        by_status: dict[str, int] = dict(
            conn.execute(
                "SELECT status, count(*) FROM reviewqueue_submission GROUP BY status"
            ).fetchall()
        )
    return {"drained": ok, "seconds": round(time.monotonic() - began, 1), "by_status": by_status}


def _exactly_once(world: World, engine_url: str, accepted: list[dict[str, Any]]) -> dict[str, Any]:
    """Compare what Flowdesk accepted with what the engine applied, by Run and member ID."""
    with world.db() as conn:
        rows = conn.execute(
            "SELECT i.run_ref, s.input ->> 'memberId', s.status, i.id"
            " FROM reviewqueue_submission s JOIN reviewqueue_reviewitem i ON i.id = s.item_id"
        ).fetchall()
    flowdesk = {str(run): member for run, member, _, _ in rows}
    by_item = {int(item): str(member) for _, member, _, item in rows}
    with psycopg.connect(engine_url, autocommit=True) as conn:
        applied: dict[str, str] = dict(
            conn.execute(
                "SELECT id::text, state_outputs -> %s ->> 'memberId' FROM flows_engine_run"
                " WHERE state_outputs ? %s",
                (STATE, STATE),
            ).fetchall()
        )
        transitions: dict[str, int] = dict(
            conn.execute(
                "SELECT run_id::text, count(*) FROM flows_engine_webhookmessage"
                " WHERE payload ->> 'status' = 'IN_PROGRESS' AND payload ->> 'stateId' = %s"
                " GROUP BY run_id",
                (STATE,),
            ).fetchall()
        )
    puts = update_runs_logged(world)
    # Every answer locust saw accepted has a submission row with the same member ID.
    unrecorded = [a for a in accepted if by_item.get(a["item"]) != a["memberId"]]
    lost = sorted(run for run, member in flowdesk.items() if applied.get(run) != member)
    unexplained = sorted(run for run in applied if run not in flowdesk)
    duplicated = sorted(
        run
        for run in flowdesk
        if sum(1 for code in puts.get(run, []) if code == 200) > 1 or transitions.get(run, 0) > 1
    )
    return {
        "accepted_by_locust": len(accepted),
        "submissions_in_flowdesk": len(flowdesk),
        "applied_on_engine": sum(1 for run in flowdesk if applied.get(run) == flowdesk[run]),
        "unrecorded": unrecorded[:20],
        "unrecorded_count": len(unrecorded),
        "lost": lost[:20],
        "lost_count": len(lost),
        "duplicated": duplicated[:20],
        "duplicated_count": len(duplicated),
        "applied_without_submission": unexplained[:20],
        "applied_without_submission_count": len(unexplained),
        "update_run_calls": sum(len(v) for v in puts.values()),
        "update_run_refused": sum(1 for v in puts.values() for code in v if code != 200),
    }


def _outcome(
    sizes: Sizes,
    found: dict[str, Any],
    check: dict[str, Any],
    drained: dict[str, Any],
    details: dict[str, Any],
) -> Outcome:
    samples = found["samples_ms"]
    if not samples.get("ping"):
        raise BenchError("no /ping samples")
    failed = sum(found["failures"].values())
    http_errors = sum(
        n for codes in found["statuses"].values() for code, n in codes.items()
        if code == "0" or int(code) >= 400
    )  # fmt: skip
    metrics = [
        Metric("errors", "HTTP errors (status >= 400 or no answer), whole run", http_errors,
               "requests"),
        Metric("failed_requests", "failed locust requests (wrong status or page), whole run",
               failed, "requests"),
        Metric("submissions", "submissions accepted by Flowdesk", check["submissions_in_flowdesk"],
               "answers"),
        Metric("applied", "applied on the engine (its own records)", check["applied_on_engine"],
               "answers", baseline="submissions"),
        Metric("lost", "lost (accepted, not applied on the engine)", check["lost_count"],
               "answers"),
        Metric("duplicated", "duplicated (applied more than once on the engine)",
               check["duplicated_count"], "answers"),
    ]  # fmt: skip
    for q in (50, 95):
        metrics.append(Metric(f"ping_p{q}_ms", f"GET /ping p{q} under the same load (baseline)",
                              percentile(samples["ping"], q), "ms"))  # fmt: skip
    for page in PAGES:
        if not samples.get(page):
            continue
        for q in (50, 95):
            metrics.append(
                Metric(
                    f"{page}_p{q}_ms",
                    f"{page} p{q}",
                    percentile(samples[page], q),
                    "ms",
                    baseline=f"ping_p{q}_ms",
                )  # fmt: skip
            )
    window = found["window_s"] or 1.0
    return Outcome(
        metrics=metrics,
        config={
            "sizes": asdict(sizes),
            "template": f"{TEMPLATE} v1, paused at {STATE}",
            "locust": found["command"],
            "web": "gunicorn 3 workers x 4 threads; 2 Celery workers; engine: own gunicorn "
            "(1 x 8 threads), own worker, own database",
        },
        details={
            **details,
            "check": check,
            "outbox": drained,
            "statuses": found["statuses"],
            "first_failure": found["first_failure"],
            "counts": found["counts"],
            "samples": {k: len(v) for k, v in samples.items()},
            "window_s": round(window, 1),
            "submissions_per_s": round(len(samples.get("submit", [])) / window, 2),
            "requests_per_s": round(sum(len(v) for v in samples.values()) / window, 1),
            "locust_exit_code": found["exit_code"],
            "p99_ms": {k: round(percentile(v, 99), 1) for k, v in samples.items() if v},
        },
    )
