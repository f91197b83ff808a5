"""Races the database settles, with real threads on PostgreSQL: twenty people claiming one item,
eight people pressing "get next" over a thousand items, and a double submit from two tabs while
deliveries race each other to the real engine."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.utils import timezone

from audit.models import AuditEvent
from flows_integration.models import FlowRun
from reviewqueue import services
from reviewqueue.models import (
    ItemStatus,
    NextItemStrategy,
    Queue,
    ReviewItem,
    Submission,
    SubmissionStatus,
)
from tests.concurrency import at_once
from tests.reviewqueue import test_delivery
from tests.reviewqueue.conftest import CLINICAL_ANSWER, CLINICAL_REVIEW, clinical_form_data
from tests.reviewqueue.test_delivery import engine_pending_item
from tests.waiting import eventually

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="races need real row locks and SKIP LOCKED: PostgreSQL only "
        "(set DATABASE_URL to a PostgreSQL database)",
    ),
    pytest.mark.django_db(transaction=True),
]

# Every Update Run the engine received, counted engine-side.
engine_updates = test_delivery.engine_updates


def clinical_team(django_user_model, count: int) -> list:
    """``count`` reviewers of the Clinical team, named reviewer00, reviewer01, ..."""
    team = Group.objects.get_or_create(name="Clinical team")[0]
    people = [django_user_model.objects.create_user(f"reviewer{i:02}") for i in range(count)]
    team.user_set.add(*people)
    return people


def test_twenty_people_claiming_one_item_one_wins_and_the_rest_see_who(item, django_user_model):
    people = clinical_team(django_user_model, 20)

    results = at_once(
        20,
        lambda i: services.item_claim(item=ReviewItem.objects.get(pk=item.pk), user=people[i]),
    )

    winners = [people[i] for i, result in enumerate(results) if isinstance(result, ReviewItem)]
    assert len(winners) == 1
    [winner] = winners
    refusals = [result for result in results if not isinstance(result, ReviewItem)]
    assert len(refusals) == 19
    assert all(type(refusal) is services.ReviewError for refusal in refusals)
    assert {str(refusal) for refusal in refusals} == {f"{winner.username} is working on this item."}
    item.refresh_from_db()
    assert (item.status, item.claimed_by) == (ItemStatus.CLAIMED, winner)
    claims = AuditEvent.objects.filter(item_id=item.pk, action="item.claimed")
    assert list(claims.values_list("actor", flat=True)) == [winner.pk]


# Round robin also writes the queue's turn in the same transaction as each claim.
@pytest.mark.parametrize("strategy", [NextItemStrategy.MOST_URGENT, NextItemStrategy.ROUND_ROBIN])
def test_eight_people_pressing_get_next_over_a_thousand_items_get_each_item_once(
    prior_auth_version, clinical_queue, django_user_model, strategy
):
    Queue.objects.filter(pk=clinical_queue.pk).update(next_item_strategy=strategy)
    now = timezone.now()
    runs = FlowRun.objects.bulk_create(
        FlowRun(
            flow_run_id=uuid.uuid4(),
            template=prior_auth_version.template,
            version=prior_auth_version,
            status="PENDING",
            state_id=CLINICAL_REVIEW,
        )
        for _ in range(1000)
    )
    ReviewItem.objects.bulk_create(
        ReviewItem(
            run=run,
            episode=1,
            queue=clinical_queue,
            version=prior_auth_version,
            state_id=CLINICAL_REVIEW,
            priority=index % 7,
            due_at=now + timedelta(minutes=index % 13),
            run_ref=str(run.flow_run_id),
        )
        for index, run in enumerate(runs)
    )
    people = clinical_team(django_user_model, 8)

    def work(index: int) -> list[int]:
        taken = []
        while (claimed := services.item_get_next(user=people[index])) is not None:
            taken.append(claimed.pk)
        return taken

    results = at_once(8, work)

    assert not [result for result in results if isinstance(result, Exception)]
    every = [pk for taken in results for pk in taken]
    assert len(every) == 1000
    assert set(every) == set(ReviewItem.objects.values_list("pk", flat=True))
    assert all(taken for taken in results)  # nobody waited out the others
    assert not ReviewItem.objects.exclude(status=ItemStatus.CLAIMED).exists()
    for person, taken in zip(people, results, strict=True):
        assert set(
            ReviewItem.objects.filter(claimed_by=person).values_list("pk", flat=True)
        ) == set(taken)
    claims = AuditEvent.objects.filter(action="item.claimed", detail__via="get_next")
    assert claims.count() == 1000
    assert claims.values("item_id").distinct().count() == 1000


def test_a_pause_racing_get_next_leaves_the_paused_person_holding_nothing(
    pending_run, django_user_model, supervisor
):
    for _ in range(12):
        pending_run()
    [alice] = clinical_team(django_user_model, 1)

    def work(index: int) -> Any:
        if index == 0:
            return services.reviewer_pause(reviewer=alice, by=supervisor)
        return services.item_get_next(user=alice)

    results = at_once(8, work)

    claims = [result for result in results[1:] if isinstance(result, ReviewItem)]
    refusals = [result for result in results[1:] if isinstance(result, services.GetNextPaused)]
    assert len(claims) + len(refusals) == 7, results
    # Every claim made before the pause was released by it; none was made after it.
    assert results[0] == len(claims)
    assert not ReviewItem.objects.filter(claimed_by=alice).exists()
    assert ReviewItem.objects.filter(status=ItemStatus.OPEN).count() == 12


def test_a_double_submit_makes_one_submission_and_one_update_run(
    flows_api, celery_worker, clinical_queue, reviewer, engine_updates
):
    item = engine_pending_item(clinical_queue)
    services.item_claim(item=item, user=reviewer)

    def submit(index: int) -> Submission:
        return services.submission_create(
            item=ReviewItem.objects.get(pk=item.pk),
            user=reviewer,
            answer=CLINICAL_ANSWER,
            form_data=clinical_form_data(),
        )

    submitted = at_once(2, submit)

    [submission] = [result for result in submitted if isinstance(result, Submission)]
    [refusal] = [result for result in submitted if not isinstance(result, Submission)]
    assert type(refusal) is services.ReviewError
    assert "already been submitted" in str(refusal)
    assert Submission.objects.filter(item=item).count() == 1
    # The worker has its task; a replayed task, the sweep and a redelivery race it.
    outcomes = at_once(3, lambda i: services.submission_deliver(submission.pk).outcome)
    eventually(
        lambda: ReviewItem.objects.filter(pk=item.pk, status=ItemStatus.RESUMED).exists(),
        what="the item to show the Run resumed",
    )

    assert outcomes.count("delivered") <= 1
    assert set(outcomes) <= {"delivered", "busy"}
    assert engine_updates == [str(item.run.flow_run_id)]
    submission.refresh_from_db()
    assert (submission.status, submission.attempts) == (SubmissionStatus.DELIVERED, 1)
    assert AuditEvent.objects.filter(item_id=item.pk, action="submission.delivered").count() == 1
