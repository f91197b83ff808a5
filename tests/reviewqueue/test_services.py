"""The review queue's services: the transition map, items opening and closing with the Run's
pauses, claims and leases, submitting, supervising, drafts, notes and the append-only audit."""

import json
from datetime import timedelta

import pytest
import time_machine
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from audit.models import AuditEvent
from flows_integration.models import FlowRun
from reviewqueue import services
from reviewqueue.models import (
    ACTIVE_STATUSES,
    ITEM_TRANSITIONS,
    SUBMISSION_TRANSITIONS,
    Draft,
    ItemStatus,
    Queue,
    ReviewItem,
    Route,
    Submission,
    SubmissionStatus,
)
from tests.reviewqueue import test_delivery
from tests.reviewqueue.conftest import (
    CLINICAL_ANSWER,
    CLINICAL_INPUT,
    CLINICAL_REVIEW,
    clinical_form_data,
)
from tests.reviewqueue.test_delivery import move, submit

pytestmark = pytest.mark.django_db

# Fixtures shared with the delivery tests: tasks recorded instead of queued, a faulty Flows API.
enqueued = test_delivery.enqueued
faulty_api = test_delivery.faulty_api

SIGNOFF = "supervisor-signoff"
CLOSED = {ItemStatus.RESUMED, ItemStatus.SUPERSEDED}


def actions(item: ReviewItem) -> list[str]:
    return list(AuditEvent.objects.filter(item_id=item.pk).values_list("action", flat=True))


def lease_minutes(item: ReviewItem) -> float:
    assert item.lease_until is not None
    return (item.lease_until - timezone.now()).total_seconds() / 60


# --- The transition maps ---------------------------------------------------------------------


def test_every_status_has_a_row_and_closed_items_stay_closed():
    assert set(ITEM_TRANSITIONS) == set(ItemStatus)
    assert all(targets <= set(ItemStatus) for targets in ITEM_TRANSITIONS.values())
    assert set(ItemStatus) - ACTIVE_STATUSES == CLOSED
    for status in CLOSED:
        assert ITEM_TRANSITIONS[status] == frozenset()
    # Every active item can still close, one way or the other: nothing is stuck for good.
    for status in ACTIVE_STATUSES:
        assert ITEM_TRANSITIONS[status] & CLOSED or ItemStatus.RESUMED in {
            target for middle in ITEM_TRANSITIONS[status] for target in ITEM_TRANSITIONS[middle]
        }
    assert set(SUBMISSION_TRANSITIONS) == set(SubmissionStatus)
    for status in (SubmissionStatus.DELIVERED, SubmissionStatus.REJECTED):
        assert SUBMISSION_TRANSITIONS[status] == frozenset()


@pytest.mark.parametrize("target", list(ItemStatus))
@pytest.mark.parametrize("source", list(ItemStatus))
def test_a_move_is_made_exactly_when_the_map_allows_it(source, target, reviewer):
    before = timezone.now() - timedelta(hours=1)
    item = ReviewItem(
        status=source,
        status_changed_at=before,
        claimed_by=reviewer,
        lease_until=timezone.now() + timedelta(minutes=5),
    )
    if target not in ITEM_TRANSITIONS[source]:
        with pytest.raises(services.ReviewError, match="This item is"):
            services._transition(item, target)
        assert (item.status, item.status_changed_at) == (source, before)
        return
    services._transition(item, target)
    assert item.status == target
    assert item.status_changed_at > before
    assert (item.closed_at is not None) == (target in CLOSED)
    if target != ItemStatus.CLAIMED:
        assert item.lease_until is None
    holder_kept = target not in (ItemStatus.OPEN, ItemStatus.SUPERSEDED, ItemStatus.RESUMED)
    assert (item.claimed_by_id == reviewer.pk) == holder_kept


@pytest.mark.parametrize("target", list(SubmissionStatus))
@pytest.mark.parametrize("source", list(SubmissionStatus))
def test_a_submission_moves_exactly_when_its_map_allows_it(source, target):
    submission = Submission(status=source, locked_until=timezone.now())
    if target not in SUBMISSION_TRANSITIONS[source]:
        with pytest.raises(services.ReviewError):
            services._submission_transition(submission, target)
        assert submission.status == source
        return
    services._submission_transition(submission, target)
    assert submission.status == target
    assert (submission.finished_at is None) == (target == SubmissionStatus.PENDING)


@pytest.mark.parametrize(
    "status",
    [
        ItemStatus.SENDING,
        ItemStatus.DELIVERED,
        ItemStatus.NEEDS_ATTENTION,
        ItemStatus.RESUMED,
        ItemStatus.SUPERSEDED,
    ],
)
def test_only_an_open_item_or_ones_own_claim_can_be_claimed(item, reviewer, supervisor, status):
    ReviewItem.objects.filter(pk=item.pk).update(status=status)
    with pytest.raises(services.ReviewError, match="This item is"):
        services.item_claim(item=item, user=reviewer)
    with pytest.raises(services.ReviewError):
        services.item_reassign(item=item, to=reviewer, by=supervisor)
    with pytest.raises(services.NotYourClaim):
        services.item_release(item=item, user=supervisor)
    item.refresh_from_db()
    assert item.status == status
    assert item.claimed_by is None
    assert actions(item) == ["item.opened"]


# --- Opening with a pause --------------------------------------------------------------------


def test_a_pause_opens_an_item_in_the_routed_queue_with_its_priority_and_due_time(
    pending_run, clinical_queue, prior_auth_version
):
    before = timezone.now()
    run = pending_run()

    item = run.review_items.get()
    assert item.status == ItemStatus.OPEN
    assert (item.episode, item.state_id) == (1, CLINICAL_REVIEW)
    assert item.queue == clinical_queue
    assert item.priority == 50
    assert item.version == prior_auth_version  # the Run's own version, not the latest
    assert before <= item.opened_at <= timezone.now()
    assert item.due_at == item.opened_at + clinical_queue.sla
    assert item.patient_name == "Maria Lopez"
    assert item.run_ref == str(run.flow_run_id)
    assert item.claimed_by is None and item.closed_at is None
    [event] = AuditEvent.objects.filter(item_id=item.pk)
    assert (event.action, event.flow_run_id) == ("item.opened", run.flow_run_id)
    assert event.detail == {"queue": clinical_queue.pk, "state": CLINICAL_REVIEW}


def test_a_route_for_the_state_wins_over_the_templates(pending_run, prior_auth_version):
    directors = Queue.objects.create(name="Medical directors", sla=timedelta(days=1))
    Route.objects.create(
        template=prior_auth_version.template, state_id=SIGNOFF, queue=directors, priority=90
    )

    item = pending_run(SIGNOFF).review_items.get()

    assert (item.queue, item.priority) == (directors, 90)
    assert item.due_at == item.opened_at + timedelta(days=1)
    other = pending_run(CLINICAL_REVIEW).review_items.get()
    assert other.queue.name == "Clinical review"


@pytest.mark.parametrize(
    ("score", "priority"),
    [(7, 7), (12.9, 12), (-3, -3), ("high", 50), (True, 50), (None, 50)],
)
def test_a_routes_priority_can_come_from_the_runs_input(pending_run, score, priority):
    Route.objects.update(priority_path="$input.triage.score")
    input_data = {**CLINICAL_INPUT, "triage": {"score": score}}
    if score is None:
        input_data = CLINICAL_INPUT  # missing: the route's fixed priority

    item = pending_run(input_data=input_data).review_items.get()

    assert item.priority == priority


def test_a_malformed_priority_path_falls_back_to_the_fixed_priority(pending_run):
    Route.objects.update(priority_path="input..score")
    assert pending_run().review_items.get().priority == 50


def test_an_unrouted_pause_goes_to_the_default_queue(pending_run):
    Route.objects.all().delete()

    item = pending_run().review_items.get()

    assert item.queue.is_default
    assert item.priority == 0
    assert item.due_at == item.opened_at + item.queue.sla


def test_the_same_pause_announced_twice_opens_one_item(pending_run):
    run = pending_run()
    move(run, "PENDING", CLINICAL_REVIEW)
    services.on_run_status_changed(
        run=run, old_status="IN_PROGRESS", new_status="PENDING", state_id=CLINICAL_REVIEW
    )

    assert run.review_items.count() == 1
    assert AuditEvent.objects.filter(action="item.opened").count() == 1


def test_a_pause_at_a_state_that_is_not_a_callback_opens_nothing(pending_run):
    assert not pending_run("verify-coverage").review_items.exists()
    assert not pending_run("").review_items.exists()


def test_the_database_allows_one_item_per_episode_and_one_active_item_per_run(item):
    fields = {
        "run": item.run,
        "queue": item.queue,
        "version": item.version,
        "state_id": item.state_id,
        "due_at": item.due_at,
        "run_ref": item.run_ref,
    }
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewItem.objects.create(episode=1, status=ItemStatus.SUPERSEDED, **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewItem.objects.create(episode=2, status=ItemStatus.OPEN, **fields)
    ReviewItem.objects.create(episode=2, status=ItemStatus.SUPERSEDED, **fields)
    assert item.run.review_items.count() == 2


def test_a_run_that_pauses_again_gets_a_new_episode(pending_run, reviewer, enqueued, faulty_api):
    run = pending_run()
    first = run.review_items.get()
    submission = submit(first, reviewer)
    assert services.submission_deliver(submission.pk).outcome == "delivered"

    move(run, "IN_PROGRESS")
    move(run, "PENDING", SIGNOFF)

    first.refresh_from_db()
    second = run.review_items.get(episode=2)
    assert first.status == ItemStatus.RESUMED
    assert (second.state_id, second.status) == (SIGNOFF, ItemStatus.OPEN)
    assert list(run.review_items.order_by("episode").values_list("episode", flat=True)) == [1, 2]


def test_a_run_seen_going_straight_to_its_next_pause_closes_the_old_item(pending_run, reviewer):
    run = pending_run()
    first = services.item_claim(item=run.review_items.get(), user=reviewer)

    move(run, "PENDING", SIGNOFF)  # the IN_PROGRESS between them was never seen

    first.refresh_from_db()
    assert first.status == ItemStatus.SUPERSEDED
    assert run.review_items.get(episode=2).state_id == SIGNOFF


# --- Closing when the Run moves on -----------------------------------------------------------


@pytest.mark.parametrize("new_status", ["IN_PROGRESS", "COMPLETE", "ERROR"])
def test_a_run_leaving_its_pause_without_our_input_supersedes_the_item_and_keeps_the_draft(
    claimed_item, reviewer, new_status
):
    services.draft_save(item=claimed_item, user=reviewer, data={"decision": ["deny"]})

    move(claimed_item.run, new_status)

    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.SUPERSEDED
    assert claimed_item.closed_at is not None
    assert (claimed_item.claimed_by, claimed_item.lease_until) == (None, None)
    assert Draft.objects.get(item=claimed_item, user=reviewer).data == {"decision": ["deny"]}
    event = AuditEvent.objects.filter(item_id=claimed_item.pk).last()
    assert (event.action, event.detail) == ("item.superseded", {"run_status": new_status})


def test_an_item_needing_attention_is_superseded_and_its_failed_input_stays_with_its_author(
    faulty_api, item, reviewer, enqueued
):
    faulty_api.plan("PUT /v1/flow-runs/", lambda handler, request: handler.answer_json(404, {}))
    submission = submit(item, reviewer)
    assert services.submission_deliver(submission.pk).outcome == "failed"

    move(item.run, "ERROR")

    item.refresh_from_db()
    submission.refresh_from_db()
    assert item.status == ItemStatus.SUPERSEDED
    assert submission.status == SubmissionStatus.REFUSED
    assert Draft.objects.filter(item=item, user=reviewer).exists()


def test_after_delivery_the_run_leaving_its_pause_shows_the_run_resumed(
    faulty_api, claimed_item, reviewer, enqueued
):
    submission = submit(claimed_item, reviewer)
    assert services.submission_deliver(submission.pk).outcome == "delivered"
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.DELIVERED

    move(claimed_item.run, "IN_PROGRESS")

    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.RESUMED
    assert claimed_item.closed_at is not None
    assert actions(claimed_item)[-2:] == ["submission.delivered", "item.resumed"]


def test_a_mirror_already_past_the_pause_when_delivery_succeeds_shows_the_run_resumed(
    faulty_api, claimed_item, reviewer, enqueued
):
    """The webhook won the race with our own answer: the outcome was unknown, the mirror moved,
    and Get Run says the input arrived."""
    submission = submit(claimed_item, reviewer)
    Submission.objects.filter(pk=submission.pk).update(maybe_sent=True, attempts=1)
    move(claimed_item.run, "IN_PROGRESS")
    faulty_api.run_fields = {"status": "IN_PROGRESS", "output": {}}

    assert services.submission_deliver(submission.pk).outcome == "delivered"

    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.RESUMED
    assert faulty_api.count("PUT ") == 0


def test_a_run_leaving_while_the_item_is_sending_leaves_it_to_its_delivery(
    faulty_api, claimed_item, reviewer, django_capture_on_commit_callbacks, enqueued
):
    submission = submit(claimed_item, reviewer)
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        move(claimed_item.run, "IN_PROGRESS")

    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.SENDING
    assert enqueued == [("deliver", (submission.pk,), 0)]  # nudged: it settles the item
    # Nothing of ours was sent and the Run moved on: refused without an Update Run.
    assert services.submission_deliver(submission.pk).outcome == "refused"
    assert faulty_api.count("PUT ") == 0
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.SUPERSEDED
    assert Draft.objects.filter(item=claimed_item, user=reviewer).exists()


# --- Claims and leases -----------------------------------------------------------------------


def test_a_claim_is_a_lease_and_is_audited(item, reviewer, settings):
    settings.REVIEW_LEASE_MINUTES = 30

    services.item_claim(item=item, user=reviewer, ip="10.0.0.7")

    item.refresh_from_db()
    assert (item.status, item.claimed_by) == (ItemStatus.CLAIMED, reviewer)
    assert 29.9 < lease_minutes(item) <= 30
    assert item.lease_held_by(reviewer)
    event = AuditEvent.objects.filter(item_id=item.pk).last()
    assert (event.action, event.actor, event.ip) == ("item.claimed", reviewer, "10.0.0.7")
    assert event.flow_run_id == item.run.flow_run_id


def test_someone_elses_claim_names_who_holds_the_item(claimed_item, colleague, reviewer):
    reviewer.first_name, reviewer.last_name = "Alice", "Reviewer"
    reviewer.save()

    with pytest.raises(services.ReviewError, match="Alice Reviewer is working on this item"):
        services.item_claim(item=claimed_item, user=colleague)

    claimed_item.refresh_from_db()
    assert claimed_item.claimed_by == reviewer


def test_claiming_again_renews_ones_own_lease(item, reviewer):
    with time_machine.travel(timezone.now() - timedelta(minutes=20)):
        services.item_claim(item=item, user=reviewer)

    services.item_claim(item=item, user=reviewer)

    item.refresh_from_db()
    assert lease_minutes(item) > 29


def test_an_expired_lease_is_nobodys_and_can_be_taken(item, reviewer, colleague):
    with time_machine.travel(timezone.now() - timedelta(minutes=31)):
        services.item_claim(item=item, user=reviewer)
    item.refresh_from_db()
    assert not item.lease_held_by(reviewer)

    services.item_claim(item=item, user=colleague)

    item.refresh_from_db()
    assert item.claimed_by == colleague


def test_the_holder_renews_a_live_lease_and_no_one_else_can(item, reviewer, colleague):
    with time_machine.travel(timezone.now() - timedelta(minutes=20)):
        services.item_claim(item=item, user=reviewer)

    assert services.lease_renew(item=item, user=colleague) is False
    assert services.lease_renew(item=item, user=reviewer) is True

    item.refresh_from_db()
    assert lease_minutes(item) > 29


def test_an_expired_lease_cannot_be_renewed(item, reviewer):
    with time_machine.travel(timezone.now() - timedelta(minutes=31)):
        services.item_claim(item=item, user=reviewer)

    assert services.lease_renew(item=item, user=reviewer) is False


def test_expired_leases_return_their_items_to_the_queue_audited(pending_run, reviewer, colleague):
    stale, live = (pending_run().review_items.get() for _ in range(2))
    with time_machine.travel(timezone.now() - timedelta(minutes=31)):
        services.item_claim(item=stale, user=reviewer)
    services.item_claim(item=live, user=colleague)

    assert services.leases_expire() == 1

    stale.refresh_from_db()
    live.refresh_from_db()
    assert (stale.status, stale.claimed_by, stale.lease_until) == (ItemStatus.OPEN, None, None)
    assert (live.status, live.claimed_by) == (ItemStatus.CLAIMED, colleague)
    event = AuditEvent.objects.filter(item_id=stale.pk).last()
    assert (event.action, event.actor, event.detail) == (
        "item.lease_expired",
        None,
        {"holder": reviewer.pk},
    )
    assert services.leases_expire() == 0


def test_the_holder_or_a_supervisor_can_release_a_claim(
    pending_run, reviewer, colleague, supervisor
):
    mine, theirs = (pending_run().review_items.get() for _ in range(2))
    services.item_claim(item=mine, user=reviewer)
    services.item_claim(item=theirs, user=reviewer)

    with pytest.raises(services.NotYourClaim):
        services.item_release(item=mine, user=colleague)
    services.item_release(item=mine, user=reviewer)
    services.item_release(item=theirs, user=supervisor)

    for released, by in ((mine, reviewer), (theirs, supervisor)):
        released.refresh_from_db()
        assert (released.status, released.claimed_by) == (ItemStatus.OPEN, None)
        event = AuditEvent.objects.filter(item_id=released.pk).last()
        assert (event.action, event.actor, event.detail) == (
            "item.released",
            by,
            {"holder": reviewer.pk},
        )


def test_get_next_claims_the_most_urgent_open_item_i_may_take(
    pending_run, reviewer, outsider, colleague
):
    Route.objects.update(priority_path="$input.triage.score")
    low, high, taken = (
        pending_run(input_data={**CLINICAL_INPUT, "triage": {"score": score}}).review_items.get()
        for score in (1, 5, 9)
    )
    services.item_claim(item=taken, user=colleague)

    assert services.item_get_next(user=outsider) is None  # not a queue of his team
    first = services.item_get_next(user=reviewer, ip="10.0.0.8")
    second = services.item_get_next(user=reviewer)

    assert [first.pk, second.pk] == [high.pk, low.pk]
    assert services.item_get_next(user=reviewer) is None
    first.refresh_from_db()
    assert (first.status, first.claimed_by) == (ItemStatus.CLAIMED, reviewer)
    assert first.lease_held_by(reviewer)
    event = AuditEvent.objects.filter(item_id=first.pk).last()
    assert (event.action, event.ip, event.detail) == (
        "item.claimed",
        "10.0.0.8",
        {"via": "get_next"},
    )


def test_a_claim_that_cannot_be_audited_does_not_happen(item, reviewer, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("audit table unavailable")

    monkeypatch.setattr(services, "audit_record", broken)

    with pytest.raises(DatabaseError):
        services.item_claim(item=item, user=reviewer)

    item.refresh_from_db()
    assert (item.status, item.claimed_by) == (ItemStatus.OPEN, None)


# --- Submitting ------------------------------------------------------------------------------


def test_a_submission_and_its_outbox_row_commit_together_and_delivery_starts_on_commit(
    claimed_item, reviewer, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        submission = services.submission_create(
            item=claimed_item,
            user=reviewer,
            answer=CLINICAL_ANSWER,
            form_data={**clinical_form_data(), "csrfmiddlewaretoken": ["x"]},
            ip="10.0.0.9",
        )

    assert len(callbacks) == 1
    assert enqueued == [("deliver", (submission.pk,), 0)]
    assert claimed_item.status == ItemStatus.SENDING  # the caller's copy is refreshed
    assert (submission.status, submission.input) == (SubmissionStatus.PENDING, CLINICAL_ANSWER)
    assert (submission.attempts, submission.maybe_sent) == (0, False)
    assert submission.submitted_by == reviewer
    # The form as posted is kept until delivery, without the CSRF token.
    assert Draft.objects.get(item=claimed_item, user=reviewer).data == clinical_form_data()
    event = AuditEvent.objects.filter(item_id=claimed_item.pk).last()
    assert (event.action, event.actor, event.ip) == ("item.submitted", reviewer, "10.0.0.9")
    assert event.detail == {"submission": submission.pk}


def test_a_second_submit_is_refused_and_makes_no_second_submission(
    claimed_item, reviewer, enqueued, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.submission_create(
            item=claimed_item, user=reviewer, answer=CLINICAL_ANSWER, form_data=clinical_form_data()
        )
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(services.ReviewError, match="already been submitted"),
    ):
        services.submission_create(
            item=claimed_item, user=reviewer, answer=CLINICAL_ANSWER, form_data={}
        )

    assert Submission.objects.count() == 1
    assert len(enqueued) == 1
    assert Draft.objects.get(item=claimed_item, user=reviewer).data == clinical_form_data()


def test_the_database_allows_one_live_submission_per_item(claimed_item, reviewer, enqueued):
    services.submission_create(
        item=claimed_item, user=reviewer, answer=CLINICAL_ANSWER, form_data={}
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        Submission.objects.create(item=claimed_item, submitted_by=reviewer, input={})


def test_only_the_holder_of_a_live_claim_can_submit(claimed_item, colleague, outsider, reviewer):
    for user in (colleague, outsider):
        with pytest.raises(services.NotYourClaim, match="alice is working on this item"):
            services.submission_create(
                item=claimed_item, user=user, answer=CLINICAL_ANSWER, form_data={}
            )
    with (
        time_machine.travel(timezone.now() + timedelta(minutes=31)),
        pytest.raises(services.NotYourClaim, match="Claim it again"),
    ):
        services.submission_create(
            item=claimed_item, user=reviewer, answer=CLINICAL_ANSWER, form_data={}
        )

    assert not Submission.objects.exists()
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.CLAIMED


def test_an_open_item_cannot_be_submitted_without_a_claim(item, reviewer):
    with pytest.raises(services.NotYourClaim):
        services.submission_create(item=item, user=reviewer, answer=CLINICAL_ANSWER, form_data={})
    assert not Submission.objects.exists()


@pytest.mark.parametrize(
    ("status", "state_id"),
    [("IN_PROGRESS", ""), ("COMPLETE", ""), ("PENDING", SIGNOFF)],
    ids=["in-progress", "complete", "another-pause"],
)
def test_a_submission_for_a_run_no_longer_waiting_there_is_refused_and_the_input_kept(
    claimed_item, reviewer, enqueued, status, state_id
):
    # The mirror moved, and the item has not heard yet (its signal is still on the way).
    FlowRun.objects.filter(pk=claimed_item.run_id).update(status=status, state_id=state_id)

    with pytest.raises(services.RunMovedOn, match="kept as a draft"):
        services.submission_create(
            item=claimed_item, user=reviewer, answer=CLINICAL_ANSWER, form_data=clinical_form_data()
        )

    assert not Submission.objects.exists()
    assert enqueued == []
    claimed_item.refresh_from_db()
    assert claimed_item.status == ItemStatus.CLAIMED
    assert Draft.objects.get(item=claimed_item, user=reviewer).data == clinical_form_data()


def test_a_submission_for_a_superseded_item_says_the_run_moved_on_and_keeps_the_input(
    claimed_item, reviewer
):
    move(claimed_item.run, "ERROR")

    with pytest.raises(services.RunMovedOn):
        services.submission_create(
            item=claimed_item, user=reviewer, answer=CLINICAL_ANSWER, form_data=clinical_form_data()
        )

    assert Draft.objects.get(item=claimed_item, user=reviewer).data == clinical_form_data()


# --- Supervisors -----------------------------------------------------------------------------


def test_a_supervisor_reassigns_a_workable_item(claimed_item, reviewer, colleague, supervisor):
    services.item_reassign(item=claimed_item, to=colleague, by=supervisor, ip="10.0.0.1")

    claimed_item.refresh_from_db()
    assert (claimed_item.status, claimed_item.claimed_by) == (ItemStatus.CLAIMED, colleague)
    assert claimed_item.lease_held_by(colleague)
    event = AuditEvent.objects.filter(item_id=claimed_item.pk).last()
    assert (event.action, event.actor, event.detail) == (
        "item.reassigned",
        supervisor,
        {"to": colleague.pk},
    )


def test_only_a_supervisor_reassigns_and_only_to_someone_who_works_the_queue(
    item, reviewer, colleague, outsider, supervisor
):
    with pytest.raises(services.ReviewError, match="Only a supervisor"):
        services.item_reassign(item=item, to=colleague, by=reviewer)
    with pytest.raises(services.ReviewError, match="does not work in the Clinical review"):
        services.item_reassign(item=item, to=outsider, by=supervisor)

    item.refresh_from_db()
    assert (item.status, item.claimed_by) == (ItemStatus.OPEN, None)


def test_a_supervisor_resends_a_submission_that_needs_attention(
    faulty_api, item, reviewer, colleague, supervisor, enqueued, django_capture_on_commit_callbacks
):
    faulty_api.plan("PUT /v1/flow-runs/", lambda handler, request: handler.answer_json(404, {}))
    submission = submit(item, reviewer)
    assert services.submission_deliver(submission.pk).outcome == "failed"
    with pytest.raises(services.ReviewError, match="Only a supervisor"):
        services.submission_retry(item=item, user=colleague)
    enqueued.clear()

    with django_capture_on_commit_callbacks(execute=True):
        resent = services.submission_retry(item=item, user=supervisor, ip="10.0.0.2")

    assert resent.pk == submission.pk
    assert (resent.status, resent.attempts, resent.finished_at) == (
        SubmissionStatus.PENDING,
        0,
        None,
    )
    assert item.status == ItemStatus.SENDING
    assert enqueued == [("deliver", (submission.pk,), 0)]
    event = AuditEvent.objects.filter(item_id=item.pk).last()
    assert (event.action, event.actor, event.ip) == ("submission.resent", supervisor, "10.0.0.2")
    assert services.submission_deliver(submission.pk).outcome == "delivered"
    with pytest.raises(services.ReviewError, match="nothing to send again"):
        services.submission_retry(item=item, user=supervisor)


# --- Drafts and notes ------------------------------------------------------------------------


def test_a_draft_needs_a_live_claim_keeps_values_as_typed_and_renews_the_lease(item, reviewer):
    with pytest.raises(services.NotYourClaim):
        services.draft_save(item=item, user=reviewer, data={"decision": ["approve"]})
    with time_machine.travel(timezone.now() - timedelta(minutes=20)):
        services.item_claim(item=item, user=reviewer)

    services.draft_save(
        item=item,
        user=reviewer,
        data={"approvedUnits": ["twelve"], "csrfmiddlewaretoken": ["x"]},
    )

    assert services.draft_for(item=item, user=reviewer).data == {"approvedUnits": ["twelve"]}
    item.refresh_from_db()
    assert lease_minutes(item) > 29


def test_a_draft_keeps_the_latest_reading_of_a_page_whatever_arrives_last(claimed_item, reviewer):
    def keep(value, reading):
        services.draft_keep(
            item=claimed_item, user=reviewer, data={"decision": [value]}, reading=reading
        )
        return services.draft_for(item=claimed_item, user=reviewer).data["decision"]

    assert keep("deny", ("page-a", 5)) == ["deny"]
    # An earlier reading of the same page (a re-render sent before the autosave) arrives last.
    assert keep("", ("page-a", 4)) == ["deny"]
    assert keep("approve", ("page-a", 6)) == ["approve"]
    # A reload starts its own count; a post without script has none: both are simply newer.
    assert keep("modify", ("page-b", 1)) == ["modify"]
    assert keep("deny", None) == ["deny"]
    assert keep("approve", ("page-b", 1)) == ["approve"]


def test_drafts_are_discarded_once_a_submission_is_delivered(
    faulty_api, claimed_item, reviewer, colleague, enqueued
):
    services.draft_keep(item=claimed_item, user=colleague, data={"decision": ["deny"]})
    submission = submit(claimed_item, reviewer)
    assert Draft.objects.filter(item=claimed_item).count() == 2

    assert services.submission_deliver(submission.pk).outcome == "delivered"

    assert not Draft.objects.filter(item=claimed_item).exists()


def test_a_note_is_kept_and_audited_and_an_empty_one_refused(item, colleague):
    with pytest.raises(services.ReviewError, match="Write something"):
        services.note_add(item=item, user=colleague, body="  \n ")

    note = services.note_add(item=item, user=colleague, body="  Called the office.  ", ip="::1")

    assert note.body == "Called the office."
    event = AuditEvent.objects.filter(item_id=item.pk).last()
    assert (event.action, event.actor, event.ip, event.detail) == (
        "note.added",
        colleague,
        "::1",
        {"note": note.pk},
    )


# --- The audit log ---------------------------------------------------------------------------


def test_every_action_of_an_items_life_is_audited_without_patient_data(
    faulty_api, pending_run, reviewer, colleague, supervisor, enqueued
):
    run = pending_run()
    item = run.review_items.get()
    services.item_claim(item=item, user=reviewer, ip="10.1.1.1")
    services.item_release(item=item, user=reviewer)
    services.item_get_next(user=colleague)
    services.note_add(item=item, user=colleague, body="Maria's office called back")
    services.item_reassign(item=item, to=reviewer, by=supervisor)
    submission = services.submission_create(
        item=item, user=reviewer, answer=CLINICAL_ANSWER, form_data=clinical_form_data()
    )
    services.submission_deliver(submission.pk)
    move(run, "IN_PROGRESS")

    events = list(AuditEvent.objects.filter(item_id=item.pk))
    assert [(event.action, event.actor) for event in events] == [
        ("item.opened", None),
        ("item.claimed", reviewer),
        ("item.released", reviewer),
        ("item.claimed", colleague),
        ("note.added", colleague),
        ("item.reassigned", supervisor),
        ("item.submitted", reviewer),
        ("submission.delivered", None),
        ("item.resumed", None),
    ]
    assert {event.flow_run_id for event in events} == {run.flow_run_id}
    assert [event.at for event in events] == sorted(event.at for event in events)
    details = json.dumps([event.detail for event in events])
    for value in ("Maria", "Lopez", "M17.11", "Alice Reviewer", "W123456789", "office"):
        assert value not in details


def test_audit_rows_cannot_be_updated(item):
    event = AuditEvent.objects.get(item_id=item.pk)

    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(action="item.tampered")
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        event.detail = {}
        event.save()

    assert AuditEvent.objects.get(pk=event.pk).action == "item.opened"


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="DELETE is refused on PostgreSQL only: SQLite's test flush deletes row by row",
)
def test_audit_rows_cannot_be_deleted_on_postgresql(item):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        AuditEvent.objects.filter(item_id=item.pk).delete()

    assert AuditEvent.objects.filter(item_id=item.pk).count() == 1
