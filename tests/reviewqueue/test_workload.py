"""Workload in supervisors' and reviewers' hands (issue 12): return for rework to whoever
answered the Run's earlier pause, a supervisor pausing someone's "Get next" (their claims go
back), and each queue's next-item strategy.

Personas: alice the reviewer who answered the clinical review, bob her colleague who holds the
next step, charlie an outsider, sam a supervisor.
"""

import html
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from flows_integration import services as integration
from reviewqueue import selectors, services
from reviewqueue.models import (
    ItemReason,
    ItemStatus,
    NextItemStrategy,
    Notification,
    NotificationKind,
    Queue,
    ReasonCode,
    ReasonKind,
    ReviewItem,
    Route,
    StaffPreferences,
)
from tests.reviewqueue.conftest import DEMO, pause_run
from tests.reviewqueue.test_separation_of_duties import SIGNOFF, answer, login, pause_at, url

pytestmark = pytest.mark.django_db

NOTE = "Maria Lopez's daughter called: W123456789"  # patient data: never in audit or notices


# --- Return for rework ----------------------------------------------------------------------


@pytest.fixture
def signoff(prior_auth_version, clinical_queue, item, reviewer, colleague) -> ReviewItem:
    """Alice answered the clinical review; the sign-off (same queue, no separation of duties)
    now waits, and Bob holds it."""
    Route.objects.create(
        template=prior_auth_version.template, state_id=SIGNOFF, queue=clinical_queue
    )
    answer(item, reviewer)
    waiting = pause_at(item.run, SIGNOFF)
    return services.item_claim(item=waiting, user=colleague)


@pytest.fixture
def return_code(clinical_queue) -> ReasonCode:
    return ReasonCode.objects.create(
        queue=clinical_queue, kind=ReasonKind.RETURN, code="missing-info", title="Missing info"
    )


def test_a_return_hands_the_item_to_the_earlier_answerer_and_tells_them(
    signoff, reviewer, colleague, return_code
):
    given = services.item_return(item=signoff, user=colleague, code="missing-info", text=NOTE)

    signoff.refresh_from_db()
    assert (signoff.status, signoff.claimed_by, signoff.returned_to) == (
        ItemStatus.CLAIMED,
        reviewer,
        reviewer,
    )
    assert signoff.lease_until > timezone.now()
    assert (given.kind, given.reason, given.text, given.by) == (
        ReasonKind.RETURN,
        return_code,
        NOTE,
        colleague,
    )
    event = AuditEvent.objects.get(action="item.returned")
    assert (event.actor, event.item_id, event.detail["to"], event.detail["reason"]) == (
        colleague,
        signoff.pk,
        reviewer.pk,
        "missing-info",
    )
    assert "Maria" not in str(event.detail)
    notice = Notification.objects.get(user=reviewer)
    assert notice.kind == NotificationKind.RETURNED
    assert notice.item == signoff
    assert notice.text.startswith("bob returned Run ")
    assert notice.text.endswith("to you for rework: Missing info.")
    assert "Maria" not in notice.text
    assert not Notification.objects.exclude(user=reviewer).exists()


def test_a_return_needs_the_queues_reason_and_changes_nothing_without_it(
    signoff, colleague, return_code
):
    with pytest.raises(services.ReasonInvalid) as refused:
        services.item_return(item=signoff, user=colleague)

    assert refused.value.field == "code"
    assert "returning" in str(refused.value)
    signoff.refresh_from_db()
    assert (signoff.claimed_by, signoff.returned_to) == (colleague, None)
    assert not ItemReason.objects.exists()
    assert not Notification.objects.exists()


def test_only_the_holder_returns_an_item(signoff, outsider, supervisor):
    for someone in (outsider, supervisor):
        with pytest.raises(services.NotYourClaim):
            services.item_return(item=signoff, user=someone)
    signoff.refresh_from_db()
    assert signoff.returned_to is None


def test_a_first_pause_has_nobody_to_return_to(claimed_item, reviewer):
    with pytest.raises(services.ReviewError, match="nobody to return it to"):
        services.item_return(item=claimed_item, user=reviewer)
    claimed_item.refresh_from_db()
    assert claimed_item.claimed_by == reviewer


def test_the_earlier_answerer_cannot_return_it_to_themselves(signoff, reviewer, colleague):
    services.item_release(item=signoff, user=colleague)
    services.item_claim(item=signoff, user=reviewer)

    with pytest.raises(services.ReviewError, match="answered this Run's earlier step yourself"):
        services.item_return(item=signoff, user=reviewer)


def test_a_step_that_wants_another_person_is_not_returned_to_the_earlier_answerer(
    signoff, colleague
):
    Route.objects.filter(state_id=SIGNOFF).update(not_by_earlier_answerers=True)

    with pytest.raises(services.SeparationOfDuties, match="cannot be returned to them"):
        services.item_return(item=signoff, user=colleague)

    signoff.refresh_from_db()
    assert (signoff.claimed_by, signoff.returned_to) == (colleague, None)
    assert not ItemReason.objects.exists()
    assert not AuditEvent.objects.filter(action="item.returned").exists()


def test_nothing_is_returned_to_someone_who_is_away(signoff, reviewer, colleague, supervisor):
    services.reviewer_pause(reviewer=reviewer, by=supervisor)

    with pytest.raises(services.ReviewError, match="alice is away"):
        services.item_return(item=signoff, user=colleague)
    signoff.refresh_from_db()
    assert signoff.claimed_by == colleague


def test_the_item_page_offers_the_return_to_its_holder_by_name(
    signoff, colleague, reviewer, supervisor
):
    page = login(colleague).get(url("item", signoff)).content.decode()
    assert "Return for rework…" in page
    assert "Return to alice" in page

    # To the earlier answerer herself there is nobody to return it to.
    services.item_reassign(item=signoff, to=reviewer, by=supervisor)
    assert "Return for rework" not in login(reviewer).get(url("item", signoff)).content.decode()


def test_the_return_view_goes_to_the_queue_and_keeps_input_on_a_refusal(
    signoff, colleague, reviewer, return_code
):
    client = login(colleague)

    refused = client.post(url("item_return", signoff), {"code": "nonsense", "text": NOTE})
    assert refused.status_code == 422
    page = refused.content.decode()
    assert "is not one of the Clinical review queue&#x27;s reasons for returning" in page
    assert NOTE.replace("'", "&#x27;") in page
    assert '<details class="give-back" id="return" open>' in page

    done = client.post(url("item_return", signoff), {"code": "missing-info"}, follow=True)
    assert done.redirect_chain[-1][0] == reverse("reviewqueue:queue")
    assert "Returned to alice for rework." in done.content.decode()
    signoff.refresh_from_db()
    assert signoff.claimed_by == reviewer


# --- Pausing someone's "Get next" -------------------------------------------------------------


def test_a_pause_sends_their_claims_back_and_stops_get_next(
    pending_run, reviewer, colleague, supervisor
):
    held = [services.item_get_next(user=reviewer) for _ in range(2) if pending_run()]
    assert all(item is not None for item in held)

    released = services.reviewer_pause(reviewer=reviewer, by=supervisor)

    assert released == 2
    assert set(ReviewItem.objects.values_list("status", flat=True)) == {ItemStatus.OPEN}
    releases = AuditEvent.objects.filter(action="item.released")
    assert [event.detail["via"] for event in releases] == ["get_next_paused"] * 2
    paused = AuditEvent.objects.get(action="reviewer.get_next_paused")
    assert (paused.actor, paused.detail) == (supervisor, {"reviewer": reviewer.pk, "released": 2})

    with pytest.raises(services.GetNextPaused, match="Sam paused your “Get next”"):
        services.item_get_next(user=reviewer)
    with pytest.raises(services.ReviewError, match="alice is away"):
        services.item_reassign(item=ReviewItem.objects.first(), to=reviewer, by=supervisor)
    assert services.item_get_next(user=colleague) is not None

    services.reviewer_resume(reviewer=reviewer, by=supervisor)
    assert services.item_get_next(user=reviewer) is not None
    assert AuditEvent.objects.filter(action="reviewer.get_next_resumed").count() == 1


def test_only_supervisors_pause_and_a_pause_is_not_doubled(reviewer, colleague, supervisor):
    with pytest.raises(services.ReviewError, match="Only a supervisor"):
        services.reviewer_pause(reviewer=reviewer, by=colleague)
    services.reviewer_pause(reviewer=reviewer, by=supervisor)
    with pytest.raises(services.ReviewError, match="already paused"):
        services.reviewer_pause(reviewer=reviewer, by=supervisor)
    with pytest.raises(services.ReviewError, match="not paused"):
        services.reviewer_resume(reviewer=colleague, by=supervisor)


def test_the_people_page_pauses_and_resumes(item, reviewer, colleague, supervisor):
    services.item_claim(item=item, user=reviewer)
    client = login(supervisor)

    page = client.get(reverse("reviewqueue:people")).content.decode()
    assert "Pause alice and return 1 item" in page
    assert "Pause bob" in page

    paused = client.post(reverse("reviewqueue:person_pause", args=[reviewer.pk]), follow=True)
    assert "alice's “Get next” is paused; 1 item went back to the queue." in html.unescape(
        paused.content.decode()
    )
    assert "Resume alice" in paused.content.decode()
    assert StaffPreferences.objects.get(user=reviewer).get_next_paused_by == supervisor

    resumed = client.post(reverse("reviewqueue:person_resume", args=[reviewer.pk]), follow=True)
    assert "alice gets work again." in resumed.content.decode()


def test_reviewers_have_no_people_page(reviewer, colleague):
    client = login(reviewer)
    assert client.get(reverse("reviewqueue:people")).status_code == 404
    assert client.post(reverse("reviewqueue:person_pause", args=[colleague.pk])).status_code == 404
    assert not StaffPreferences.objects.filter(get_next_paused_at__isnull=False).exists()


def test_the_get_next_button_says_why_nothing_comes(item, reviewer, supervisor):
    services.reviewer_pause(reviewer=reviewer, by=supervisor)
    response = login(reviewer).post(reverse("reviewqueue:get_next"), follow=True)
    assert "Sam paused your “Get next”" in response.content.decode()
    item.refresh_from_db()
    assert item.status == ItemStatus.OPEN


# --- Next-item strategies ---------------------------------------------------------------------


@pytest.fixture
def coverage_version(clinical_queue):
    """coverage-check v1, routed to the same clinical queue: a second template there."""
    version = integration.version_store(
        template_id="coverage-check",
        number=1,
        source=(DEMO / "coverage-check" / "v1.yaml").read_text(),
    )
    Route.objects.create(template=version.template, queue=clinical_queue)
    return version


def _items(pending_run, *specs: tuple[int, int]) -> list[ReviewItem]:
    """Items with (priority, hours since opening); due four hours after opening."""
    made = []
    now = timezone.now()
    for priority, age in specs:
        item = pending_run().review_items.get()
        opened = now - timedelta(hours=age)
        ReviewItem.objects.filter(pk=item.pk).update(
            priority=priority, opened_at=opened, due_at=opened + timedelta(hours=4)
        )
        made.append(item)
    return made


def _strategy(queue: Queue, strategy: str) -> None:
    Queue.objects.filter(pk=queue.pk).update(next_item_strategy=strategy)


def _handed(user, count: int) -> list[int]:
    return [services.item_get_next(user=user).pk for _ in range(count)]


def test_most_urgent_first_is_the_default(pending_run, reviewer):
    low_old, high_new, mid = _items(pending_run, (10, 5), (90, 1), (50, 3))
    assert _handed(reviewer, 3) == [high_new.pk, mid.pk, low_old.pk]


def test_oldest_first(pending_run, reviewer, clinical_queue):
    _strategy(clinical_queue, NextItemStrategy.OLDEST)
    low_old, high_new, mid = _items(pending_run, (10, 5), (90, 1), (50, 3))
    assert _handed(reviewer, 3) == [low_old.pk, mid.pk, high_new.pk]


def test_round_robin_takes_turns_between_templates(
    pending_run, coverage_version, reviewer, clinical_queue
):
    _strategy(clinical_queue, NextItemStrategy.ROUND_ROBIN)
    prior_auth = _items(pending_run, (90, 1), (80, 1), (70, 1))
    coverage = [
        pause_run(coverage_version, "collect-member-id", {}).review_items.get() for _ in range(2)
    ]
    ReviewItem.objects.filter(pk__in=[i.pk for i in coverage]).update(priority=0)
    templates = {
        item.pk: item.version.template.template_id
        for item in ReviewItem.objects.select_related("version__template")
    }

    handed = _handed(reviewer, 5)

    # Templates take turns in the order they were stored, each time its most urgent item.
    assert handed == [
        prior_auth[0].pk,
        coverage[0].pk,
        prior_auth[1].pk,
        coverage[1].pk,
        prior_auth[2].pk,
    ]
    assert [templates[pk] for pk in handed] == [
        "prior-authorization",
        "coverage-check",
        "prior-authorization",
        "coverage-check",
        "prior-authorization",
    ]


def test_returned_to_me_first(pending_run, reviewer, colleague, clinical_queue):
    _strategy(clinical_queue, NextItemStrategy.RETURNED_FIRST)
    urgent, returned = _items(pending_run, (90, 1), (10, 1))
    ReviewItem.objects.filter(pk=returned.pk).update(returned_to=reviewer)

    assert _handed(reviewer, 2) == [returned.pk, urgent.pk]


def test_returned_first_still_gives_others_the_most_urgent(
    pending_run, reviewer, colleague, clinical_queue
):
    _strategy(clinical_queue, NextItemStrategy.RETURNED_FIRST)
    urgent, returned = _items(pending_run, (90, 1), (10, 1))
    ReviewItem.objects.filter(pk=returned.pk).update(returned_to=reviewer)

    assert _handed(colleague, 1) == [urgent.pk]


def test_between_queues_the_most_urgent_pick_goes_first(
    pending_run, reviewer, clinical_queue, eligibility
):
    _strategy(clinical_queue, NextItemStrategy.OLDEST)
    old_low, new_high = _items(pending_run, (10, 5), (60, 1))
    other = _items(pending_run, (50, 2))[0]
    ReviewItem.objects.filter(pk=other.pk).update(queue=eligibility)

    # The clinical queue's pick is its oldest (priority 10); the eligibility queue's (50) wins.
    assert _handed(reviewer, 3) == [other.pk, old_low.pk, new_high.pk]


def test_the_timeline_tells_the_return_with_its_reason(signoff, colleague, return_code):
    services.item_return(item=signoff, user=colleague, code="missing-info", text=NOTE)

    texts = [entry.text for entry in selectors.timeline(signoff)]
    assert "Returned for rework: Missing info" in texts
    assert not any("Maria" in text for text in texts)


def test_the_dashboard_links_to_the_people_page(supervisor):
    page = login(supervisor).get(reverse("reviewqueue:dashboard")).content.decode()
    assert f'href="{reverse("reviewqueue:people")}"' in page
