"""The whole loop over real HTTP: engine webhooks → receiver → inbox → worker → mirror."""

import pytest
from django.conf import settings as django_settings

from config.celery import app as celery_app
from flows_engine import webhooks as engine_webhooks
from flows_integration import services
from flows_integration.models import FlowRun, WebhookEvent
from tests.waiting import eventually

pytestmark = pytest.mark.django_db(transaction=True)

COVERAGE_INPUT = {
    "patient": {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"},
    "payerId": "60054",
}


def test_a_run_pausing_arrives_in_the_mirror_through_webhooks(
    flows_api, receiver_registered, celery_worker, status_changes
):
    run = services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT, version=1)

    mirror = eventually(
        lambda: FlowRun.objects.filter(flow_run_id=run.flow_run_id, status="PENDING").first(),
        what="the mirror to show PENDING",
    )
    assert mirror.state_id == "collect-member-id"
    eventually(
        lambda: not WebhookEvent.objects.filter(processed_at__isnull=True).exists(),
        what="every inbox event to be processed",
    )
    assert WebhookEvent.objects.filter(flow_run_id=run.flow_run_id).count() >= 2
    assert [change[2] for change in status_changes] == ["PENDING"]

    flows_api.update_run(str(run.flow_run_id), {"memberId": "00000000"})
    eventually(
        lambda: FlowRun.objects.filter(flow_run_id=run.flow_run_id, status="COMPLETE").exists(),
        what="the mirror to show COMPLETE",
    )
    mirror.refresh_from_db()
    assert mirror.output["enteredMemberId"] == "00000000"


def _point_broker_at(url: str, transport_options: dict) -> None:
    """Switch the app's broker; its cached pools would otherwise keep the old connection.
    (kombu keeps one pool per broker URL, so each URL's pool stays usable for later.)"""
    celery_app.conf.broker_url = url
    # Celery resolves the read and write URLs from broker_url once; publishing uses the write
    # URL, so without these a "broker down" test would still publish to the real Redis.
    celery_app.conf.broker_write_url = url
    celery_app.conf.broker_read_url = url
    # The file-system broker is named by its transport (config.broker), which outranks the
    # URL's scheme: keep it only for the file-system URL.
    celery_app.conf.broker_transport = (
        getattr(django_settings, "CELERY_BROKER_TRANSPORT", None)
        if url == "filesystem://"
        else None
    )
    celery_app.conf.broker_transport_options = transport_options
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


def test_with_the_broker_down_webhooks_still_get_2xx_and_are_processed_later(
    flows_api, receiver_registered, monkeypatch
):
    from flows_integration import tasks

    # Every publish the receiver makes, as (retry asked for, events carried, what the broker
    # answered). A publish with retries is what would hold the webhook's answer; counted, not
    # timed, so a loaded machine cannot decide it.
    publishes: list[tuple[object, int, str]] = []
    publish = tasks.process_events.apply_async

    def recording_publish(*args, **kwargs):
        carried = len(kwargs["args"][0])
        try:
            result = publish(*args, **kwargs)
        except Exception as exc:
            publishes.append((kwargs.get("retry"), carried, type(exc).__name__))
            raise
        publishes.append((kwargs.get("retry"), carried, "queued"))
        return result

    monkeypatch.setattr(tasks.process_events, "apply_async", recording_publish)
    real_broker = celery_app.conf.broker_url
    real_options = dict(celery_app.conf.broker_transport_options or {})
    # Nothing listens on port 1: a real broker connection that is refused at once.
    _point_broker_at("redis://127.0.0.1:1/0", django_settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    try:
        run = services.run_create(
            template_id="coverage-check", input_data=COVERAGE_INPUT, version=1
        )
        # The engine's own tasks cannot be queued either; drive its executor directly and
        # deliver its webhooks by hand, as its worker would.
        from flows_engine import services as engine_services
        from flows_engine.models import WebhookMessage

        engine_services.run_advance(str(run.flow_run_id))
        for message in WebhookMessage.objects.all():
            attempt = engine_webhooks.message_deliver(message.pk)
            assert attempt is not None and attempt.response_status == 200
        unprocessed = WebhookEvent.objects.filter(processed_at__isnull=True).count()
        assert unprocessed >= 2
        # The receiver publishes its events a moment after storing them: wait for every one to
        # have been tried while the broker is still down.
        eventually(
            lambda: (
                sum(carried for retry, carried, _ in publishes if retry is False) == unprocessed
            ),
            what="the receiver to try publishing its events",
        )
    finally:
        _point_broker_at(real_broker, real_options)
    # The receiver tried the broker without retries, met it down and answered anyway. (A
    # task's own retry, from a worker thread of an earlier test, publishes with retry unset; it
    # is not the receiver's.)
    assert "queued" not in [outcome for retry, _, outcome in publishes if retry is False]
    monkeypatch.undo()

    # The broker is back: the sweeper finds the unprocessed events and a worker handles them.
    WebhookEvent.objects.update(
        received_at=WebhookEvent.objects.first().received_at.replace(year=2000)
    )
    from celery.contrib.testing.worker import start_worker

    with start_worker(celery_app, pool="threads", perform_ping_check=False):
        assert services.events_sweep() >= 2
        eventually(
            lambda: FlowRun.objects.filter(flow_run_id=run.flow_run_id, status="PENDING").exists(),
            what="the mirror to catch up",
        )
        eventually(
            lambda: not WebhookEvent.objects.filter(processed_at__isnull=True).exists(),
            what="the inbox to drain",
        )
