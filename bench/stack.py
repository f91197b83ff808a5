"""What ``staff`` and ``burst`` add to ``bench/world.py``'s world: more Celery workers, and the
Flows engine as a server of its own (gunicorn + its own Celery worker + its own database), the
way Sohar sits outside Flowdesk in production. Only public parts of ``world`` are used; the
processes started here join ``world.processes``, so the world stops them with its own.
"""

import contextlib
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.measure import wait_until
from bench.world import (
    PYTHON,
    READY_TIMEOUT,
    World,
    database_create,
    database_drop,
    file_lock,
    manage,
    spawn,
)

ENGINE_QUEUE = "engine"  # bench/engine_settings.py
ENGINE_CLIENT = ("demo-sandbox", "demo-sandbox-secret")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def bench_urls(database_url: str, broker_url: str) -> Iterator[None]:
    """``provision()`` reads its database and broker from the environment: point it at this
    scenario's own, then put them back."""
    saved = {k: os.environ.get(k) for k in ("BENCH_DATABASE_URL", "BENCH_BROKER_URL")}
    os.environ["BENCH_DATABASE_URL"] = database_url
    os.environ["BENCH_BROKER_URL"] = broker_url
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def worker_command(world: World, hostname: str, *, queue: str | None = None) -> list[str]:
    config = world.config
    return [
        PYTHON, "-m", "celery", "-A", "config", "worker", f"--pool={config.pool}",
        f"--concurrency={config.worker_concurrency}", "-I", "bench.tasks",
        "--loglevel=WARNING", "--hostname", f"{hostname}@%h",
        *(["-Q", queue] if queue else []),
    ]  # fmt: skip


def start_more_workers(world: World, count: int) -> None:
    """Workers 2..``count`` on Flowdesk's queue (``provision`` started the first)."""
    for n in range(2, count + 1):
        spawn(world, f"worker{n}", worker_command(world, f"bench-{world.name}-{n}"), world.env)


@dataclass
class Engine:
    base_url: str  # the engine's API root, as FLOWS_API_URL names it
    database_url: str
    env: dict[str, str]


def engine_env(world_env: dict[str, str], *, database_url: str, var_dir: Path) -> dict[str, str]:
    return {
        **world_env,
        "DJANGO_SETTINGS_MODULE": "bench.engine_settings",
        "DATABASE_URL": database_url,
        "FLOWDESK_VAR_DIR": str(var_dir),
        "FLOWS_ENGINE_ENABLED": "true",
        "FLOWS_ENGINE_PRODUCT_LATENCY_MS": "0",
        # A failed delivery is retried within seconds, not Svix's minutes.
        "FLOWS_ENGINE_WEBHOOK_RETRY_SCALE": "0.01",
    }


@contextlib.contextmanager
def engine_database(database_url: str, env: dict[str, str], log_dir: Path) -> Iterator[None]:
    """The engine's own database: created, migrated and seeded (demo templates, API clients);
    dropped afterwards."""
    with file_lock(database_url, what=f"{database_url} stayed in use by another run"):
        database_create(database_url)
        try:
            manage(env, log_dir, "migrate", "--noinput")
            manage(env, log_dir, "engine_seed")
            yield
        finally:
            database_drop(database_url)


def engine_start(
    world: World, engine: Engine, port: int, *, webhook_secret: str, hooks_url: str | None = None
) -> None:
    """The engine's gunicorn (its access log is the engine's record of every Update Run) and
    its worker; its webhooks go to ``hooks_url``, by default the world's receiver."""
    hooks_url = hooks_url or f"{world.base_url}/flows/webhooks/"
    manage(
        engine.env, world.log_dir, "engine_webhook_add", hooks_url,
        "--environment", "sandbox", "--secret", webhook_secret,
    )  # fmt: skip
    spawn(
        world,
        "engine-web",
        [
            PYTHON, "-m", "gunicorn", "config.wsgi:application", "-k", "gthread",
            "--workers", "1", "--threads", "8", "--bind", f"127.0.0.1:{port}",
            "--log-level", "warning", "--graceful-timeout", "5",
            "--access-logfile", str(world.log_dir / "engine-access.log"),
            "--access-logformat", "%(m)s %(U)s %(s)s",
        ],
        engine.env,
    )  # fmt: skip
    spawn(
        world,
        "engine-worker",
        worker_command(world, f"bench-{world.name}-engine", queue=ENGINE_QUEUE),
        engine.env,
    )

    def answers() -> bool:
        try:
            return httpx.get(f"{engine.base_url}/openapi.json", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(answers, timeout=READY_TIMEOUT, what="the engine", interval=0.2,
               alive=world.check_alive)  # fmt: skip


def engine_client(engine: Engine) -> httpx.Client:
    client = httpx.Client(base_url=engine.base_url, timeout=30)
    token = client.post(
        "/oauth/token", json={"client_id": ENGINE_CLIENT[0], "client_secret": ENGINE_CLIENT[1]}
    )
    token.raise_for_status()
    client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
    return client


def update_runs_logged(world: World) -> dict[str, list[int]]:
    """Every Update Run (``PUT /flows-api/v1/flow-runs/<id>``) in the engine's access log: the
    statuses it answered, by Run id."""
    found: dict[str, list[int]] = {}
    path = world.log_dir / "engine-access.log"
    if not path.exists():
        return found
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "PUT" and "/v1/flow-runs/" in parts[1]:
            found.setdefault(parts[1].rsplit("/", 1)[1], []).append(int(parts[2]))
    return found
