"""A web process publishes the events it stores together: one task per moment, not per event,
and every event in a task published after its row was committed."""

import logging
import os
import threading
import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from flows_integration import services
from flows_integration.models import WebhookEvent
from tests.waiting import eventually


@pytest.fixture
def published(monkeypatch) -> list[list[int]]:
    """The event ids of each task published, in order, instead of reaching the broker."""
    tasks: list[list[int]] = []
    monkeypatch.setattr(services, "_publish_events", lambda event_ids: tasks.append(event_ids))
    return tasks


def test_the_events_of_a_window_go_in_one_task(monkeypatch, published):
    monkeypatch.setattr(services, "INBOX_PUBLISH_WINDOW", 60)

    for event_id in (11, 12, 13):
        services._enqueue_event(event_id)
    assert published == []  # the window is still open

    services._events_to_publish.flush()
    assert published == [[11, 12, 13]]


def test_an_event_alone_is_published_when_its_window_ends(monkeypatch, published):
    monkeypatch.setattr(services, "INBOX_PUBLISH_WINDOW", 0.05)

    services._enqueue_event(21)

    assert eventually(lambda: published, what="the window's publish") == [[21]]


def test_a_drains_worth_of_events_is_published_at_once(monkeypatch, published):
    monkeypatch.setattr(services, "INBOX_PUBLISH_WINDOW", 60)

    for event_id in range(services.INBOX_BATCH):
        services._enqueue_event(event_id)

    assert published == [list(range(services.INBOX_BATCH))]


def test_an_event_stored_while_a_publish_is_underway_goes_in_the_next(monkeypatch):
    monkeypatch.setattr(services, "INBOX_PUBLISH_WINDOW", 0.05)
    underway, release = threading.Event(), threading.Event()
    published: list[list[int]] = []

    def slow_first_publish(event_ids: list[int]) -> None:
        if not published:
            underway.set()
            release.wait(timeout=30)
        published.append(event_ids)

    monkeypatch.setattr(services, "_publish_events", slow_first_publish)
    services._enqueue_event(31)
    assert underway.wait(timeout=30)

    services._enqueue_event(32)
    release.set()

    eventually(lambda: len(published) == 2, what="the second publish")
    assert sorted(published) == [[31], [32]]


def test_a_failed_publish_is_logged_without_raising_and_left_to_the_sweeper(monkeypatch, caplog):
    def broker_down(event_ids: list[int]) -> None:
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(services, "_publish_events", broker_down)
    monkeypatch.setattr(services, "INBOX_PUBLISH_WINDOW", 60)
    services._enqueue_event(41)

    with caplog.at_level(logging.ERROR, logger=services.logger.name):
        services._events_to_publish.flush()

    assert [record.getMessage() for record in caplog.records] == [
        "Publishing 1 inbox events failed"
    ]
    # Not held for another try: the row is stored, and the sweeper re-sends what waits.
    services._events_to_publish.flush()
    assert len(caplog.records) == 1


@pytest.mark.django_db
def test_the_sweeper_resends_waiting_events_a_drains_worth_per_task(monkeypatch, published):
    monkeypatch.setattr(services, "INBOX_BATCH", 2)
    long_ago = timezone.now() - services.INBOX_GRACE - timedelta(minutes=1)
    events = WebhookEvent.objects.bulk_create(
        WebhookEvent(
            svix_id=f"msg_{uuid.uuid4().hex}",
            event_type="flow.updated",
            flow_run_id=uuid.uuid4(),
            payload={},
            received_at=long_ago,
        )
        for _ in range(5)
    )

    assert services.events_sweep() == 5

    assert [len(task) for task in published] == [2, 2, 1]
    assert sorted(sum(published, [])) == sorted(event.pk for event in events)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_holds_none_of_its_parents_events(monkeypatch, published):
    monkeypatch.setattr(services, "INBOX_PUBLISH_WINDOW", 60)
    services._enqueue_event(51)

    child = os.fork()
    if child == 0:  # pragma: no cover (the child's verdict is its exit code)
        holder = services._events_to_publish
        os._exit(0 if holder._take() == [] and holder._timer is None else 1)
    _, status = os.waitpid(child, 0)

    assert os.waitstatus_to_exitcode(status) == 0
    services._events_to_publish.flush()
    assert published == [[51]]  # the parent still publishes its own
