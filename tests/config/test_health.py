"""/healthz depends on nothing; /readyz names each dependency that fails (real unreachable ports
and a deliberately faulty server, no mocks)."""

import json
import os
import socket
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.db import connection
from django.test import Client

from config import health
from flows_integration import client as flows_client
from tests.flows_integration.faulty_server import CLIENT_ID, CLIENT_SECRET, FaultyServer, hang

ROOT = Path(__file__).resolve().parents[2]


def closed_port() -> int:
    """A port nothing listens on: bound, then released."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_answers_without_the_database():
    # No db fixture: pytest-django refuses every query, as a database that is down would.
    response = Client().get("/healthz", headers={"Host": "10.1.2.3:8000"})
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_healthz_refuses_other_methods():
    assert Client().post("/healthz").status_code == 405


def test_a_database_that_does_not_answer_fails_its_check(db):
    """A PostgreSQL server on a port where none listens (the driver is installed either way)."""
    import environ
    from django.db.backends.postgresql.base import DatabaseWrapper

    down = environ.Env.db_url_config(f"postgres://flowdesk@127.0.0.1:{closed_port()}/flowdesk")
    wrapper = DatabaseWrapper({**connection.settings_dict, **down, "OPTIONS": {}}, alias="down")
    check = health.database(wrapper)
    assert not check.ok
    assert check.detail == "OperationalError", check
    wrapper.close()


def test_a_database_server_that_never_answers_fails_within_the_connect_timeout():
    """A port that accepts connections and then says nothing (a hung server, a black-holed
    proxy): PostgreSQL settings give up after DATABASE_CONNECT_TIMEOUT, not the system's minutes."""
    code = (
        "import time; from django.conf import settings; from config import health; "
        "started = time.monotonic(); check = health.database(); "
        "options = settings.DATABASES['default']['OPTIONS']; "
        "print(options['connect_timeout'], options['tcp_user_timeout'], check.ok, "
        "round(time.monotonic() - started))"
    )
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": f"postgres://flowdesk@127.0.0.1:{silent.getsockname()[1]}/flowdesk",
            "DATABASE_CONNECT_TIMEOUT": "2",
        }
        answer = subprocess.run(
            [sys.executable, "-c", f"import django; django.setup(); {code}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert answer.returncode == 0, answer.stderr
    timeout, unacknowledged, ok, seconds = answer.stdout.split()
    assert (timeout, unacknowledged, ok) == ("2", "30000", "False")
    assert 2 <= int(seconds) < 30  # not the minutes of a TCP timeout


def test_migrations_are_applied_in_the_test_database(db):
    assert health.migrations().ok


def test_a_broker_that_does_not_answer_fails_its_check():
    check = health.broker(f"redis://127.0.0.1:{closed_port()}/12", timeout=0.5)
    assert not check.ok
    assert "Error" in check.detail


def test_a_broker_that_accepts_and_then_says_nothing_fails_its_check():
    """Redis ignores kombu's connect_timeout: without socket timeouts this check never ended."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        outcome = ThreadPoolExecutor(1).submit(
            health.broker, f"redis://127.0.0.1:{silent.getsockname()[1]}/12", timeout=0.5
        )
        check = outcome.result(timeout=30)  # the bug was: never
    assert not check.ok


def test_a_check_that_hangs_is_reported_failing_not_by_its_last_outcome():
    release = threading.Event()
    outcomes = iter([health.Check(True, "ok"), None])

    def run() -> health.Check:
        outcome = next(outcomes)
        if outcome is None:
            release.wait(30)
            return health.Check(True, "ok")
        return outcome

    cached = health.CachedCheck(run)
    try:
        assert cached.result(ttl=0, timeout=5).ok  # the first outcome, waited for
        # ttl 0: the next reader starts a refresh, which hangs; the last outcome is given while
        # the refresh may still finish in time, a failure once it cannot.
        assert cached.result(ttl=0, timeout=5).cached
        assert cached.result(ttl=0, timeout=0) == health.Check(False, "no answer within 0 s")
    finally:
        release.set()


def test_a_flows_api_that_does_not_answer_fails_its_check(settings):
    settings.FLOWS_CLIENT_ID, settings.FLOWS_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    check = health.flows(f"http://127.0.0.1:{closed_port()}", timeout=0.5)
    assert not check.ok
    assert "was not sent" in check.detail


def test_a_flows_api_that_hangs_fails_within_the_timeout(settings):
    settings.FLOWS_CLIENT_ID, settings.FLOWS_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    with FaultyServer() as server:
        server.always("GET /v1/flow-runs/", hang(3))
        check = health.flows(server.url, timeout=0.3)
    assert not check.ok
    assert "ReadTimeout" in check.detail  # our timeout, not the server's answer after 3 s


def test_the_flows_check_asks_only_get_run_and_takes_its_404(settings):
    settings.FLOWS_CLIENT_ID, settings.FLOWS_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    with FaultyServer() as server:
        check = health.flows(server.url, timeout=1)
        routes = [request.route for request in server.requests]
    assert check.ok, check.detail
    assert routes == ["POST /oauth/token", f"GET /v1/flow-runs/{health.PROBE_RUN_ID}"]


def test_a_cached_check_is_asked_once_per_period():
    calls = []

    def run() -> health.Check:
        calls.append(1)
        return health.Check(True)

    cached = health.CachedCheck(run)
    assert cached.result(ttl=60, timeout=5).ok
    for _ in range(20):
        assert cached.result(ttl=60, timeout=5).cached
    assert len(calls) == 1


@pytest.fixture
def fresh_checks():
    for check in health.CACHED.values():
        check.forget()
    flows_client.reset_client()
    yield
    for check in health.CACHED.values():
        check.forget()


def test_readyz_reports_every_failing_dependency_with_503(db, settings, fresh_checks):
    settings.READYZ_REQUIRED = ["database", "migrations", "broker", "flows"]
    settings.FLOWS_API_URL = f"http://127.0.0.1:{closed_port()}"
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{closed_port()}/12"
    # A load balancer asks by the container's address: answered, with the status alone.
    by_address = Client().get("/readyz", headers={"Host": "10.1.2.3"})
    assert by_address.status_code == 503
    assert json.loads(by_address.content) == {"status": "not ready"}
    response = Client().get("/readyz")
    assert response.status_code == 503
    body = json.loads(response.content)
    assert body["status"] == "not ready"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["migrations"]["ok"] is True
    assert body["checks"]["broker"]["ok"] is False
    assert body["checks"]["flows"]["ok"] is False


def test_readyz_is_ready_when_everything_answers(flows_api, fresh_checks):
    response = Client().get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert {name for name, check in body["checks"].items() if check["ok"]} == {
        "database",
        "migrations",
        "broker",
        "flows",
    }
    # The next probe is answered from the cached outcome of the outside services.
    again = Client().get("/readyz").json()["checks"]
    assert again["flows"]["cached"] and again["broker"]["cached"]
    assert again["database"]["ms"] < 50


def test_by_default_a_flows_outage_is_reported_not_counted(db, settings, fresh_checks):
    """Staff keep working while Sohar is down (the outbox holds their answers): an outage must
    not take every web process out of the load balancer."""
    settings.FLOWS_API_URL = f"http://127.0.0.1:{closed_port()}"
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["flows"] == {
        **response.json()["checks"]["flows"],
        "ok": False,
        "required": False,
    }


def test_readyz_tells_what_failed_only_to_this_machine_or_the_scraper(db, settings):
    settings.METRICS_TOKEN = "readyz-test-token-0123456789"
    outside = Client(REMOTE_ADDR="10.0.0.9").get("/readyz")
    assert outside.status_code == 200 and outside.json() == {"status": "ready"}
    # Through a proxy on this machine: a client's request all the same.
    proxied = Client().get("/readyz", headers={"X-Forwarded-For": "127.0.0.1"})
    assert "checks" not in proxied.json()
    scraper = Client(REMOTE_ADDR="10.0.0.9").get(
        "/readyz", headers={"Authorization": "Bearer readyz-test-token-0123456789"}
    )
    assert scraper.json()["checks"]["database"]["ok"] is True
    assert Client().get("/readyz").json()["checks"]["migrations"]["ok"] is True
