"""Fixtures shared by the whole suite: personas, the engine's credentials, a real Celery worker."""

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from config.celery import app as celery_app

# Playwright's sync API runs an event loop in the test thread; Django must not refuse the ORM.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

TEST_VAR = Path(settings.VAR_DIR) / "test"
# One broker folder per test process: two test runs side by side must not consume (or purge)
# each other's messages.
TEST_BROKER_DIR = TEST_VAR / str(os.getpid()) / "celery-broker"


def _configure_test_broker() -> None:
    """CI names Redis; elsewhere a file-system broker of the tests' own, so that a running
    `make run` never shares (and steals) the tests' messages."""
    if os.environ.get("CELERY_BROKER_URL"):
        return
    broker_dir = TEST_BROKER_DIR
    shutil.rmtree(broker_dir, ignore_errors=True)
    broker_dir.mkdir(parents=True)
    celery_app.conf.broker_url = "filesystem://"
    celery_app.conf.broker_transport_options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "data_folder_in": str(broker_dir),
        "data_folder_out": str(broker_dir),
        "store_processed": False,
        "control_folder": str(broker_dir / "control"),
        "polling_interval": 0.05,
    }


_configure_test_broker()


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    """PBKDF2's deliberate slowness costs seconds per test and proves nothing here."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def two_factor_off(settings):
    """Two-factor sign-in is on by default; the suite's sign-ins (``force_login``, the login page
    in Chromium) are about other things. Its own tests turn it on (test_two_factor.py)."""
    settings.TWO_FACTOR_ENABLED = False


@pytest.fixture(autouse=True)
def inbox_publishes_stay_in_their_test() -> Iterator[None]:
    """Webhooks a test stored are published a moment later, from a timer: those it left
    unpublished must not reach the next test's worker, where their ids may name its events."""
    yield
    from flows_integration import services

    services._events_to_publish.discard()


@pytest.fixture
def celery_worker(transactional_db: None) -> Iterator[object]:
    """A real Celery worker consuming from the real broker, in a thread of this process."""
    celery_app.control.purge()
    with start_worker(
        celery_app, pool="threads", concurrency=4, perform_ping_check=False, shutdown_timeout=10
    ) as worker:
        yield worker
        # Celery's test worker ends by terminating its pool, which leaves running tasks' threads
        # alive: one would carry on into the next test (its calls to the Flows API once this
        # test's settings are gone, its rows in that test's database). Let them finish first.
        worker.pool.executor.shutdown(wait=True, cancel_futures=True)


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password")


@pytest.fixture
def engine_clients(db):
    from flows_engine import services
    from flows_engine.models import Environment

    return {
        "sandbox": services.client_ensure(
            client_id="test-sandbox",
            secret="sandbox-secret",
            environment=Environment.SANDBOX,
            name="Test sandbox",
        ),
        "production": services.client_ensure(
            client_id="test-production",
            secret="production-secret",
            environment=Environment.PRODUCTION,
            name="Test production",
        ),
    }


@pytest.fixture
def demo_templates(db):
    from flows_engine import services

    return services.demo_seed()


def api_session(base_url: str, client_id: str, secret: str) -> httpx.Client:
    """An httpx client for the engine's API holding a fresh bearer token."""
    http = httpx.Client(base_url=base_url, timeout=10)
    response = http.post("/oauth/token", json={"client_id": client_id, "client_secret": secret})
    response.raise_for_status()
    http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    return http


@pytest.fixture
def engine_api(live_server, engine_clients) -> Iterator[httpx.Client]:
    """The engine over real HTTP, as the sandbox client."""
    http = api_session(f"{live_server.url}/flows-api", "test-sandbox", "sandbox-secret")
    yield http
    http.close()


@pytest.fixture
def flows_api(live_server, engine_clients, demo_templates, settings):
    """Flowdesk's client pointed at the engine over real HTTP, as the sandbox client."""
    from flows_integration import client

    settings.FLOWS_API_URL = f"{live_server.url}/flows-api"
    settings.FLOWS_CLIENT_ID = "test-sandbox"
    settings.FLOWS_CLIENT_SECRET = "sandbox-secret"
    client.reset_client()
    yield client.get_client()
    client.reset_client()


@pytest.fixture
def receiver_registered(live_server, settings):
    """Flowdesk's webhook receiver (on live_server) registered with the engine, for sandbox
    events, with the Svix retry schedule compressed for tests."""
    from flows_engine import webhooks as engine_webhooks

    settings.FLOWS_ENGINE_WEBHOOK_RETRY_SCALE = 0.001
    return engine_webhooks.endpoint_register(
        url=f"{live_server.url}/flows/webhooks/",
        environment="sandbox",
        secret=settings.FLOWS_WEBHOOK_SECRET,
    )


@pytest.fixture
def status_changes():
    """Every change announced during the test, one Run at a time (``run_status_changed``) or a
    reconcile chunk at once (``runs_status_changed``), as tuples in the order announced."""
    from flows_integration.signals import run_status_changed, runs_status_changed

    seen: list[tuple[str, str, str, str]] = []

    def record(sender, run, old_status, new_status, state_id, **kwargs):
        seen.append((str(run.flow_run_id), old_status, new_status, state_id))

    def record_many(sender, changes, **kwargs):
        for change in changes:
            record(sender, change.run, change.old_status, change.new_status, change.state_id)

    run_status_changed.connect(record, weak=False)
    runs_status_changed.connect(record_many, weak=False)
    yield seen
    run_status_changed.disconnect(record)
    runs_status_changed.disconnect(record_many)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Debian's Chromium (Playwright cannot download its own here), quiet on a closed network."""
    executable = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    return {
        **browser_type_launch_args,
        "executable_path": executable,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--disable-sync",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
        ],
    }


@pytest.fixture(scope="session", autouse=True)
def _close_stray_database_sessions(django_db_setup, django_db_blocker):
    """Worker and server threads keep PostgreSQL sessions open; end them before the test
    database is dropped, or the drop fails and leaves the database behind."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture
def role_groups(db) -> None:
    """The role groups and their permissions, as the roles' data migration made them. A
    transactional test's flush empties them for every test after it, so tests that sign in
    with a role ask for this rather than trusting the migration's rows are still there."""
    from importlib import import_module

    from django.contrib.auth.models import Group, Permission

    for module in (
        "reviewqueue.migrations.0002_roles_default_queue_audit",
        "reviewqueue.migrations.0008_audit_trail_moved",
        "reviewqueue.migrations.0012_flow_admin_calendars",
        "intake.migrations.0002_start_run_roles",
    ):
        for name, wanted in import_module(module).ROLE_PERMISSIONS.items():
            group, _ = Group.objects.get_or_create(name=name)
            group.permissions.add(
                *(Permission.objects.get(content_type__app_label=a, codename=c) for a, c in wanted)
            )
