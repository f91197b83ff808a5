"""A scenario's world: a fresh database and broker, and the real processes, as subprocesses.

``provision()`` drops and creates the benchmark database, migrates it, seeds it with
``manage.py load_demo``, empties the broker's Redis database, starts gunicorn and a Celery
worker with that environment, waits until both answer, and on the way out stops them (bounded,
SIGKILL if they linger) and drops the database. Everything listens on 127.0.0.1.
"""

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import redis
from celery import Celery
from psycopg import sql

from bench.measure import BenchError, CpuMeter, process_tree, rss_mb, wait_until
from bench.registry import Context

BASE_DIR = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/flowdesk_bench"
DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/14"
STOP_TIMEOUT = 15.0
READY_TIMEOUT = 60.0
LOCK_TIMEOUT = 900.0


@dataclass(frozen=True)
class WorldConfig:
    web_workers: int = 2
    web_threads: int = 4
    pool: str = "threads"  # "threads" (one process) or "prefork"
    concurrency: int | None = None  # default: 8 threads, or one process per core
    worker: bool = True
    # Extra environment for the web server and the worker (a scenario's knobs).
    env: dict[str, str] = field(default_factory=dict)

    @property
    def worker_concurrency(self) -> int:
        if self.concurrency is not None:
            return self.concurrency
        return 8 if self.pool == "threads" else (os.cpu_count() or 2)


@dataclass
class Process:
    name: str
    command: list[str]
    popen: subprocess.Popen[bytes]
    log: Path


@dataclass
class World:
    name: str
    config: WorldConfig
    base_url: str
    database_url: str
    broker_url: str
    env: dict[str, str]
    log_dir: Path
    redis: redis.Redis
    celery: Celery
    processes: dict[str, Process] = field(default_factory=dict)

    def manage(self, *args: str, timeout: float = 300) -> None:
        manage(self.env, self.log_dir, *args, timeout=timeout)

    def db(self) -> psycopg.Connection:
        """A new autocommit connection to the benchmark database (close it, or use ``with``)."""
        return psycopg.connect(self.database_url, autocommit=True)

    def check_alive(self) -> None:
        for process in self.processes.values():
            code = process.popen.poll()
            if code is not None:
                raise BenchError(f"{process.name} exited with code {code}:\n{tail(process.log)}")

    def send_task(self, name: str, *args: object, count: int = 1) -> None:
        """Publish ``count`` messages for task ``name`` over one broker connection."""
        with self.celery.producer_or_acquire() as producer:
            for _ in range(count):
                self.celery.send_task(name, args=args, producer=producer)

    def queue_depth(self) -> int:
        """Messages waiting in the default queue plus those delivered but not yet acked."""
        return int(self.redis.llen("celery")) + int(self.redis.hlen("unacked"))

    def cpu_meter(self) -> CpuMeter:
        roots = {name: p.popen.pid for name, p in self.processes.items()}
        return CpuMeter(roots, {"postgres": "postgres", "redis-server": "redis"})

    def rss(self) -> dict[str, list[float]]:
        """Resident MB of each process doing the work: gunicorn's workers (not the arbiter),
        and the Celery worker's processes."""
        found: dict[str, list[float]] = {}
        for name, process in self.processes.items():
            tree = process_tree(process.popen.pid)
            if name == "web" or (name == "worker" and self.config.pool == "prefork"):
                tree = [pid for pid in tree if pid != process.popen.pid]
            found[name] = sorted(rss_mb(tree).values(), reverse=True)
        return found

    def commands(self) -> dict[str, str]:
        return {name: " ".join(p.command) for name, p in self.processes.items()}


def bench_broker_url() -> str:
    """The broker every scenario uses (and flushes): ``BENCH_BROKER_URL``, else the default."""
    return os.environ.get("BENCH_BROKER_URL") or DEFAULT_BROKER_URL


@contextmanager
def provision(name: str, ctx: Context, config: WorldConfig | None = None) -> Iterator[World]:
    """Build a world for scenario ``name``, yield it, and tear it down whatever happens."""
    config = config or WorldConfig(pool=ctx.pool)
    database_url = os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL
    broker_url = bench_broker_url()
    _refuse_shared(database_url, broker_url)
    with (
        _exclusive(database_url, broker_url),
        _world(name, ctx, config, database_url, broker_url) as world,
    ):
        yield world


@contextmanager
def _world(
    name: str, ctx: Context, config: WorldConfig, database_url: str, broker_url: str
) -> Iterator[World]:
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_dir = Path(tempfile.mkdtemp(prefix=f"flowdesk-bench-{name}-"))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker_url,
        "FLOWDESK_VAR_DIR": str(log_dir / "var"),
        # Measure the code, not Django's debug bookkeeping (DEBUG keeps every query in memory).
        "DEBUG": "false",
        "LOG_LEVEL": "WARNING",
        "FLOWS_ENGINE_ENABLED": "true",
        # The simulated products answer at once: measure the engine, not a configured sleep.
        "FLOWS_ENGINE_PRODUCT_LATENCY_MS": "0",
        "FLOWS_API_URL": f"{base_url}/flows-api",
        "PYTHONUNBUFFERED": "1",
        # Staff are signed in with force_login: measure the pages, not the two-factor redirect.
        "TWO_FACTOR_ENABLED": "false",
        **config.env,
    }
    bus = redis.Redis.from_url(broker_url)
    celery = Celery(f"bench-{name}", broker=broker_url)
    celery.conf.broker_connection_retry_on_startup = True
    world = World(
        name=name,
        config=config,
        base_url=base_url,
        database_url=database_url,
        broker_url=broker_url,
        env=env,
        log_dir=log_dir,
        redis=bus,
        celery=celery,
    )
    failed = True
    try:
        database_create(database_url)
        manage(env, log_dir, "migrate", "--noinput")
        manage(env, log_dir, "load_demo", "--base-url", base_url, "--demo")
        bus.flushdb()
        start_web(world, port)
        if config.worker:
            start_worker(world)
        yield world
        failed = False
    finally:
        for process in reversed(world.processes.values()):
            _stop(process)
        celery.close()
        bus.close()
        if failed or ctx.keep:
            # Leave the evidence: the next run drops the database and flushes the broker.
            print(f"   logs kept in {log_dir}; database {database_url} kept", file=sys.stderr)
        else:
            _flush(broker_url)
            database_drop(database_url)
            shutil.rmtree(log_dir, ignore_errors=True)


# --- Database and broker ---------------------------------------------------------------------


@contextmanager
def _exclusive(database_url: str, broker_url: str) -> Iterator[None]:
    """Hold a lock per database and per broker for the world's lifetime.

    Two benchmark runs on one machine with the same URLs would drop each other's database and
    flush each other's queue; the second one waits (bounded) instead, which also keeps it from
    loading the first one's measurement.
    """
    keys = sorted({urlsplit(database_url).netloc + urlsplit(database_url).path, broker_url})
    with contextlib.ExitStack() as stack:
        for key in keys:
            stack.enter_context(
                file_lock(key, what=f"{key} stayed in use by another benchmark run")
            )
        yield


@contextlib.contextmanager
def file_lock(key: str, *, what: str) -> Iterator[None]:
    """An exclusive lock between benchmark runs on this machine, named by ``key``; waits up to
    ``LOCK_TIMEOUT``, then raises ``BenchError(what)``. (flock is per open file: taking the same
    key twice in one process would wait on itself.)"""
    safe = "".join(c if c.isalnum() else "-" for c in key)
    with open(Path(tempfile.gettempdir()) / f"flowdesk-bench-{safe}.lock", "w") as handle:
        deadline = time.monotonic() + LOCK_TIMEOUT
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise BenchError(what) from None
                if not told:
                    print(f"   waiting for another benchmark run using {key}", flush=True)
                    told = True
                time.sleep(1)
        yield  # the lock goes with the file


def _refuse_shared(database_url: str, broker_url: str) -> None:
    """The world is dropped and flushed: refuse anything that does not look like ours."""
    db_name = urlsplit(database_url).path.lstrip("/")
    if "bench" not in db_name:
        raise BenchError(
            f"refusing to drop database {db_name!r}: a benchmark database's name contains 'bench'"
        )
    redis_db = urlsplit(broker_url).path.lstrip("/")
    if not redis_db.isdigit() or redis_db == "0":
        raise BenchError(
            f"refusing to flush Redis database {redis_db or '0'!r}: name a spare one, e.g. /14"
        )


def _flush(broker_url: str) -> None:
    with redis.Redis.from_url(broker_url) as bus:
        bus.flushdb()


def _maintenance_url(database_url: str) -> tuple[str, str]:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path="/postgres")), parts.path.lstrip("/")


def database_create(database_url: str) -> None:
    url, db_name = _maintenance_url(database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        name = sql.Identifier(db_name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(name))


def database_drop(database_url: str) -> None:
    url, db_name = _maintenance_url(database_url)
    with psycopg.connect(url, autocommit=True) as conn:
        name = sql.Identifier(db_name)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(name))


def manage(env: dict[str, str], log_dir: Path, *args: str, timeout: float = 300) -> None:
    """Run ``manage.py *args`` in a world's environment, its output to a log in ``log_dir``."""
    log = log_dir / f"manage-{args[0]}.log"
    with log.open("wb") as out:
        code = subprocess.run(
            [PYTHON, "manage.py", *args],
            cwd=BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=timeout,
        ).returncode
    if code != 0:
        raise BenchError(f"manage.py {' '.join(args)} failed ({code}):\n{tail(log)}")


# --- Processes -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def spawn(
    world: World, name: str, command: list[str], env: dict[str, str] | None = None
) -> Process:
    """Start ``command`` (with ``env``, by default the world's) in a session of its own, so
    that stopping it reaches gunicorn's or Celery's children too; the world stops it on the
    way out."""
    log = world.log_dir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            command,
            cwd=BASE_DIR,
            env=world.env if env is None else env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    process = Process(name=name, command=command, popen=popen, log=log)
    world.processes[name] = process
    return process


def start_web(world: World, port: int) -> None:
    config = world.config
    spawn(
        world,
        "web",
        [
            PYTHON,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "-k",
            "gthread",
            "--workers",
            str(config.web_workers),
            "--threads",
            str(config.web_threads),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            "--graceful-timeout",
            "5",
        ],
    )

    def answers() -> bool:
        try:
            return httpx.get(f"{world.base_url}/ping", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(
        answers, timeout=READY_TIMEOUT, what="gunicorn", interval=0.2, alive=world.check_alive
    )


def start_worker(world: World) -> None:
    """Start the world's Celery worker and wait until it runs a task (``provision`` does this
    unless ``WorldConfig.worker`` is off; a scenario may start it later itself)."""
    config = world.config
    spawn(
        world,
        "worker",
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            f"--pool={config.pool}",
            f"--concurrency={config.worker_concurrency}",
            "-I",
            "bench.tasks",
            "--loglevel=WARNING",
            "--hostname",
            f"bench-{world.name}@%h",
        ],
    )
    key = "bench:ready"
    world.send_task("bench.tasks.noop", key)
    wait_until(
        lambda: int(world.redis.get(key) or 0) >= 1,
        timeout=READY_TIMEOUT,
        what="the Celery worker to run a task",
        interval=0.2,
        alive=world.check_alive,
    )


def _stop(process: Process) -> None:
    stop_group(process.popen)


def stop_group(popen: subprocess.Popen[Any], timeout: float = STOP_TIMEOUT) -> None:
    """SIGTERM the process group (a warm shutdown), then SIGKILL whatever is left of the group
    after ``timeout``: gunicorn's workers, Celery's pool processes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        popen.wait(timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(popen.pid, signal.SIGKILL)
    popen.wait(5)


def tail(path: Path, lines: int = 30) -> str:
    """The last lines of a log, for an error message."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def settle(world: World, *, timeout: float, quiet_for: float = 0.5) -> bool:
    """Wait (bounded) until the broker has had nothing queued or unacked for ``quiet_for``
    seconds, so the tail of one phase (webhook deliveries, refreshes) does not load the next.
    Returns False if the worker was still busy at the timeout."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        world.check_alive()
        now = time.monotonic()
        if world.queue_depth() == 0:
            quiet_since = quiet_since or now
            if now - quiet_since >= quiet_for:
                return True
        else:
            quiet_since = None
        time.sleep(0.05)
    return False
