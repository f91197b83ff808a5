"""Moving work in bulk (issue 12, "Workload in their hands"): a supervisor moves the ticked items,
or all matching the queue page's filter, to a person or back to the queue, with a reason. Each
item is checked as one reassignment is and audited as one; what cannot move is reported.

The story: Bob is out sick; Sam, a supervisor, moves Bob's claimed items to Alice.
"""

import re
from html import unescape

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from reviewqueue import services
from reviewqueue.models import ItemStatus, Queue, ReviewItem
from tests.reviewqueue.test_separation_of_duties import (  # noqa: F401
    SIGNOFF,
    answer,
    pause_at,
    signoff_route,
)

pytestmark = pytest.mark.django_db

HX = {"HX-Request": "true"}
QUEUE = reverse("reviewqueue:queue")
MOVE = reverse("reviewqueue:queue_move")


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def move_url(**filters) -> str:
    query = "&".join(f"{name}={value}" for name, value in filters.items())
    return f"{MOVE}?{query}" if query else MOVE


def ticked(html: str) -> set[int]:
    return {
        int(pk)
        for pk in re.findall(r'<input type="checkbox" name="item" value="(\d+)"[^>]* checked', html)
    }


@pytest.fixture
def bobs_items(pending_run, colleague):
    """A factory: ``n`` items claimed by Bob (a reviewer of the clinical queue)."""

    def make(n: int) -> list[ReviewItem]:
        items = [pending_run().review_items.get() for _ in range(n)]
        for item in items:
            services.item_claim(item=item, user=colleague)
        return items

    return make


@pytest.fixture
def billing_item(pending_run):
    """An item of the Billing queue, which only the Billing team works."""
    billing = Queue.objects.create(name="Billing")
    billing.teams.add(Group.objects.get_or_create(name="Billing team")[0])
    item = pending_run().review_items.get()
    ReviewItem.objects.filter(pk=item.pk).update(queue=billing)
    return item


def states(items) -> list[tuple[str, int | None]]:
    return [
        (row.status, row.claimed_by_id)
        for row in ReviewItem.objects.filter(pk__in=[i.pk for i in items]).order_by("pk")
    ]


# --- The service -------------------------------------------------------------------------------


def test_moved_items_go_to_the_person_each_audited_as_one_reassignment(
    bobs_items, reviewer, supervisor
):
    items = bobs_items(3)
    moved = services.items_reassign_bulk(
        item_ids=[i.pk for i in items], to=reviewer, by=supervisor, reason="out_sick", ip="10.0.0.9"
    )

    assert (len(moved.moved), moved.refused) == (3, [])
    assert moved.summary == "3 moved to alice."
    assert states(items) == [(ItemStatus.CLAIMED, reviewer.pk)] * 3
    events = AuditEvent.objects.filter(action="item.reassigned").order_by("item_id")
    assert [e.item_id for e in events] == sorted(i.pk for i in items)
    for event in events:
        assert event.actor == supervisor
        assert event.detail == {"to": reviewer.pk, "via": "bulk", "reason": "out_sick"}
        assert event.ip == "10.0.0.9"


def test_an_item_of_a_queue_the_person_does_not_work_in_is_refused_and_reported(
    bobs_items, billing_item, reviewer, supervisor
):
    items = bobs_items(2)
    moved = services.items_reassign_bulk(
        item_ids=[i.pk for i in [*items, billing_item]], to=reviewer, by=supervisor, reason="skill"
    )

    assert [i.pk for i in moved.moved] == [i.pk for i in items]
    assert moved.refused == [("alice does not work in the Billing queue", [billing_item])]
    assert moved.summary == (
        f"2 moved to alice; 1 not: alice does not work in the Billing queue "
        f"(Run {billing_item.run_ref[:8]})."
    )
    assert states([billing_item]) == [(ItemStatus.OPEN, None)]
    assert AuditEvent.objects.filter(action="item.reassigned").count() == 2


def test_separation_of_duties_is_checked_per_item(
    signoff_route,  # noqa: F811
    item,
    pending_run,
    reviewer,
    colleague,
    supervisor,
):
    answer(item, reviewer)  # Alice answered the review of this Run...
    signoff = pause_at(item.run, SIGNOFF)  # ...so its sign-off is not hers to take.
    other = pending_run().review_items.get()

    moved = services.items_reassign_bulk(
        item_ids=[signoff.pk, other.pk], to=reviewer, by=supervisor, reason="workload"
    )

    assert moved.moved == [other]
    [(why, refused)] = moved.refused
    assert (
        why == "alice answered an earlier step of these Runs; another person must take these steps"
    )
    assert refused == [signoff]
    assert states([signoff]) == [(ItemStatus.OPEN, None)]
    # Bob answered nothing: the sign-off can go to him.
    moved = services.items_reassign_bulk(
        item_ids=[signoff.pk], to=colleague, by=supervisor, reason="workload"
    )
    assert moved.moved == [signoff]


def test_unassign_returns_items_to_the_queue_and_reports_those_already_there(
    bobs_items, item, colleague, supervisor
):
    items = bobs_items(2)
    moved = services.items_reassign_bulk(
        item_ids=[*(i.pk for i in items), item.pk], to=None, by=supervisor, reason="out_sick"
    )

    assert states(items) == [(ItemStatus.OPEN, None)] * 2
    assert moved.refused == [("already in the queue", [item])]
    assert moved.summary.startswith("2 moved to the queue; 1 not: already in the queue (Run ")
    events = AuditEvent.objects.filter(action="item.released")
    assert {e.item_id for e in events} == {i.pk for i in items}
    assert all(
        e.detail == {"holder": colleague.pk, "via": "bulk", "reason": "out_sick"} for e in events
    )


def test_an_item_already_with_the_person_is_reported_not_moved_again(
    bobs_items, colleague, supervisor
):
    [item] = bobs_items(1)
    moved = services.items_reassign_bulk(
        item_ids=[item.pk], to=colleague, by=supervisor, reason="other"
    )
    assert moved.refused == [("already with bob", [item])]
    assert not AuditEvent.objects.filter(action="item.reassigned").exists()


def test_a_reviewer_cannot_bulk_move(bobs_items, reviewer):
    items = bobs_items(1)
    with pytest.raises(services.ReviewError, match="Only a supervisor"):
        services.items_reassign_bulk(
            item_ids=[items[0].pk], to=reviewer, by=reviewer, reason="workload"
        )


def test_an_unknown_reason_or_too_many_items_move_nothing(bobs_items, reviewer, supervisor):
    items = bobs_items(1)
    with pytest.raises(services.ReasonInvalid):
        services.items_reassign_bulk(item_ids=[items[0].pk], to=reviewer, by=supervisor, reason="x")
    with pytest.raises(services.ReviewError, match="At most 500"):
        services.items_reassign_bulk(
            item_ids=range(1, 502), to=reviewer, by=supervisor, reason="workload"
        )
    assert states(items) == [(ItemStatus.CLAIMED, items[0].claimed_by_id)]


# --- The view ----------------------------------------------------------------------------------


def test_the_queue_page_offers_checkboxes_to_supervisors_only(bobs_items, reviewer, supervisor):
    [item] = bobs_items(1)
    html = login(supervisor).get(QUEUE).content.decode()
    assert f'name="item" value="{item.pk}" form="bulk-move-form"' in html
    assert 'id="bulk-move-form"' in html
    assert '<option value="' + str(reviewer.pk) + '">alice</option>' in html

    html = login(reviewer).get(QUEUE).content.decode()
    assert 'name="item"' not in html
    assert "bulk-move" not in html


def test_without_htmx_the_move_redirects_to_the_page_with_the_outcome(
    bobs_items, reviewer, colleague, supervisor
):
    items = bobs_items(3)
    client = login(supervisor)
    response = client.post(
        move_url(claimed_by=colleague.pk),
        {"item": [i.pk for i in items], "to": reviewer.pk, "reason": "out_sick"},
    )

    assert response.status_code == 302
    assert response["Location"] == f"{QUEUE}?claimed_by={colleague.pk}"
    page = client.get(response["Location"]).content.decode()
    assert "3 moved to alice." in page
    assert states(items) == [(ItemStatus.CLAIMED, reviewer.pk)] * 3


def test_with_htmx_the_rows_refresh_and_the_form_says_what_moved(
    bobs_items, reviewer, colleague, supervisor
):
    items = bobs_items(3)
    response = login(supervisor).post(
        move_url(claimed_by=colleague.pk),
        {"item": [i.pk for i in items[:2]], "to": reviewer.pk, "reason": "out_sick"},
        headers=HX,
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.startswith('\n<div id="queue-rows"') or '<div id="queue-rows"' in html
    assert (
        'id="bulk-move" class="bulk-move" aria-labelledby="bulk-move-title" hx-swap-oob="true"'
        in (html)
    )
    assert "2 moved to alice." in html
    # The rows from fresh data: only Bob's last item still matches "claimed by Bob".
    assert re.findall(r'name="item" value="(\d+)"', html) == [str(items[2].pk)]


def test_get_is_not_allowed_and_a_reviewer_gets_a_404(bobs_items, reviewer):
    items = bobs_items(1)
    assert login(reviewer).get(MOVE).status_code == 405
    response = login(reviewer).post(
        MOVE, {"item": [items[0].pk], "to": reviewer.pk, "reason": "workload"}
    )
    assert response.status_code == 404
    assert states(items)[0][1] != reviewer.pk


def test_all_matching_runs_the_filter_again_and_respects_the_cap(
    bobs_items, item, reviewer, colleague, supervisor, monkeypatch
):
    monkeypatch.setattr(services, "MOVE_MAX", 3)
    items = bobs_items(5)
    response = login(supervisor).post(
        move_url(claimed_by=colleague.pk),
        # The ticked ids are not what "all" moves: the filter is run again.
        {"scope": "all", "item": [item.pk], "to": reviewer.pk, "reason": "workload"},
        headers=HX,
    )

    assert response.status_code == 200
    html = unescape(response.content.decode())
    assert "3 moved to alice. More than 3 matched: the first 3 were taken" in html
    assert states([item]) == [(ItemStatus.OPEN, None)]
    assert sorted(s for s in states(items)).count((ItemStatus.CLAIMED, reviewer.pk)) == 3

    # Again: the next ones (those already with Alice no longer match "claimed by Bob").
    response = login(supervisor).post(
        move_url(claimed_by=colleague.pk),
        {"scope": "all", "to": reviewer.pk, "reason": "workload"},
        headers=HX,
    )
    assert "2 moved to alice." in response.content.decode()
    assert states(items) == [(ItemStatus.CLAIMED, reviewer.pk)] * 5


def test_the_page_offers_all_matching_when_the_filter_matches_more_than_a_page(
    bobs_items, colleague, supervisor, monkeypatch
):
    from reviewqueue import selectors

    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    bobs_items(3)
    html = login(supervisor).get(f"{QUEUE}?claimed_by={colleague.pk}").content.decode()
    assert "All 3 items matching this filter" in html
    assert "At most 500 items move at once." in html


def test_ids_outside_what_the_supervisor_may_see_are_ignored(bobs_items, reviewer, supervisor):
    items = bobs_items(1)
    response = login(supervisor).post(
        MOVE, {"item": [items[0].pk, 987654], "to": reviewer.pk, "reason": "workload"}, headers=HX
    )
    html = response.content.decode()
    assert "1 moved to alice." in html
    assert "987654" not in html
    assert AuditEvent.objects.filter(action="item.reassigned").count() == 1


def test_more_ids_than_a_page_shows_are_refused(bobs_items, reviewer, supervisor):
    items = bobs_items(1)
    response = login(supervisor).post(
        MOVE,
        {"item": [items[0].pk, *range(10_000, 10_050)], "to": reviewer.pk, "reason": "workload"},
        headers=HX,
    )
    assert response.status_code == 422
    assert "Tick at most 50, or choose all matching this filter." in response.content.decode()
    assert states(items)[0][1] != reviewer.pk


@pytest.mark.parametrize("htmx", [False, True])
@pytest.mark.parametrize(
    ("posted", "field", "message"),
    [
        ({"to": "TO"}, "reason", "Choose a reason."),
        ({"reason": "out_sick"}, "to", "Choose who takes these items, or back to the queue."),
        (
            {"to": "99999", "reason": "out_sick"},
            "to",
            "Choose someone from the list: that person is not known.",
        ),
        ({"to": "TO", "reason": "holiday"}, "reason", "Choose one of the reasons in the list."),
    ],
)
def test_bad_input_is_answered_on_its_field_with_the_ticks_kept(
    bobs_items, reviewer, supervisor, posted, field, message, htmx
):
    items = bobs_items(2)
    data = {name: str(reviewer.pk) if v == "TO" else v for name, v in posted.items()}
    response = login(supervisor).post(
        MOVE, {"item": [i.pk for i in items], **data}, headers=HX if htmx else {}
    )

    assert response.status_code == 422
    html = unescape(response.content.decode())
    assert ("<html" in html) is not htmx
    assert re.search(rf'<p class="errorlist" id="move-{field}-error">{re.escape(message)}', html)
    assert ticked(html) == {i.pk for i in items}
    assert AuditEvent.objects.filter(action="item.reassigned").count() == 0


def test_nothing_ticked_is_answered_on_the_selection(bobs_items, reviewer, supervisor):
    bobs_items(1)
    response = login(supervisor).post(MOVE, {"to": reviewer.pk, "reason": "out_sick"}, headers=HX)
    assert response.status_code == 422
    assert "Tick the items to move, or choose all matching." in response.content.decode()


def test_all_matching_a_search_no_longer_kept_moves_nothing(bobs_items, reviewer, supervisor):
    items = bobs_items(2)
    response = login(supervisor).post(
        move_url(search="gone"), {"scope": "all", "to": reviewer.pk, "reason": "out_sick"}
    )
    assert response.status_code == 422
    assert "That search is no longer kept: search again first." in response.content.decode()
    assert states(items)[0][1] != reviewer.pk
