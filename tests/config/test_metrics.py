"""/metrics: refused without the token, and the named metrics with their values on known data."""

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from config import metrics
from flows_integration.models import WebhookEvent
from reviewqueue.models import ReviewItem
from tests.config.test_health import closed_port
from tests.flows_integration.faulty_server import CLIENT_ID, CLIENT_SECRET, FaultyServer, respond
from tests.reviewqueue.conftest import (  # noqa: F401
    clinical_queue,
    item,
    pending_run,
    prior_auth_version,
)

TOKEN = "metrics-test-token-0123456789"
ROOT = Path(__file__).resolve().parents[2]


def scrape(**headers) -> dict[tuple[str, tuple], float]:
    response = Client().get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def test_metrics_are_refused_without_the_token(token):
    assert Client().get("/metrics").status_code == 401
    wrong = Client().get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"] == "Bearer"


def test_metrics_are_off_in_production_without_a_token(settings):
    settings.METRICS_TOKEN = ""
    settings.PRODUCTION = True
    assert Client().get("/metrics").status_code == 404


def test_database_gauges_on_known_data(token, db, item, clinical_queue):  # noqa: F811
    item.opened_at = timezone.now() - timedelta(hours=2)
    item.save(update_fields=["opened_at"])
    WebhookEvent.objects.create(
        svix_id="msg_1",
        event_type="flow.updated",
        flow_run_id=item.run.flow_run_id,
        payload={},
        received_at=timezone.now() - timedelta(minutes=5),
    )
    values = scrape()
    queue = clinical_queue.name
    assert values[("flowdesk_database_up", ())] == 1
    assert values[("flowdesk_queue_items", (("queue", queue), ("status", "open")))] == 1
    assert values[("flowdesk_queue_items", (("queue", queue), ("status", "claimed")))] == 0
    age = values[("flowdesk_queue_oldest_item_age_seconds", (("queue", queue),))]
    assert 2 * 3600 <= age < 2 * 3600 + 60
    assert values[("flowdesk_webhook_inbox_unprocessed", ())] == 1
    assert 300 <= values[("flowdesk_webhook_inbox_lag_seconds", ())] < 360
    assert values[("flowdesk_outbox_pending", ())] == 0
    assert values[("flowdesk_outbox_failed", ())] == 0
    assert values[("flowdesk_triage_runs", ())] == 0
    ReviewItem.objects.filter(pk=item.pk).update(status="superseded")
    values = scrape()
    assert values[("flowdesk_triage_runs", ())] == 1
    assert values[("flowdesk_queue_oldest_item_age_seconds", (("queue", queue),))] == 0


def test_flows_api_calls_are_counted_by_endpoint_template(token, db, settings):
    settings.FLOWS_CLIENT_ID, settings.FLOWS_CLIENT_SECRET = CLIENT_ID, CLIENT_SECRET
    endpoint = "GET /v1/flow-runs/{flowRunId}"
    before = scrape()
    with FaultyServer() as server:
        server.always("GET /v1/flow-runs/", respond(500, {"error": "api_error"}))
        client = metrics_client(server.url)
        with pytest.raises(Exception):  # noqa: B017 - the 500 is the point
            client.get_run("5b0f3c52-0000-4000-8000-000000000001")
    down = metrics_client(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(Exception):  # noqa: B017
        down.get_run("5b0f3c52-0000-4000-8000-000000000001")
    after = scrape()

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert delta("flowdesk_flows_api_errors_total", endpoint=endpoint, reason="http_5xx") == 1
    assert delta("flowdesk_flows_api_requests_total", endpoint=endpoint, code="5xx") == 1
    assert (
        delta("flowdesk_flows_api_errors_total", endpoint="POST /oauth/token", reason="connection")
        == 1
    )
    assert delta("flowdesk_flows_api_request_duration_seconds_count", endpoint=endpoint) == 1
    # No label names a Run.
    assert not any("5b0f3c52" in str(labels) for _, labels in after)


def metrics_client(url: str):
    from flows_integration.client import FlowsClient

    return FlowsClient(url, CLIENT_ID, CLIENT_SECRET, max_retries=0, read_timeout=2)


def test_a_failed_sign_in_is_counted(token, db, django_user_model):
    django_user_model.objects.create_user("carol", password="carol-password-1")
    before = metrics.LOGINS_FAILED._value.get()
    Client().post("/accounts/login/", {"username": "carol", "password": "wrong"})
    assert metrics.LOGINS_FAILED._value.get() == before + 1
    assert scrape()[("flowdesk_logins_failed_total", ())] == before + 1


def test_multiprocess_mode_sums_every_process(tmp_path, token, db, settings):
    """Three processes count (as gunicorn's and Celery's do) into one folder; /metrics sums."""
    code = "from config import metrics; metrics.LOGINS_FAILED.inc(2); metrics.LEASES_EXPIRED.inc(1)"
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    for _ in range(3):
        subprocess.run(
            [sys.executable, "-c", "import django; django.setup(); " + code],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=120,
        )
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    values = scrape()
    assert values[("flowdesk_logins_failed_total", ())] == 6
    assert values[("flowdesk_leases_expired_total", ())] == 3
    assert ("flowdesk_queue_items", ()) not in values  # no queue: no series, and no error
    assert values[("flowdesk_database_up", ())] == 1


def test_a_worker_serves_its_own_counters_under_the_token(token, db):
    """``METRICS_WORKER_PORT``: a worker's tasks count (a reconcile pass, expired leases) and its
    own endpoint serves them, without the database's gauges, which are the web's to serve."""
    from config import scrape
    from flows_integration import tasks as integration_tasks
    from reviewqueue import tasks as review_tasks

    passes = _count(metrics.RECONCILE_DURATION)
    assert integration_tasks.reconcile()["checked"] == 0  # no Run to ask about: no Flows API
    assert review_tasks.expire_leases() == 0
    assert _count(metrics.RECONCILE_DURATION) == passes + 1

    server = scrape.worker_serve(0, "127.0.0.1")
    try:
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        assert httpx.get(url, timeout=5).status_code == 401
        answer = httpx.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
        assert answer.status_code == 200
        names = {family.name for family in text_string_to_metric_families(answer.text)}
        assert {"flowdesk_reconcile_duration_seconds", "flowdesk_leases_expired"} <= names
        assert "flowdesk_database_up" not in names
    finally:
        server.shutdown()
        server.server_close()


def _count(histogram) -> float:
    return next(
        sample.value
        for family in histogram.collect()
        for sample in family.samples
        if sample.name.endswith("_count")
    )


def test_without_a_token_only_this_machine_itself_reads_them(db, settings):
    """Development: no token, answered to a connection from this machine; not to a header
    claiming it, nor through a proxy here."""
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics").status_code == 200
    spoofed = Client(REMOTE_ADDR="10.0.0.9").get(
        "/metrics", headers={"X-Forwarded-For": "127.0.0.1"}
    )
    assert spoofed.status_code == 404
    assert Client().get("/metrics", headers={"X-Forwarded-For": "10.0.0.9"}).status_code == 404


def test_without_a_token_a_foreign_host_name_is_refused(db, settings):
    """DNS rebinding: a page elsewhere has a browser on this machine ask by its own name."""
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", headers={"Host": "rebound.example"}).status_code == 404
