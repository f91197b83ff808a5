"""A reconcile chunk opens and closes its items set-wise: the same items, statuses and audit
rows as one Run at a time, with a number of statements that does not grow with the chunk."""

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from flows_integration import client, services
from flows_integration.models import FlowRun
from reviewqueue import services as review
from reviewqueue.models import ItemStatus, ReviewItem, Submission
from tests.reviewqueue.conftest import CLINICAL_INPUT, CLINICAL_REVIEW, clinical_form_data

pytestmark = pytest.mark.django_db


def running(version, count: int) -> list[FlowRun]:
    return [
        FlowRun.objects.create(
            flow_run_id=uuid.uuid4(),
            template=version.template,
            version=version,
            status="IN_PROGRESS",
            input_data=CLINICAL_INPUT,
        )
        for _ in range(count)
    ]


def reconcile_chunk(runs: list[FlowRun], status: str, state_id: str | None = None) -> None:
    answers = [
        client.RunInfo(flow_run_id=str(run.flow_run_id), status=status, state_id=state_id)
        for run in runs
    ]
    services.mirror_apply_many(answers, versions=services.VersionCache())


def statements(version, count: int) -> tuple[int, int]:
    """Statements of a chunk that pauses ``count`` Runs, then of one that finishes them."""
    runs = running(version, count)
    with CaptureQueriesContext(connection) as opened:
        reconcile_chunk(runs, "PENDING", CLINICAL_REVIEW)
    with CaptureQueriesContext(connection) as closed:
        reconcile_chunk(runs, "COMPLETE")
    return len(opened.captured_queries), len(closed.captured_queries)


def test_a_chunk_opens_an_item_per_paused_run_as_one_by_one_would(
    prior_auth_version, clinical_queue
):
    runs = running(prior_auth_version, 3)

    reconcile_chunk(runs, "PENDING", CLINICAL_REVIEW)

    items = ReviewItem.objects.filter(run__in=runs).order_by("run_id")
    assert [item.run_id for item in items] == sorted(run.pk for run in runs)
    for item in items:
        assert (item.status, item.state_id, item.queue, item.episode) == (
            ItemStatus.OPEN,
            CLINICAL_REVIEW,
            clinical_queue,
            1,
        )
        assert item.priority == 50
        assert item.patient_name == "Maria Lopez"
        assert item.due_at == item.opened_at + clinical_queue.sla
    opened = AuditEvent.objects.filter(action="item.opened")
    assert sorted(event.item_id for event in opened) == sorted(item.pk for item in items)
    assert opened.first().detail == {"queue": clinical_queue.pk, "state": CLINICAL_REVIEW}


def test_statements_do_not_grow_with_the_chunk(prior_auth_version):
    assert statements(prior_auth_version, 2) == statements(prior_auth_version, 20)


def test_a_chunk_closes_items_as_one_by_one_would(prior_auth_version, reviewer):
    runs = running(prior_auth_version, 3)
    reconcile_chunk(runs, "PENDING", CLINICAL_REVIEW)
    claimed, sent, untouched = (run.review_items.get() for run in runs)
    review.item_claim(item=claimed, user=reviewer)
    review.item_claim(item=sent, user=reviewer)
    submission = review.submission_create(
        item=sent, user=reviewer, answer={"decision": "approve"}, form_data=clinical_form_data()
    )
    ReviewItem.objects.filter(pk=sent.pk).update(status=ItemStatus.DELIVERED)
    Submission.objects.filter(pk=submission.pk).update(status="delivered")

    reconcile_chunk(runs, "COMPLETE")

    claimed.refresh_from_db()
    sent.refresh_from_db()
    untouched.refresh_from_db()
    assert (claimed.status, claimed.claimed_by, claimed.closed_at is not None) == (
        ItemStatus.SUPERSEDED,
        None,
        True,
    )
    assert sent.status == ItemStatus.RESUMED
    assert untouched.status == ItemStatus.SUPERSEDED
    actions = dict(
        AuditEvent.objects.filter(action__in=["item.superseded", "item.resumed"]).values_list(
            "item_id", "action"
        )
    )
    assert actions == {
        claimed.pk: "item.superseded",
        sent.pk: "item.resumed",
        untouched.pk: "item.superseded",
    }


def test_a_run_moving_to_its_next_pause_gets_a_new_item(prior_auth_version):
    (run,) = running(prior_auth_version, 1)
    reconcile_chunk([run], "PENDING", CLINICAL_REVIEW)

    reconcile_chunk([run], "PENDING", "supervisor-signoff")

    first, second = run.review_items.order_by("episode")
    assert (first.state_id, first.status) == (CLINICAL_REVIEW, ItemStatus.SUPERSEDED)
    assert (second.state_id, second.status, second.episode) == (
        "supervisor-signoff",
        ItemStatus.OPEN,
        2,
    )
