"""``python -m bench.drills``: issue 13's fault drills, each in a private world of its own.

Every drill builds a fresh world on PRIVATE services started by this command (never the
machine's shared PostgreSQL on 5432 or Redis on 6379):

- Flowdesk: its own PostgreSQL cluster (port 5491) and Redis (port 6391); gunicorn, a Celery
  worker and Celery beat (``FLOWS_SYNC_SECONDS=15``: reconcile every 15 s instead of 60 s);
- the Flows engine as a server of its own, the way Sohar sits outside Flowdesk: its own
  PostgreSQL cluster (5492) and Redis (6392), gunicorn (its access log records every Update
  Run and its answer) and worker. So stopping "Redis" or restarting "PostgreSQL" hits
  Flowdesk's, not the engine's;
- two small reverse proxies in this process: Flowdesk -> engine API (``FLOWS_API_URL`` points
  at it; it can answer 503, or hold Update Run's answer), and engine -> Flowdesk's webhook
  receiver (it can swallow webhooks: answer 204 and drop them, so the engine counts them
  delivered and never retries: truly lost).

Each drill creates Runs of ``coverage-check`` v1 on the engine that pause at
``collect-member-id``, waits for Flowdesk's items, and answers them as bob would in a browser
(``GET /accounts/login/``, ``POST /accounts/login/`` with the CSRF token, then per item
``POST /items/<pk>/claim/`` and ``POST /items/<pk>/submit/`` with ``HX-Request`` and
``X-CSRFToken``), each with its own member ID. The fault is injected, ended, and the drill
waits (bounded, polling) until every answer is settled. The verdict comes from the ENGINE's
records: the member ID the Run stored at ``collect-member-id``, the count of transitions out of
that pause in its webhook log, and its access log of ``PUT /v1/flow-runs/<id>``. A person whose
submit failed (web killed, database down) tries again, as a person would.

``--short`` scales every outage to 10 s; the default uses the issue's durations.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import report
from bench.measure import BenchError, wait_until
from bench.registry import Context
from bench.stack import (
    Engine,
    bench_urls,
    engine_client,
    engine_database,
    engine_env,
    engine_start,
    free_port,
    spawn,
)
from bench.world import (
    PYTHON,
    World,
    WorldConfig,
    provision,
    start_web,
    start_worker,
    stop_group,
)

FLOWDESK_PG_PORT, ENGINE_PG_PORT = 5491, 5492
FLOWDESK_REDIS_PORT, ENGINE_REDIS_PORT = 6391, 6392
DATABASE_URL = f"postgres://postgres@127.0.0.1:{FLOWDESK_PG_PORT}/flowdesk_bench_drill"
ENGINE_DATABASE_URL = f"postgres://postgres@127.0.0.1:{ENGINE_PG_PORT}/flowdesk_bench_drill_engine"
BROKER_URL = f"redis://127.0.0.1:{FLOWDESK_REDIS_PORT}/1"
ENGINE_BROKER_URL = f"redis://127.0.0.1:{ENGINE_REDIS_PORT}/1"
WEBHOOK_SECRET = "whsec_Zmxvd2Rlc2stYmVuY2gtZHJpbGxzLXNlY3JldA=="
SYNC_SECONDS = "15"
USER, PASSWORD = "bob", "flowdesk-demo"
TEMPLATE, STATE = "coverage-check", "collect-member-id"
PAUSING_RUN = {
    "version": 1,
    "inputData": {
        "patient": {"firstName": "Drill", "lastName": "Notfound", "dateOfBirth": "1980-01-01"},
        "payerId": "60054",
    },
}
RESULTS_DIR = Path(__file__).resolve().parent / "results"


# --- Private services ------------------------------------------------------------------------


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on 127.0.0.1:``port`` (initdb as the postgres user)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.dir = Path(tempfile.mkdtemp(prefix=f"flowdesk-drill-pg{port}-"))
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
        if not bins:
            raise BenchError("no /usr/lib/postgresql/*/bin/pg_ctl: install PostgreSQL 15+")
        self.bin = bins[-1].parent
        self.data = self.dir / "data"
        self.log = self.dir / "postgres.log"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        conf = self.data / "postgresql.conf"
        with conf.open("a") as out:
            # A drill measures recovery, not durability on a loaded disk.
            out.write("fsync = off\nsynchronous_commit = off\nmax_connections = 200\n")

    def _run(self, *command: str, timeout: float = 120) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, *command], capture_output=True, timeout=timeout, cwd=self.dir
        )
        if done.returncode != 0:
            raise BenchError(f"{' '.join(command)} failed: {done.stderr.decode()[-800:]}")

    def start(self) -> None:
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w",
            "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start",
        )  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def close(self) -> None:
        with contextlib.suppress(BenchError, subprocess.TimeoutExpired):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """``redis-server --port P --save '' --appendonly no`` as a subprocess: stopped, it forgets
    everything queued, as a broker whose machine restarted would."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.popen = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        import redis

        def up() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
            except redis.RedisError:
                return False

        wait_until(up, timeout=30, what=f"redis-server on {self.port}", interval=0.1)

    def stop(self) -> None:
        if self.popen is not None:
            stop_group(self.popen, timeout=10)
            self.popen = None


# --- The faulty proxies ----------------------------------------------------------------------


class Proxy:
    """A reverse proxy on 127.0.0.1 in a thread of this process. ``mode``:

    - ``pass``: forward;
    - ``503``: answer 503 without forwarding (the engine answering 5xx);
    - ``drop``: answer 204 without forwarding (a webhook lost after its sender saw success);
    - ``hold``: forward a PUT, then hold its answer until ``release`` (a reply in flight).
    """

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.mode = "pass"
        self.held = 0
        self.counts: dict[str, int] = {}
        self.release = threading.Event()
        self.http = httpx.Client(timeout=150)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _handle(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                mode = proxy.mode
                key = f"{self.command} {mode}"
                proxy.counts[key] = proxy.counts.get(key, 0) + 1
                if mode == "503":
                    self._send(503, b'{"error": "api_error"}', {"Content-Type": "application/json"})
                    return
                if mode == "drop":
                    self._send(204, b"", {})
                    return
                headers = {
                    k: v for k, v in self.headers.items()
                    if k.lower() not in ("host", "content-length", "connection")
                }  # fmt: skip
                try:
                    answer = proxy.http.request(
                        self.command, proxy.target + self.path, content=body, headers=headers
                    )
                except httpx.HTTPError:
                    self._send(502, b'{"error": "bad_gateway"}', {})
                    return
                if mode == "hold" and self.command == "PUT":
                    proxy.held += 1
                    proxy.release.wait(60)
                    # The caller was killed meanwhile: its answer goes nowhere.
                self._send(
                    answer.status_code,
                    answer.content,
                    {"Content-Type": answer.headers.get("content-type", "application/json")},
                )

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                with contextlib.suppress(OSError):
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_DELETE = _handle  # noqa: N815

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.http.close()


# --- The world -------------------------------------------------------------------------------


@dataclass
class Services:
    flowdesk_pg: PrivatePostgres
    engine_pg: PrivatePostgres
    flowdesk_redis: PrivateRedis
    engine_redis: PrivateRedis


@dataclass
class Drill:
    world: World
    engine: Engine
    api: Proxy
    hooks: Proxy
    services: Services
    short: bool
    runs: list[str] = field(default_factory=list)
    answers: dict[str, str] = field(default_factory=dict)  # run id -> member id
    notes: list[str] = field(default_factory=list)
    timeline: dict[str, float] = field(default_factory=dict)
    began: float = field(default_factory=time.monotonic)

    def mark(self, what: str) -> None:
        self.timeline[what] = round(time.monotonic() - self.began, 1)
        print(f"   {self.timeline[what]:7.1f}s  {what}", flush=True)

    def flowdesk_db(self) -> psycopg.Connection:
        return psycopg.connect(DATABASE_URL, autocommit=True, connect_timeout=5)

    def engine_db(self) -> psycopg.Connection:
        return psycopg.connect(ENGINE_DATABASE_URL, autocommit=True, connect_timeout=5)


@contextlib.contextmanager
def drill_world(name: str, services: Services, *, short: bool, keep: bool) -> Iterator[Drill]:
    port = free_port()
    engine = Engine(base_url=f"http://127.0.0.1:{port}/flows-api", database_url="", env={})
    api = Proxy(f"http://127.0.0.1:{port}")
    hooks = Proxy("http://127.0.0.1:1")  # pointed at Flowdesk once it has a port
    config = WorldConfig(
        web_workers=2,
        web_threads=4,
        pool="threads",
        env={
            "FLOWS_ENGINE_ENABLED": "false",
            "FLOWS_API_URL": f"{api.url}/flows-api",
            "FLOWS_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "FLOWS_SYNC_SECONDS": SYNC_SECONDS,
        },
    )
    ctx = Context(quick=short, pool="threads", keep=keep)
    try:
        with bench_urls(DATABASE_URL, BROKER_URL), provision(f"drill-{name}", ctx, config) as world:
            hooks.target = f"{world.base_url}"
            engine.database_url = ENGINE_DATABASE_URL
            engine.env = {
                **engine_env(world.env, database_url=ENGINE_DATABASE_URL,
                             var_dir=world.log_dir / "engine-var"),
                "CELERY_BROKER_URL": ENGINE_BROKER_URL,
            }  # fmt: skip
            with engine_database(ENGINE_DATABASE_URL, engine.env, world.log_dir):
                engine_start(
                    world, engine, port, webhook_secret=WEBHOOK_SECRET,
                    hooks_url=f"{hooks.url}/flows/webhooks/",
                )  # fmt: skip
                spawn(world, "beat", _beat_command(world), world.env)
                world.manage("load_templates")
                yield Drill(world, engine, api, hooks, services, short)
    finally:
        api.close()
        hooks.close()


def _beat_command(world: World) -> list[str]:
    return [
        PYTHON, "-m", "celery", "-A", "config", "beat", "--loglevel=WARNING",
        "-s", str(world.log_dir / "celerybeat-schedule"),
    ]  # fmt: skip


# --- Staff, as a browser ---------------------------------------------------------------------


class Browser:
    """bob in a browser: one session, CSRF token from the cookie, htmx headers."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=60, follow_redirects=False)
        self.signed_in = False

    def sign_in(self) -> None:
        self.http.cookies.clear()
        self.http.get("/accounts/login/").raise_for_status()
        answer = self.http.post(
            "/accounts/login/",
            data={"username": USER, "password": PASSWORD},
            headers=self._csrf(f"{self.base_url}/accounts/login/"),
        )
        if answer.status_code != 302 or "sessionid" not in self.http.cookies:
            raise BenchError(f"sign-in answered {answer.status_code}: {answer.text[:200]}")
        self.signed_in = True

    def _csrf(self, referer: str) -> dict[str, str]:
        return {"X-CSRFToken": self.http.cookies.get("csrftoken") or "", "Referer": referer}

    def answer(self, pk: int, member_id: str) -> str:
        """Claim item ``pk`` and submit ``member_id``: "accepted", "already" (submitted
        before), or what went wrong."""
        if not self.signed_in:
            self.sign_in()
        htmx = {"HX-Request": "true", **self._csrf(f"{self.base_url}/items/{pk}/")}
        page = self.http.get(f"/items/{pk}/")
        if page.status_code != 200:
            return f"item page {page.status_code}"
        claimed = self.http.post(f"/items/{pk}/claim/", headers=htmx)
        if claimed.status_code not in (200, 409):
            return f"claim {claimed.status_code}"
        data = {"~form": "1", "~reading": f"drill:{time.time_ns()}", "memberId": member_id}
        sent = self.http.post(f"/items/{pk}/submit/", headers=htmx, data=data)
        if sent.status_code == 200 and 'id="item-panel"' in sent.text:
            return "accepted"
        if "already been submitted" in sent.text:
            return "already"
        return f"submit {sent.status_code}"

    def close(self) -> None:
        self.http.close()


def runs_create(drill: Drill, count: int) -> list[str]:
    """``count`` Runs created on the engine directly (another system's Runs), that pause."""
    api = engine_client(drill.engine)
    made = []
    try:
        for _ in range(count):
            created = api.post(f"/v1/flows/{TEMPLATE}/runs", json=PAUSING_RUN)
            if created.status_code != 201:
                raise BenchError(f"Create Run answered {created.status_code}: {created.text}")
            made.append(str(created.json()["flowRunId"]))
    finally:
        api.close()
    for run in made:
        drill.answers[run] = f"D{len(drill.answers):07d}"
    drill.runs.extend(made)
    return made


def runs_start_through_flowdesk(drill: Drill, count: int) -> list[str]:
    """``count`` Runs started by Flowdesk's own ``run_create`` service (as its "Start run" page
    does; called through ``manage.py shell``, the page needs a form generated per template):
    Flowdesk mirrors them at once, so reconcile can find their pauses without any webhook."""
    code = (
        "import json\n"
        "from flows_integration import services\n"
        f"ids = [str(services.run_create(template_id={TEMPLATE!r}, version=1,"
        f" input_data={PAUSING_RUN['inputData']!r}).flow_run_id) for _ in range({count})]\n"
        f"open({str(drill.world.log_dir / 'started.json')!r}, 'w').write(json.dumps(ids))\n"
    )
    drill.world.manage("shell", "-c", code)
    made = json.loads((drill.world.log_dir / "started.json").read_text())
    for run in made:
        drill.answers[run] = f"D{len(drill.answers):07d}"
    drill.runs.extend(made)
    return list(made)


def items_of(drill: Drill, runs: list[str]) -> dict[str, tuple[int, str]]:
    """The current item (pk, status) of each Run that has one."""
    with drill.flowdesk_db() as conn:
        rows = conn.execute(
            "SELECT run_ref, id, status FROM reviewqueue_reviewitem WHERE run_ref = ANY(%s)"
            " ORDER BY id",
            (runs,),
        ).fetchall()
    return {str(run): (int(pk), str(status)) for run, pk, status in rows}


def wait_items(drill: Drill, runs: list[str], timeout: float) -> None:
    def ready() -> bool:
        with contextlib.suppress(psycopg.Error):
            found = items_of(drill, runs)
            return all(run in found for run in runs)
        return False

    wait_until(ready, timeout=timeout, what=f"items for {len(runs)} Runs", interval=0.5,
               alive=drill.world.check_alive)  # fmt: skip


def answer_all(drill: Drill, runs: list[str], *, threads: int = 3) -> dict[str, str]:
    """Answer each Run's item over HTTP; returns what each submit got."""
    found = items_of(drill, runs)
    outcome: dict[str, str] = {}

    def work(chunk: list[str]) -> None:
        browser = Browser(drill.world.base_url)
        try:
            for run in chunk:
                if run not in found:
                    outcome[run] = "no item"
                    continue
                try:
                    outcome[run] = browser.answer(found[run][0], drill.answers[run])
                except (httpx.HTTPError, BenchError) as exc:
                    outcome[run] = f"{type(exc).__name__}"
                    browser.signed_in = False
        finally:
            browser.close()

    chunks = [runs[i::threads] for i in range(threads)]
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(work, [c for c in chunks if c]))
    return outcome


def answer_until_taken(drill: Drill, runs: list[str], *, timeout: float) -> dict[str, Any]:
    """Like a person after an error page: answer again every Run whose answer Flowdesk does not
    hold yet, until it holds all of them (bounded)."""
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        missing = [r for r in runs if r not in submissions(drill)]
        if not missing:
            return {"retries": tries}
        if time.monotonic() > deadline:
            return {"retries": tries, "never_taken": missing}
        tries += 1
        with contextlib.suppress(psycopg.Error):
            answer_all(drill, missing)
        time.sleep(2)


def submissions(drill: Drill) -> dict[str, tuple[str, str, str, bool]]:
    """Run id -> (member id, submission status, item status, maybe_sent), of drill Runs."""
    try:
        with drill.flowdesk_db() as conn:
            rows = conn.execute(
                "SELECT i.run_ref, s.input ->> 'memberId', s.status, i.status, s.maybe_sent"
                " FROM reviewqueue_submission s JOIN reviewqueue_reviewitem i ON i.id = s.item_id"
                " WHERE i.run_ref = ANY(%s) ORDER BY s.id",
                (drill.runs,),
            ).fetchall()
    except psycopg.Error:
        return {}
    return {str(r[0]): (str(r[1]), str(r[2]), str(r[3]), bool(r[4])) for r in rows}


# --- Settling and the verdict ----------------------------------------------------------------


def engine_runs(drill: Drill) -> dict[str, tuple[str, str, str | None]]:
    with drill.engine_db() as conn:
        rows = conn.execute(
            "SELECT id::text, status, state_id, state_outputs -> %s ->> 'memberId'"
            " FROM flows_engine_run WHERE id = ANY(%s::uuid[])",
            (STATE, drill.runs),
        ).fetchall()
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


def mirror(drill: Drill) -> dict[str, tuple[str, str]]:
    with drill.flowdesk_db() as conn:
        rows = conn.execute(
            "SELECT flow_run_id::text, status, state_id FROM flows_integration_flowrun"
            " WHERE flow_run_id = ANY(%s::uuid[])",
            (drill.runs,),
        ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def mismatches(drill: Drill) -> list[str]:
    engine, mirrored = engine_runs(drill), mirror(drill)
    found = []
    for run in drill.runs:
        status, state, _ = engine.get(run, ("missing", "", None))
        seen = mirrored.get(run)
        # Sohar-like comparison: status, and the state while PENDING (the only time it counts).
        if seen is None or seen[0] != status or (status == "PENDING" and seen[1] != state):
            found.append(f"{run[:8]}: engine {status}/{state}, Flowdesk {seen}")
    return found


def settled(drill: Drill) -> bool:
    try:
        held = submissions(drill)
        if len(held) < len(drill.runs) or any(s[1] == "pending" for s in held.values()):
            return False
        engine = engine_runs(drill)
        if any(v[0] not in ("COMPLETE", "ERROR") for v in engine.values()):
            return False
        return not mismatches(drill)
    except psycopg.Error:
        return False


def settle(drill: Drill, timeout: float) -> bool:
    try:
        wait_until(lambda: settled(drill), timeout=timeout, what="the drill to settle",
                   interval=1.0, alive=drill.world.check_alive)  # fmt: skip
    except BenchError as exc:
        drill.notes.append(str(exc))
        return False
    return True


def update_runs_logged(drill: Drill) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    path = drill.world.log_dir / "engine-access.log"
    for line in path.read_text().splitlines() if path.exists() else []:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "PUT" and "/v1/flow-runs/" in parts[1]:
            found.setdefault(parts[1].rsplit("/", 1)[1], []).append(int(parts[2]))
    return found


def verdict(drill: Drill) -> dict[str, Any]:
    """Exactly once, from the engine's own records; the mirror against the engine."""
    held = submissions(drill)
    engine = engine_runs(drill)
    with drill.engine_db() as conn:
        transitions: dict[str, int] = dict(
            conn.execute(
                "SELECT run_id::text, count(*) FROM flows_engine_webhookmessage"
                " WHERE payload ->> 'status' = 'IN_PROGRESS' AND payload ->> 'stateId' = %s"
                " AND run_id = ANY(%s::uuid[]) GROUP BY run_id",
                (STATE, drill.runs),
            ).fetchall()
        )
    puts = update_runs_logged(drill)
    applied = [r for r, s in held.items() if engine.get(r, ("", "", None))[2] == s[0]]
    lost = [r for r, s in held.items() if engine.get(r, ("", "", None))[2] != s[0]]
    unanswered = [r for r in drill.runs if r not in held]
    foreign = [r for r, v in engine.items() if v[2] is not None and r not in held]
    duplicated = [
        r for r in drill.runs
        if sum(1 for code in puts.get(r, []) if code == 200) > 1 or transitions.get(r, 0) > 1
    ]  # fmt: skip
    by_status: dict[str, int] = {}
    for _, status, _, _ in held.values():
        by_status[status] = by_status.get(status, 0) + 1
    items: dict[str, int] = {}
    for _, _, item_status, _ in held.values():
        items[item_status] = items.get(item_status, 0) + 1
    wrong = mismatches(drill)
    refused_puts = sum(1 for r in drill.runs for code in puts.get(r, []) if code != 200)
    ok = (
        not lost and not duplicated and not unanswered and not foreign and not wrong
        and by_status.get("delivered", 0) == len(drill.runs)
    )  # fmt: skip
    return {
        "pass": ok,
        "runs": len(drill.runs),
        "submissions": len(held),
        "delivered": by_status.get("delivered", 0),
        "applied_on_engine": len(applied),
        "lost": lost,
        "duplicated": duplicated,
        "unanswered": unanswered,
        "applied_without_submission": foreign,
        "mirror_mismatches": wrong,
        "submission_status": by_status,
        "item_status": items,
        "update_run_calls": sum(len(puts.get(r, [])) for r in drill.runs),
        "update_run_not_200": refused_puts,
        "engine_status": _count(v[0] for v in engine.values()),
    }


def _count(values: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for value in values:
        found[value] = found.get(value, 0) + 1
    return found


# --- The drills ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    runs: int  # paused Runs answered around the fault
    outage: float  # seconds the fault lasts (where it has a duration)
    settle: float  # bound on the wait after the fault


def _kill_group(drill: Drill, name: str, sig: int) -> None:
    os.killpg(drill.world.processes[name].popen.pid, sig)


def _prepare(drill: Drill, count: int) -> list[str]:
    runs = runs_create(drill, count)
    wait_items(drill, runs, timeout=240)
    drill.mark(f"{count} Runs paused, items open")
    return runs


def drill_worker_sigkill(drill: Drill, plan: Plan) -> None:
    runs = _prepare(drill, plan.runs)
    drill.api.mode = "hold"  # Update Run reaches the engine; its answer is held
    outcome = answer_all(drill, runs)
    drill.notes.append(f"submits: {_count(outcome.values())}")
    wait_until(lambda: drill.api.held >= 1, timeout=120, what="an Update Run in flight",
               interval=0.05, alive=drill.world.check_alive)  # fmt: skip
    _kill_group(drill, "worker", signal.SIGKILL)
    drill.mark(f"worker SIGKILLed with {drill.api.held} Update Run answer(s) held")
    drill.world.processes["worker"].popen.wait(10)
    del drill.world.processes["worker"]
    drill.api.mode = "pass"
    drill.api.release.set()
    drill.world.redis.delete("bench:ready")  # so start_worker waits for the fresh worker
    start_worker(drill.world)
    drill.mark("fresh worker started")


def drill_redis_stopped(drill: Drill, plan: Plan) -> None:
    runs = _prepare(drill, plan.runs)
    drill.services.flowdesk_redis.stop()
    drill.mark("Flowdesk's Redis stopped")
    outcome = answer_all(drill, runs)
    drill.notes.append(f"submits during the outage: {_count(outcome.values())}")
    more = runs_create(drill, 2)  # their webhooks arrive while the broker is down
    drill.mark("answers submitted and 2 more Runs created during the outage")
    _sleep_bounded(drill, plan.outage)
    drill.services.flowdesk_redis.start()
    drill.mark("Redis started again (empty)")
    wait_items(drill, more, timeout=plan.settle)
    drill.mark("items of the Runs created during the outage open")
    outcome = answer_all(drill, more)
    drill.notes.append(f"submits after the outage: {_count(outcome.values())}")


def drill_postgres_restart(drill: Drill, plan: Plan) -> None:
    runs = _prepare(drill, plan.runs)
    result: dict[str, str] = {}
    submitting = threading.Thread(target=lambda: result.update(answer_all(drill, runs)))
    submitting.start()
    wait_until(lambda: bool(submissions(drill)), timeout=60, what="the first submission",
               interval=0.02)  # fmt: skip
    drill.services.flowdesk_pg.stop("immediate")
    drill.mark("Flowdesk's PostgreSQL stopped (immediate) while submits are in flight")
    drill.services.flowdesk_pg.start()
    drill.mark("PostgreSQL started again")
    submitting.join(300)
    drill.notes.append(f"submits around the restart: {_count(result.values())}")
    drill.notes.append(f"answered again: {answer_until_taken(drill, runs, timeout=120)}")


def drill_engine_5xx(drill: Drill, plan: Plan) -> None:
    runs = _prepare(drill, plan.runs)
    drill.api.mode = "503"
    drill.mark("the engine's API answers 503")
    outcome = answer_all(drill, runs)
    drill.notes.append(f"submits during the outage: {_count(outcome.values())}")
    more = runs_create(drill, 2)  # webhooks arrive; Get Run answers 503
    _sleep_bounded(drill, plan.outage)
    drill.api.mode = "pass"
    drill.mark("the engine's API answers again")
    wait_items(drill, more, timeout=plan.settle)
    outcome = answer_all(drill, more)
    drill.notes.append(f"submits after the outage: {_count(outcome.values())}")


def drill_engine_sigstop(drill: Drill, plan: Plan) -> None:
    runs = _prepare(drill, plan.runs)
    for name in ("engine-web", "engine-worker"):
        _kill_group(drill, name, signal.SIGSTOP)
    drill.mark("engine web and worker SIGSTOPped")
    outcome = answer_all(drill, runs)
    drill.notes.append(f"submits while the engine hung: {_count(outcome.values())}")
    _sleep_bounded(drill, plan.outage)
    for name in ("engine-web", "engine-worker"):
        _kill_group(drill, name, signal.SIGCONT)
    drill.mark("engine SIGCONTed")


def drill_webhooks_lost(drill: Drill, plan: Plan) -> None:
    runs = _prepare(drill, plan.runs)
    drill.hooks.mode = "drop"
    ends = time.monotonic() + plan.outage
    drill.mark("every webhook answered 204 and dropped")
    outcome = answer_all(drill, runs)
    drill.notes.append(f"submits during the loss: {_count(outcome.values())}")
    started = runs_start_through_flowdesk(drill, 2)
    drill.mark("2 Runs started through Flowdesk's run_create during the loss")
    try:
        wait_items(drill, started, timeout=max(5.0, ends - time.monotonic()))
        drill.mark("their pauses found by reconcile (no webhook) and items open")
        drill.notes.append("reconcile opened the items during the loss: yes")
        outcome = answer_all(drill, started)
        drill.notes.append(f"their submits during the loss: {_count(outcome.values())}")
    except BenchError:
        drill.notes.append("reconcile opened the items during the loss: not within the outage")
    _sleep_bounded(drill, max(0.0, ends - time.monotonic()), marked=False)
    if not settled(drill):
        drill.notes.append("at the end of the loss, not yet settled: " + _state(drill))
    else:
        drill.notes.append("settled before webhooks came back (reconcile caught up)")
    drill.hooks.mode = "pass"
    drill.mark("webhooks delivered again")
    missing = [r for r in started if r not in submissions(drill)]
    if missing:
        wait_items(drill, missing, timeout=plan.settle)
        answer_all(drill, missing)


def drill_web_killed(drill: Drill, plan: Plan) -> None:
    runs = _prepare(drill, plan.runs)
    result: dict[str, str] = {}
    submitting = threading.Thread(target=lambda: result.update(answer_all(drill, runs)))
    submitting.start()
    wait_until(lambda: bool(submissions(drill)), timeout=60, what="the first submission",
               interval=0.01)  # fmt: skip
    _kill_group(drill, "web", signal.SIGKILL)
    drill.mark("gunicorn (arbiter and workers) SIGKILLed while submits are in flight")
    drill.world.processes["web"].popen.wait(10)
    del drill.world.processes["web"]
    submitting.join(300)
    drill.notes.append(f"submits around the kill: {_count(result.values())}")
    port = int(drill.world.base_url.rsplit(":", 1)[1])
    start_web(drill.world, port)
    drill.mark("gunicorn started again")
    drill.notes.append(f"answered again: {answer_until_taken(drill, runs, timeout=120)}")


def _sleep_bounded(drill: Drill, seconds: float, *, marked: bool = True) -> None:
    """The fault's duration: keep the world under watch while it lasts."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        drill.world.check_alive()
        time.sleep(min(1.0, max(0.0, end - time.monotonic())))
    if marked:
        drill.mark(f"{seconds:.0f} s of outage over")


def _state(drill: Drill) -> str:
    held = submissions(drill)
    return f"submissions {_count(s[1] for s in held.values())}; mirror off: {mismatches(drill)}"


DRILLS: dict[str, tuple[str, Callable[[Drill, Plan], None], float]] = {
    # name: (what, drill, the outage in seconds)
    "worker_sigkill": ("Celery worker SIGKILLed during delivery", drill_worker_sigkill, 0),
    "redis_stopped": ("Flowdesk's Redis stopped", drill_redis_stopped, 60),
    "postgres_restart": ("PostgreSQL restarted during a submit", drill_postgres_restart, 0),
    "engine_5xx": ("engine answering 503", drill_engine_5xx, 120),
    "engine_sigstop": ("engine hung (SIGSTOP)", drill_engine_sigstop, 120),
    "webhooks_lost": ("every webhook lost (reconcile catches up)", drill_webhooks_lost, 300),
    "web_killed": ("gunicorn SIGKILLed during a submit", drill_web_killed, 0),
}


def run_drill(name: str, services: Services, *, short: bool, keep: bool) -> dict[str, Any]:
    what, fn, outage = DRILLS[name]
    plan = Plan(
        runs=6,
        outage=min(outage, 10.0) if short else outage,
        # Back-off after 8 tries reaches minutes; reconcile every 15 s.
        settle=300.0 if short else 600.0,
    )
    print(f"-- {name}: {what} ({plan.outage:.0f} s)", flush=True)
    began = time.monotonic()
    result: dict[str, Any] = {"drill": name, "fault": what, "plan": asdict(plan)}
    try:
        with drill_world(name, services, short=short, keep=keep) as drill:
            drill.began = time.monotonic()
            fn(drill, plan)
            fault_over = time.monotonic()
            ok = settle(drill, plan.settle)
            result["settle_s"] = round(time.monotonic() - fault_over, 1)
            result["settled"] = ok
            result["check"] = verdict(drill)
            result["timeline_s"] = drill.timeline
            result["notes"] = drill.notes
            result["proxy_requests"] = drill.api.counts
            result["webhook_proxy_requests"] = drill.hooks.counts
            if not result["check"]["pass"]:
                result["logs"] = str(drill.world.log_dir)
    except Exception as exc:
        traceback.print_exc()
        result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        result["check"] = {"pass": False}
    result["duration_s"] = round(time.monotonic() - began, 1)
    return result


def table(results: list[dict[str, Any]]) -> str:
    head = (
        f"{'drill':17} {'fault s':>7} {'runs':>4} {'subm':>4} {'deliv':>5} {'applied':>7} "
        f"{'lost':>4} {'dup':>3} {'mirror≠':>7} {'PUTs':>4} {'settle s':>8} {'total s':>7}  result"
    )
    lines = [head, "-" * len(head)]
    for r in results:
        c = r.get("check", {})
        lines.append(
            f"{r['drill']:17} {r['plan']['outage']:7.0f} {c.get('runs', '-'):>4} "
            f"{c.get('submissions', '-'):>4} {c.get('delivered', '-'):>5} "
            f"{c.get('applied_on_engine', '-'):>7} {len(c.get('lost', [])):>4} "
            f"{len(c.get('duplicated', [])):>3} {len(c.get('mirror_mismatches', [])):>7} "
            f"{c.get('update_run_calls', '-'):>4} {r.get('settle_s', '-'):>8} "
            f"{r['duration_s']:7.0f}  {'PASS' if c.get('pass') else 'FAIL'}"
        )
    return "\n".join(lines)


@contextlib.contextmanager
def private_services() -> Iterator[Services]:
    pgs: list[PrivatePostgres] = []
    redises: list[PrivateRedis] = []
    try:
        for port in (FLOWDESK_PG_PORT, ENGINE_PG_PORT):
            pg = PrivatePostgres(port)
            pgs.append(pg)
            pg.start()
        for port in (FLOWDESK_REDIS_PORT, ENGINE_REDIS_PORT):
            r = PrivateRedis(port)
            redises.append(r)
            r.start()
        yield Services(pgs[0], pgs[1], redises[0], redises[1])
    finally:
        for r in redises:
            r.stop()
        for pg in pgs:
            pg.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.drills", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--only", choices=list(DRILLS), action="append",
                        help="run this drill (repeatable); default: all, in order")  # fmt: skip
    parser.add_argument("--short", action="store_true",
                        help="outages of 10 s instead of the issue's 60/120/300 s")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep logs and databases")
    args = parser.parse_args(argv)
    chosen = args.only or list(DRILLS)
    started = datetime.now(UTC)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"drills-{report.utc_stamp(started)}{'-short' if args.short else ''}.json"
    results: list[dict[str, Any]] = []
    with private_services() as services:
        for name in chosen:
            results.append(run_drill(name, services, short=args.short, keep=args.keep))
            print(table(results[-1:]).splitlines()[-1], flush=True)
            # Written after every drill: a long run stopped halfway keeps what it found.
            _write(path, argv, started, results)
    print()
    print(table(results))
    print(f"   written to {path}")
    return 0 if all(r.get("check", {}).get("pass") for r in results) else 1


def _write(path: Path, argv: list[str] | None, started: datetime, results: list[Any]) -> None:
    path.write_text(
        json.dumps(
            {
                "command": " ".join(["python -m bench.drills", *(argv or sys.argv[1:])]),
                "started_at": started.isoformat(timespec="seconds"),
                "machine": report.machine(),
                "settings": {
                    "FLOWS_SYNC_SECONDS": SYNC_SECONDS,
                    "REVIEW_SUBMIT_ATTEMPTS/BACKOFF": "defaults (8, 2 s doubling, cap 300 s)",
                },
                "results": results,
            },
            indent=2,
            default=str,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
