"""The inbox drains batch-wise: one Get Run per Run of a batch of waiting events, the answers
written set-wise, every event processed once, a failing Run holding back only its own events.

Against a Sohar-like server over real HTTP: its Get Run names no state and no template, so the
webhooks' ``stateId`` decides where each Run waits, and the Run's template by that state.
"""

import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from flows_integration import client, services
from flows_integration.models import FlowRun, WebhookEvent
from reviewqueue.models import ItemStatus, ReviewItem
from tests.concurrency import at_once
from tests.flows_integration.faulty_server import respond, slow
from tests.flows_integration.sohar_like import SoharLikeServer, flowdesk_pointed_at
from tests.reviewqueue.test_unconfirmed import TWO_PAUSES

pytestmark = pytest.mark.django_db(transaction=True)

GET_RUN = "GET /v1/flow-runs/"


@pytest.fixture
def sohar(settings) -> Iterator[SoharLikeServer]:
    with flowdesk_pointed_at(SoharLikeServer(["first-look", "second-look"]), settings) as server:
        yield server


@pytest.fixture
def two_looks(transactional_db):
    """Two callback states: the version alone cannot tell where a Run waits."""
    return services.version_store(template_id="two-looks", number=1, source=TWO_PAUSES)


def store(*events: tuple[str, str, str]) -> list[WebhookEvent]:
    """Inbox rows ``(flow_run_id, status, stateId)``, received a millisecond apart in this
    order; stored directly, so that no worker races the test for them."""
    start = timezone.now() - timedelta(seconds=10)
    rows = []
    for i, (run_id, status, state_id) in enumerate(events):
        payload = {"event": "flow.updated", "flowRunId": run_id, "status": status}
        if state_id:
            payload["stateId"] = state_id
        rows.append(
            WebhookEvent(
                svix_id=f"msg_{uuid.uuid4().hex}",
                event_type="flow.updated",
                flow_run_id=run_id,
                status=status,
                state_id=state_id,
                payload=payload,
                received_at=start + timedelta(milliseconds=i),
            )
        )
    return WebhookEvent.objects.bulk_create(rows)


def get_runs_by_run(server: SoharLikeServer) -> Counter[str]:
    return Counter(request.path.rsplit("/", 1)[-1] for request in server.requests_to(GET_RUN))


def unprocessed() -> set[str]:
    return {
        str(run_id)
        for run_id in WebhookEvent.objects.filter(processed_at__isnull=True).values_list(
            "flow_run_id", flat=True
        )
    }


def test_a_batch_of_events_for_many_runs_asks_once_per_run_and_opens_every_item(
    sohar, two_looks, status_changes
):
    runs = [sohar.start_run() for _ in range(30)]
    # Two events per Run, interleaved as a burst would bring them.
    events = store(
        *[(run_id, "IN_PROGRESS", "") for run_id in runs],
        *[(run_id, "PENDING", "first-look") for run_id in runs],
    )

    drained = services.events_process([events[-1].pk])

    assert drained is not None
    assert (drained.processed, len(drained.changed), drained.failed) == (60, 30, {})
    assert get_runs_by_run(sohar) == Counter(runs)
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    mirrors = FlowRun.objects.filter(flow_run_id__in=runs)
    assert {(run.status, run.state_id, run.version_id) for run in mirrors} == {
        ("PENDING", "first-look", two_looks.pk)
    }
    assert sorted(change[0] for change in status_changes) == sorted(runs)
    items = ReviewItem.objects.filter(run__flow_run_id__in=runs)
    assert items.count() == 30
    assert {(item.status, item.state_id) for item in items} == {(ItemStatus.OPEN, "first-look")}
    # The other events' own tasks find nothing to do, without asking the server again.
    assert services.events_process([events[0].pk]) is None
    assert len(sohar.requests_to(GET_RUN)) == 30


def test_a_batch_writes_with_a_number_of_statements_that_does_not_grow_with_it(sohar, two_looks):
    def statements(count: int) -> int:
        events = store(*[(sohar.start_run(), "PENDING", "first-look") for _ in range(count)])
        with CaptureQueriesContext(connection) as queries:
            drained = services.events_process([events[0].pk])
        assert drained is not None and drained.processed == count
        return len(queries.captured_queries)

    services.health_get()
    statements(2)  # what is read or made once (the health row, the default queue)
    assert statements(5) == statements(40)


def test_a_drain_takes_its_tasks_events_and_the_oldest_others(sohar, two_looks):
    events = store(*[(sohar.start_run(), "PENDING", "first-look") for _ in range(10)])

    drained = services.events_process([events[-2].pk, events[-1].pk], batch=3)

    assert drained is not None and drained.processed == 5
    taken = {str(event.flow_run_id) for event in events[:3] + events[-2:]}
    assert set(get_runs_by_run(sohar)) == taken
    assert unprocessed() == {str(event.flow_run_id) for event in events[3:-2]}


def test_a_failing_get_run_holds_back_only_that_runs_events(sohar, two_looks):
    failing, *fine = [sohar.start_run() for _ in range(4)]
    events = store(*[(run_id, "PENDING", "first-look") for run_id in [failing, *fine, failing]])
    # 500: a failure that may pass, which the client does not retry itself.
    sohar.plan(f"{GET_RUN}{failing}", respond(500, {"error": "api_error"}))

    drained = services.events_process([events[1].pk])

    assert drained is not None
    assert (drained.processed, list(drained.failed)) == (3, [uuid.UUID(failing)])
    assert unprocessed() == {failing}
    assert WebhookEvent.objects.filter(flow_run_id=failing, processed_at=None).count() == 2
    assert ReviewItem.objects.filter(run__flow_run_id__in=fine).count() == 3
    assert not FlowRun.objects.filter(flow_run_id=failing).exists()

    # A task holding one of the failing Run's events raises, so that Celery retries it; the
    # others stay done.
    sohar.plan(f"{GET_RUN}{failing}", respond(503, {"error": "api_error"}, {"Retry-After": "60"}))
    with pytest.raises(client.TransientFlowsError):
        services.events_process([events[1].pk, events[0].pk])
    assert unprocessed() == {failing}

    # The retry, once the server answers again.
    retried = services.events_process([events[0].pk])
    assert retried is not None and retried.processed == 2
    assert not unprocessed()
    assert ReviewItem.objects.filter(run__flow_run_id=failing).count() == 1


def test_the_webhooks_state_places_each_run_when_get_run_names_none(sohar, two_looks):
    first, second, late = (sohar.start_run() for _ in range(3))
    sohar.apply_update(second, {"note": "seen"})  # now waiting at second-look
    events = store(
        (first, "PENDING", "first-look"),
        (second, "PENDING", "first-look"),
        (second, "IN_PROGRESS", "first-look"),
        (second, "PENDING", "second-look"),
        (late, "PENDING", "first-look"),
        # Delivered late (no order is guaranteed): it does not erase where the Run waits.
        (late, "IN_PROGRESS", ""),
    )

    services.events_process([events[0].pk])

    placed = dict(
        FlowRun.objects.filter(flow_run_id__in=[first, second, late]).values_list(
            "flow_run_id", "state_id"
        )
    )
    assert {str(run_id): state for run_id, state in placed.items()} == {
        first: "first-look",
        second: "second-look",
        late: "first-look",
    }
    assert not FlowRun.objects.filter(state_unresolved=True).exists()
    items = {(str(item.run.flow_run_id), item.state_id) for item in ReviewItem.objects.all()}
    assert items == {(first, "first-look"), (second, "second-look"), (late, "first-look")}


# --- Concurrent drains (PostgreSQL: SKIP LOCKED) ----------------------------------------------


postgresql_only = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="two drains are kept apart by row locks and SKIP LOCKED: PostgreSQL only "
    "(set DATABASE_URL to a PostgreSQL database)",
)


@postgresql_only
def test_concurrent_drains_never_take_the_same_event(sohar, two_looks):
    runs = [sohar.start_run() for _ in range(120)]
    events = store(*[(run_id, "PENDING", "first-look") for run_id in runs])
    # Slow answers keep each drain's claim open while the others claim theirs.
    sohar.always(GET_RUN, slow(0.02))

    drains = at_once(4, lambda i: services.events_process([events[i * 30].pk], batch=40))

    assert not [drain for drain in drains if isinstance(drain, Exception)], drains
    assert sum(1 for drain in drains if drain is not None and drain.processed) >= 2
    processed = sum(drain.processed for drain in drains if drain is not None)
    while (left := WebhookEvent.objects.filter(processed_at=None).first()) is not None:
        again = services.events_process([left.pk])
        processed += again.processed if again is not None else 0
    assert processed == 120
    # Each Run has one event: a Run asked twice would be an event taken twice.
    assert get_runs_by_run(sohar) == Counter(runs)
    assert ReviewItem.objects.count() == 120


@postgresql_only
def test_concurrent_drains_over_runs_split_between_them_end_without_deadlock(sohar, two_looks):
    runs = [sohar.start_run() for _ in range(60)]
    events = store(
        *[(run_id, "IN_PROGRESS", "") for run_id in runs],
        *[(run_id, "PENDING", "first-look") for run_id in runs],
    )
    sohar.always(GET_RUN, slow(0.02))

    drains = at_once(4, lambda i: services.events_process([events[i * 30].pk], batch=25))

    # A deadlock would have ended one of them with an error.
    assert not [drain for drain in drains if isinstance(drain, Exception)], drains
    # What the four did not take, later drains do.
    while (left := WebhookEvent.objects.filter(processed_at=None).first()) is not None:
        services.events_process([left.pk])
    assert ReviewItem.objects.filter(status=ItemStatus.OPEN).count() == 60
    assert set(FlowRun.objects.values_list("state_id", flat=True)) == {"first-look"}
