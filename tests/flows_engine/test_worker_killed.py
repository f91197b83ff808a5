"""A worker killed in the middle of a product call: the sweep and a fresh worker finish the Run.

Real Celery workers run as subprocesses on the tests' database and broker. The first is killed
with SIGKILL while the product it called is still "thinking" (FLOWS_ENGINE_PRODUCT_LATENCY_MS), so
its task is never acknowledged and the Run is left IN_PROGRESS. The sweep must re-enqueue it, and
the state the dead worker was running must be applied exactly once.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
from django.conf import settings
from django.db import connection
from django.utils import timezone

from config.celery import app as celery_app
from flows_engine import services, webhooks
from flows_engine.models import Environment, Run, RunStatus, WebhookMessage

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

PATIENT = {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"}


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a worker process that shares this test run's database and broker."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **extra}
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"  # the test database is a file
    else:
        password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
        env["DATABASE_URL"] = (
            f"postgres://{quote(db['USER'], safe='')}{password}"
            f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
    if not os.environ.get("CELERY_BROKER_URL"):
        # conftest gives the tests a file-system broker folder of their own; settings put that
        # broker at VAR_DIR/celery-broker, so the worker gets the folder's parent as VAR_DIR.
        folder = Path(celery_app.conf.broker_transport_options["data_folder_in"])
        assert folder.name == "celery-broker", "a worker process could not find this folder"
        assert Path(celery_app.conf.broker_transport_options["data_folder_out"]) == folder
        env["CELERY_BROKER_URL"] = "filesystem://"
        env["FLOWDESK_VAR_DIR"] = str(folder.parent)
    return env


@pytest.fixture
def start_worker(tmp_path) -> Iterator[Callable[..., subprocess.Popen]]:
    """Start `celery worker` subprocesses; every one still running is stopped at the end."""
    started: list[subprocess.Popen] = []

    def start(**env: str) -> subprocess.Popen:
        name = f"killed-{uuid.uuid4().hex[:8]}@%h"
        log = (tmp_path / f"worker-{len(started)}.log").open("w")
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=solo",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
                "-n",
                name,
            ],
            cwd=settings.BASE_DIR,
            env=worker_env(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in started:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict]]]:
    """A webhook endpoint that answers 204 and keeps every body it got."""
    bodies: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    yield f"http://{host}:{port}/webhooks", bodies
    server.shutdown()
    server.server_close()


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def queued_tasks() -> int:
    """Messages waiting in the tests' broker (Redis or the file-system folder)."""
    with celery_app.connection_for_read() as conn:
        return conn.default_channel.queue_declare(queue="celery").message_count


def worker_idle(log: Path) -> bool:
    """Nothing is left for the worker to do: the broker holds no task, and every task the
    worker took (one waiting for its countdown too) has ended, by its own log."""
    text = log.read_text()
    taken = set(re.findall(r"Task \S+\[([0-9a-f-]+)\] received", text))
    ended = set(re.findall(r"Task \S+\[([0-9a-f-]+)\] (?:succeeded|raised|retry|failed)", text))
    return queued_tasks() == 0 and taken <= ended


def history(run: Run) -> list[tuple[str, str]]:
    return [
        (m.payload["status"], m.payload["stateId"])
        for m in WebhookMessage.objects.filter(run=run).order_by("pk")
    ]


def test_a_run_whose_worker_was_killed_mid_product_call_is_finished_once(
    engine_clients, demo_templates, receiver, start_worker, tmp_path
):
    url, bodies = receiver
    webhooks.endpoint_register(url=url, environment=Environment.SANDBOX)
    celery_app.control.purge()
    run = services.run_create(
        client=engine_clients["sandbox"],
        template_id="coverage-check",
        input_data={"patient": PATIENT, "payerId": "60054"},
        version=1,
    )

    doomed = start_worker(FLOWS_ENGINE_PRODUCT_LATENCY_MS="3000")
    # `discover` is entered (and committed) before Discovery is called, which then takes 3 s.
    wait_until(
        lambda: Run.objects.filter(pk=run.pk, state_id="discover").exists(),
        timeout=30,
        what=f"the first worker to start the run (log in {tmp_path})",
    )
    # Entering `discover` queued its webhook on commit; the worker, busy in the 3 s call,
    # cannot take it. Kill it once that message is in the broker, not before (its webhook
    # would be lost until the sweep's next minute) and not after a guessed pause.
    wait_until(
        lambda: queued_tasks() > 0, timeout=30, what="the webhook of `discover` to be queued"
    )
    doomed.send_signal(signal.SIGKILL)
    assert doomed.wait(timeout=10) == -signal.SIGKILL

    # Dead, so it will never move on; no other worker is running yet.
    run.refresh_from_db()
    assert (run.status, run.state_id, run.step) == (RunStatus.IN_PROGRESS, "discover", 1)
    # The worker may still be busy, as far as the sweep can tell: it must leave the run alone.
    assert services.sweep()["stuck_runs"] == 0

    Run.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(minutes=5))
    assert services.sweep()["stuck_runs"] == 1  # enqueued at once: no transaction is open

    start_worker(FLOWS_ENGINE_PRODUCT_LATENCY_MS="0")
    fresh_log = tmp_path / "worker-1.log"
    wait_until(
        lambda: Run.objects.filter(pk=run.pk, status=RunStatus.PENDING).exists(),
        timeout=30,
        what=f"the fresh worker to finish the run (log in {tmp_path})",
    )
    wait_until(
        lambda: any(body["status"] == "PENDING" for body in bodies),
        timeout=10,
        what="the PENDING webhook",
    )
    # A doubled step or webhook would come from a task still queued or held by the worker:
    # wait until it has none, rather than for a time that a loaded machine can outlast.
    wait_until(
        lambda: worker_idle(fresh_log), timeout=30, what=f"the worker to go idle ({fresh_log})"
    )

    run.refresh_from_db()
    assert (run.status, run.state_id, run.step) == (RunStatus.PENDING, "collect-member-id", 3)
    assert run.state_outputs["discover"]["found"] is False
    assert history(run) == [
        ("IN_PROGRESS", "discover"),
        ("IN_PROGRESS", "coverage-found"),
        ("PENDING", "collect-member-id"),
    ]
    assert sorted((body["status"], body["stateId"]) for body in bodies) == sorted(history(run))
