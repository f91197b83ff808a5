"""Delivering submissions with Update Run: against the real engine over HTTP (directly, and
through a faulty proxy that loses answers after the engine applied them) and against a
deliberately faulty Sohar-like server. Each fault ends as DESIGN.md says, with nothing lost and
no input applied twice."""

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import time_machine
from django.conf import settings as django_settings
from django.db import transaction
from django.utils import timezone

from audit.models import AuditEvent
from config.celery import app as celery_app
from flows_engine import services as engine_services
from flows_engine.models import Run as EngineRun
from flows_integration import client as flows_client
from flows_integration import services as integration
from flows_integration.models import FlowRun, FlowTemplate
from flows_integration.signals import run_status_changed
from reviewqueue import services
from reviewqueue.models import (
    Draft,
    ItemStatus,
    ReviewItem,
    Route,
    Submission,
    SubmissionStatus,
)
from tests.flows_integration.faulty_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    Behaviour,
    FaultyServer,
    Recorded,
    closed_port,
    drop,
    reset,
    respond,
)
from tests.flows_integration.test_loop import _point_broker_at
from tests.reviewqueue.conftest import CLINICAL_ANSWER, CLINICAL_INPUT, clinical_form_data
from tests.waiting import eventually

PUT = "PUT /v1/flow-runs/"
GET = "GET /v1/flow-runs/"
# Answered at once, without the client's own waits: a Retry-After beyond its backoff cap.
UNAVAILABLE = respond(503, {"error": "unavailable"}, headers={"Retry-After": "60"})


# --- Fixtures --------------------------------------------------------------------------------


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple[str, tuple, Any]]:
    """Tasks the services send, as (task, args, countdown), instead of reaching the broker; the
    tests run the task bodies themselves."""
    from flows_integration import tasks as integration_tasks
    from reviewqueue import tasks

    sent: list[tuple[str, tuple, Any]] = []

    def recorder(name: str):
        def apply_async(args: tuple = (), countdown: Any = None, **options: Any) -> None:
            sent.append((name, tuple(args), countdown))

        return apply_async

    monkeypatch.setattr(tasks.deliver_submission, "apply_async", recorder("deliver"))
    monkeypatch.setattr(integration_tasks.refresh_run, "apply_async", recorder("refresh"))
    return sent


@pytest.fixture
def faulty_api(settings) -> Iterator[FaultyServer]:
    """Flowdesk's client pointed at a Sohar-like server that tests can script faults into."""
    with FaultyServer() as server:
        settings.FLOWS_API_URL = server.url
        settings.FLOWS_CLIENT_ID = CLIENT_ID
        settings.FLOWS_CLIENT_SECRET = CLIENT_SECRET
        settings.FLOWS_CONNECT_TIMEOUT = 0.5
        settings.FLOWS_READ_TIMEOUT = 1.0
        flows_client.reset_client()
        yield server
    flows_client.reset_client()


def forward(engine_url: str, then: Behaviour | None = None) -> Behaviour:
    """Pass the request on to the real engine and answer what it answered, or, with ``then``,
    let the engine apply it and lose its answer that way (drop, reset, a gateway's 500)."""

    def behave(handler: Any, request: Recorded) -> None:
        headers = {
            name: value
            for name, value in request.headers.items()
            if name in ("authorization", "content-type", "accept")
        }
        answer = httpx.request(
            request.method, engine_url + request.path, content=request.body, headers=headers
        )
        if then is not None:
            then(handler, request)
            return
        handler.answer(
            answer.status_code,
            answer.content,
            answer.headers.get("content-type", "application/json"),
            {},
        )

    return behave


@pytest.fixture
def proxy(flows_api, live_server, settings) -> Iterator[FaultyServer]:
    """A faulty proxy in front of the real engine: forwards everything unless told otherwise."""
    with FaultyServer() as server:
        server.always("", forward(f"{live_server.url}/flows-api"))
        settings.FLOWS_API_URL = server.url
        flows_client.reset_client()
        yield server
    flows_client.reset_client()


@pytest.fixture
def engine_updates(monkeypatch) -> list[str]:
    """Every Update Run that reached the engine, counted engine-side whatever it answered."""
    received: list[str] = []
    real = engine_services.run_update

    def counting(**kwargs: Any) -> Any:
        received.append(str(kwargs["run_id"]))
        return real(**kwargs)

    monkeypatch.setattr(engine_services, "run_update", counting)
    return received


def engine_pending_item(clinical_queue) -> ReviewItem:
    """A real Run on the engine, paused at clinical review and mirrored, so its item is open.

    The engine's executor is driven directly (as its worker would) so no worker is needed."""
    integration.templates_import()
    Route.objects.get_or_create(
        template=FlowTemplate.objects.get(template_id="prior-authorization"),
        defaults={"queue": clinical_queue},
    )
    run = integration.run_create(
        template_id="prior-authorization", input_data=CLINICAL_INPUT, version=1
    )
    engine_services.run_advance(str(run.flow_run_id))
    integration.run_refresh(run.flow_run_id)
    return ReviewItem.objects.get(run__flow_run_id=run.flow_run_id)


@pytest.fixture
def engine_item(flows_api, clinical_queue) -> ReviewItem:
    return engine_pending_item(clinical_queue)


def submit(item: ReviewItem, user, answer: dict | None = None) -> Submission:
    services.item_claim(item=item, user=user)
    return services.submission_create(
        item=item,
        user=user,
        answer=CLINICAL_ANSWER if answer is None else answer,
        form_data=clinical_form_data(),
    )


def move(run: FlowRun, status: str, state_id: str = "") -> None:
    """Move the mirror as a sync does: write it and announce it in one transaction."""
    old_status = run.status
    with transaction.atomic():
        FlowRun.objects.filter(pk=run.pk).update(status=status, state_id=state_id)
        run.status, run.state_id = status, state_id
        run_status_changed.send(
            sender=FlowRun, run=run, old_status=old_status, new_status=status, state_id=state_id
        )


def engine_run(item: ReviewItem) -> EngineRun:
    return EngineRun.objects.get(pk=item.run.flow_run_id)


def actions(item: ReviewItem) -> list[str]:
    return list(AuditEvent.objects.filter(item_id=item.pk).values_list("action", flat=True))


def backoff_bounds(attempt: int) -> tuple[float, float]:
    ceiling = min(
        django_settings.REVIEW_SUBMIT_BACKOFF_MAX,
        django_settings.REVIEW_SUBMIT_BACKOFF * 2 ** (attempt - 1),
    )
    return ceiling / 2, ceiling


# --- The real engine -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_submission_reaches_the_engine_once_and_the_item_shows_the_run_resumed(
    engine_item, reviewer, enqueued, engine_updates
):
    submission = submit(engine_item, reviewer)
    assert enqueued == [("deliver", (submission.pk,), 0)]

    assert services.submission_deliver(submission.pk).outcome == "delivered"

    assert engine_updates == [str(engine_item.run.flow_run_id)]
    run = engine_run(engine_item)
    assert run.status == "IN_PROGRESS"
    assert run.state_outputs["clinical-review"] == CLINICAL_ANSWER
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.DELIVERED
    assert (submission.attempts, submission.maybe_sent) == (1, False)
    engine_item.refresh_from_db()
    assert engine_item.status == ItemStatus.DELIVERED
    assert not Draft.objects.filter(item=engine_item).exists()
    # Asking the engine at once shows "Run resumed" without waiting for a webhook.
    assert enqueued[-1] == ("refresh", (str(engine_item.run.flow_run_id),), None)
    integration.run_refresh(engine_item.run.flow_run_id)
    engine_item.refresh_from_db()
    assert engine_item.status == ItemStatus.RESUMED
    assert integration.health_get().is_failing is False
    # A second delivery task (acks_late redelivery) sends nothing more.
    assert services.submission_deliver(submission.pk).outcome == "busy"
    assert len(engine_updates) == 1


@pytest.mark.django_db(transaction=True)
def test_with_the_engine_down_the_submission_waits_then_is_delivered_once_it_is_back(
    engine_item, reviewer, enqueued, engine_updates, settings
):
    submission = submit(engine_item, reviewer)
    engine_url = settings.FLOWS_API_URL
    settings.FLOWS_API_URL = f"http://127.0.0.1:{closed_port()}/flows-api"
    flows_client.reset_client()
    enqueued.clear()

    # A still clock: the client's own retries against the closed port take real time, which
    # a loaded machine stretches; the next attempt is then exactly the chosen back-off away.
    before = timezone.now()
    with time_machine.travel(before, tick=False):
        assert services.submission_deliver(submission.pk).outcome == "retry"

    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.PENDING
    assert submission.attempts == 1
    assert submission.maybe_sent is False  # the connection was refused: nothing was sent
    assert submission.locked_until is None
    assert "was not sent" in submission.last_error
    low, high = backoff_bounds(1)
    [(task, args, countdown)] = enqueued
    assert (task, args) == ("deliver", (submission.pk,))
    assert low <= countdown <= high
    assert (submission.next_attempt_at - before).total_seconds() == pytest.approx(countdown)
    health = integration.health_get()
    assert health.is_failing and health.consecutive_failures >= 1
    engine_item.refresh_from_db()
    assert engine_item.status == ItemStatus.SENDING  # staff see it waiting, not lost
    assert engine_updates == []
    assert "submission.retry" in actions(engine_item)

    settings.FLOWS_API_URL = engine_url
    flows_client.reset_client()
    assert services.submission_deliver(submission.pk).outcome == "delivered"

    assert engine_updates == [str(engine_item.run.flow_run_id)]
    assert engine_run(engine_item).state_outputs["clinical-review"] == CLINICAL_ANSWER
    assert integration.health_get().is_failing is False
    submission.refresh_from_db()
    assert (submission.status, submission.attempts) == (SubmissionStatus.DELIVERED, 2)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    "lost",
    [drop(), reset(), respond(500, {"error": "internal"})],
    ids=["dropped", "reset", "gateway-500"],
)
def test_an_answer_lost_after_the_engine_applied_the_input_is_not_sent_again(
    proxy, clinical_queue, reviewer, enqueued, engine_updates, live_server, lost
):
    item = engine_pending_item(clinical_queue)
    submission = submit(item, reviewer)
    proxy.plan(PUT, forward(f"{live_server.url}/flows-api", then=lost))

    assert services.submission_deliver(submission.pk).outcome == "retry"

    assert len(engine_updates) == 1
    assert engine_run(item).status == "IN_PROGRESS"  # applied; we just do not know it
    submission.refresh_from_db()
    assert submission.maybe_sent is True
    assert submission.status == SubmissionStatus.PENDING

    assert services.submission_deliver(submission.pk).outcome == "delivered"

    assert len(engine_updates) == 1  # Get Run said it arrived: no second Update Run
    assert proxy.count(PUT) == 1
    assert proxy.count(GET) >= 1
    submission.refresh_from_db()
    assert (submission.status, submission.maybe_sent) == (SubmissionStatus.DELIVERED, False)
    assert not Draft.objects.filter(item=item).exists()


@pytest.mark.django_db(transaction=True)
def test_an_answer_lost_before_the_engine_saw_the_input_is_sent_again_once(
    proxy, clinical_queue, reviewer, enqueued, engine_updates
):
    item = engine_pending_item(clinical_queue)
    submission = submit(item, reviewer)
    proxy.plan(PUT, drop())  # the proxy reads the request and loses it

    assert services.submission_deliver(submission.pk).outcome == "retry"
    assert engine_updates == []

    assert services.submission_deliver(submission.pk).outcome == "delivered"

    assert len(engine_updates) == 1
    assert proxy.count(PUT) == 2
    assert engine_run(item).state_outputs["clinical-review"] == CLINICAL_ANSWER


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_call_is_swept_up_and_get_run_decides(
    engine_item, reviewer, enqueued, engine_updates, flows_api
):
    """The worker sent Update Run, the engine applied it, and the worker died before it wrote
    the outcome: the submission is held by a lease that runs out, then the sweep sends it to
    a worker, which asks Get Run first."""
    submission = submit(engine_item, reviewer)
    flows_api.update_run(str(engine_item.run.flow_run_id), CLINICAL_ANSWER)
    Submission.objects.filter(pk=submission.pk).update(
        maybe_sent=True, attempts=1, locked_until=timezone.now() + timedelta(minutes=1)
    )
    enqueued.clear()
    assert services.outbox_sweep() == 0  # still held by the dead worker's lease
    assert services.submission_deliver(submission.pk).outcome == "busy"

    Submission.objects.filter(pk=submission.pk).update(
        locked_until=timezone.now() - timedelta(seconds=1)
    )
    assert services.outbox_sweep() == 1
    assert enqueued == [("deliver", (submission.pk,), 0)]
    assert services.submission_deliver(submission.pk).outcome == "delivered"

    assert len(engine_updates) == 1  # the dead worker's call only
    submission.refresh_from_db()
    assert (submission.status, submission.attempts) == (SubmissionStatus.DELIVERED, 1)


@pytest.mark.django_db(transaction=True)
def test_a_400_gives_the_item_back_to_its_reviewer_with_the_error_on_the_field(
    engine_item, reviewer, enqueued, engine_updates
):
    incomplete = {key: value for key, value in CLINICAL_ANSWER.items() if key != "reviewer"}
    submission = submit(engine_item, reviewer, answer=incomplete)

    assert services.submission_deliver(submission.pk).outcome == "rejected"

    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.REJECTED
    assert submission.maybe_sent is False
    [(param, message)] = submission.field_errors
    assert param == "reviewer"
    assert "reviewer" in message
    engine_item.refresh_from_db()
    assert engine_item.status == ItemStatus.CLAIMED
    assert engine_item.claimed_by == reviewer
    assert engine_item.lease_held_by(reviewer)
    assert Draft.objects.get(item=engine_item, user=reviewer).data == clinical_form_data()
    assert engine_run(engine_item).status == "PENDING"
    assert integration.health_get().is_failing is False  # the API answered; the input was bad
    assert "submission.rejected" in actions(engine_item)

    # The reviewer corrects the answer and submits again: a new submission, delivered.
    again = services.submission_create(
        item=engine_item, user=reviewer, answer=CLINICAL_ANSWER, form_data=clinical_form_data()
    )
    assert again.pk != submission.pk
    assert services.submission_deliver(again.pk).outcome == "delivered"
    assert len(engine_updates) == 2
    assert engine_run(engine_item).state_outputs["clinical-review"] == CLINICAL_ANSWER


@pytest.mark.django_db(transaction=True)
def test_a_409_refuses_the_submission_supersedes_the_item_and_keeps_the_input(
    engine_item, reviewer, enqueued, engine_updates, flows_api
):
    submission = submit(engine_item, reviewer)
    # Another system answers the Run first; our mirror has not heard of it yet.
    other_answer = {**CLINICAL_ANSWER, "decision": "modify", "approvedUnits": 6}
    flows_api.update_run(str(engine_item.run.flow_run_id), other_answer)
    enqueued.clear()

    assert services.submission_deliver(submission.pk).outcome == "refused"

    assert len(engine_updates) == 2  # theirs, then ours answered 409
    assert engine_run(engine_item).state_outputs["clinical-review"] == other_answer
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.REFUSED
    assert submission.input == CLINICAL_ANSWER
    engine_item.refresh_from_db()
    assert engine_item.status == ItemStatus.SUPERSEDED
    assert engine_item.closed_at is not None
    assert Draft.objects.get(item=engine_item, user=reviewer).data == clinical_form_data()
    assert "submission.refused" in actions(engine_item)
    # The mirror still shows the old pause: no second item opens for a pause already answered,
    # and the mirror is asked to catch up.
    assert ReviewItem.objects.filter(run=engine_item.run).count() == 1
    assert ("refresh", (str(engine_item.run.flow_run_id),), None) in enqueued
    integration.run_refresh(engine_item.run.flow_run_id)
    assert ReviewItem.objects.filter(run=engine_item.run).count() == 1
    assert FlowRun.objects.get(pk=engine_item.run.pk).status == "IN_PROGRESS"


@pytest.mark.django_db(transaction=True)
def test_a_submission_lost_with_the_broker_is_swept_up_and_delivered_by_a_worker(
    engine_item, reviewer, engine_updates
):
    real_broker = celery_app.conf.broker_url
    real_options = dict(celery_app.conf.broker_transport_options or {})
    # Nothing listens on port 1: the task cannot be queued when the submission commits.
    _point_broker_at("redis://127.0.0.1:1/0", django_settings.CELERY_BROKER_TRANSPORT_OPTIONS)
    try:
        submission = submit(engine_item, reviewer)
    finally:
        _point_broker_at(real_broker, real_options)
    assert Submission.objects.get(pk=submission.pk).status == SubmissionStatus.PENDING

    from celery.contrib.testing.worker import start_worker

    celery_app.control.purge()
    with start_worker(celery_app, pool="threads", perform_ping_check=False):
        assert services.outbox_sweep() == 1
        eventually(
            lambda: ReviewItem.objects.filter(
                pk=engine_item.pk, status__in=[ItemStatus.DELIVERED, ItemStatus.RESUMED]
            ).exists(),
            what="the worker to deliver the swept submission",
        )
    assert len(engine_updates) == 1
    assert Submission.objects.get(pk=submission.pk).status == SubmissionStatus.DELIVERED


# --- A faulty Sohar-like server ---------------------------------------------------------------


@pytest.mark.django_db
def test_after_the_last_attempt_the_item_needs_attention_and_nothing_is_dropped(
    faulty_api, item, reviewer, supervisor, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.REVIEW_SUBMIT_ATTEMPTS = 3
    bad_gateway = respond(502, {"error": "bad_gateway"})
    faulty_api.plan(PUT, bad_gateway)
    submission = submit(item, reviewer)

    outcomes = [services.submission_deliver(submission.pk).outcome for _ in range(3)]

    assert outcomes == ["retry", "retry", "failed"]
    # A 5xx may come after the server applied the call: Get Run before each later attempt.
    # Sohar's says only PENDING, and a later pause (supervisor sign-off) could be waiting: the
    # answer is not sent again blindly.
    assert faulty_api.count(PUT) == 1
    assert faulty_api.count(GET) == 2
    submission.refresh_from_db()
    assert submission.status == SubmissionStatus.FAILED
    assert submission.input == CLINICAL_ANSWER
    item.refresh_from_db()
    assert item.status == ItemStatus.NEEDS_ATTENTION
    assert item.is_active  # still in the queue, for a supervisor
    assert Draft.objects.filter(item=item, user=reviewer).exists()
    assert actions(item)[-3:] == ["submission.retry", "submission.unconfirmed", "submission.failed"]
    assert services.outbox_sweep() == 0  # failed is not retried blindly...

    # ...a supervisor who finds it did not arrive sends it again once the API is back.
    enqueued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        services.submission_retry(item=item, user=supervisor, arrived=False)
    assert enqueued == [("deliver", (submission.pk,), 0)]
    assert services.submission_deliver(submission.pk).outcome == "delivered"
    assert faulty_api.count(PUT) == 2
    item.refresh_from_db()
    assert item.status == ItemStatus.DELIVERED


@pytest.mark.django_db
def test_a_refusal_that_no_retry_can_help_needs_attention_at_once(
    faulty_api, item, reviewer, enqueued
):
    faulty_api.always(PUT, respond(404, {"error": "not_found", "param": "flowRunId"}))
    submission = submit(item, reviewer)

    assert services.submission_deliver(submission.pk).outcome == "failed"

    item.refresh_from_db()
    assert item.status == ItemStatus.NEEDS_ATTENTION
    assert faulty_api.count(PUT) == 1


@pytest.mark.django_db
def test_an_unknown_outcome_survives_a_failing_get_run(faulty_api, item, reviewer, enqueued):
    """Update Run lost its answer, then Get Run failed too: the next attempt must still ask
    Get Run before sending, or the input could be applied twice."""
    submission = submit(item, reviewer)
    faulty_api.plan(PUT, drop())
    faulty_api.plan(GET, UNAVAILABLE)

    assert services.submission_deliver(submission.pk).outcome == "retry"  # PUT lost
    assert services.submission_deliver(submission.pk).outcome == "retry"  # Get Run failed
    submission.refresh_from_db()
    assert submission.maybe_sent is True

    faulty_api.run_fields = {"status": "IN_PROGRESS", "output": {}}  # it had arrived
    assert services.submission_deliver(submission.pk).outcome == "delivered"
    assert faulty_api.count(PUT) == 1


@pytest.mark.django_db
def test_an_api_that_stays_down_for_get_run_still_ends_in_needs_attention(
    faulty_api, item, reviewer, enqueued, settings
):
    settings.REVIEW_SUBMIT_ATTEMPTS = 3
    submission = submit(item, reviewer)
    faulty_api.plan(PUT, drop())
    faulty_api.always(GET, UNAVAILABLE)

    outcomes = [services.submission_deliver(submission.pk).outcome for _ in range(3)]

    assert outcomes == ["retry", "retry", "failed"]
    assert faulty_api.count(PUT) == 1
    item.refresh_from_db()
    assert item.status == ItemStatus.NEEDS_ATTENTION


@pytest.mark.django_db
def test_a_run_that_paused_elsewhere_while_sending_gets_nothing_of_ours(
    faulty_api, pending_run, reviewer, enqueued
):
    """Update Run names no state: input sent while the Run waits at another pause would be
    taken as the answer to that pause. The mirror says it moved on, so nothing is sent, and
    the new pause gets its own item."""
    run = pending_run()
    item = run.review_items.get()
    submission = submit(item, reviewer)

    move(run, "IN_PROGRESS")
    move(run, "PENDING", "supervisor-signoff")
    item.refresh_from_db()
    assert item.status == ItemStatus.SENDING  # left to its delivery, which decides

    assert services.submission_deliver(submission.pk).outcome == "refused"

    assert faulty_api.count(PUT) == 0
    item.refresh_from_db()
    assert item.status == ItemStatus.SUPERSEDED
    assert Draft.objects.filter(item=item, user=reviewer).exists()
    new = ReviewItem.objects.get(run=run, episode=2)
    assert (new.state_id, new.status) == ("supervisor-signoff", ItemStatus.OPEN)


@pytest.mark.django_db
def test_outbox_sweep_resends_only_what_is_due_and_held_by_no_worker(
    pending_run, reviewer, enqueued
):
    now = timezone.now()

    def waiting(**fields: Any) -> Submission:
        item = pending_run().review_items.get()
        submission = submit(item, reviewer)
        Submission.objects.filter(pk=submission.pk).update(**fields)
        return submission

    lost = waiting(next_attempt_at=now - timedelta(minutes=5))
    lease_ran_out = waiting(locked_until=now - timedelta(seconds=1), maybe_sent=True)
    waiting(locked_until=now + timedelta(minutes=1))  # a worker is sending it
    waiting(next_attempt_at=now + timedelta(minutes=1))  # backing off
    waiting(status=SubmissionStatus.FAILED)  # a supervisor's decision now
    waiting(status=SubmissionStatus.DELIVERED)
    enqueued.clear()

    assert services.outbox_sweep() == 2

    assert sorted(args for _, args, _ in enqueued) == sorted([(lost.pk,), (lease_ran_out.pk,)])


@pytest.mark.django_db
def test_a_mirror_that_lost_track_of_the_state_does_not_stop_a_delivery(
    faulty_api, item, reviewer, enqueued
):
    """Without Sohar's stateId a sync may leave a PENDING Run's state blank: unknown is not
    "moved on", so the answer is still sent."""
    submission = submit(item, reviewer)
    FlowRun.objects.filter(pk=item.run_id).update(state_id="", state_unresolved=True)

    assert services.submission_deliver(submission.pk).outcome == "delivered"

    assert faulty_api.count(PUT) == 1


@pytest.mark.django_db
def test_a_retry_waits_at_least_as_long_as_retry_after_says(
    faulty_api, item, reviewer, enqueued, settings, django_capture_on_commit_callbacks
):
    settings.REVIEW_SUBMIT_BACKOFF = 1.0
    faulty_api.plan(PUT, UNAVAILABLE)
    submission = submit(item, reviewer)
    enqueued.clear()

    now = timezone.now()
    with (
        time_machine.travel(now, tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert services.submission_deliver(submission.pk).outcome == "retry"

    submission.refresh_from_db()
    assert submission.next_attempt_at == now + timedelta(seconds=60)
    assert [countdown for task, _, countdown in enqueued if task == "deliver"] == [60]
