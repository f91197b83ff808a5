"""Moving work in a real Chromium: Bob is out sick; a supervisor opens the queue filtered to Bob's
claims (as the dashboard links it), ticks three of his items, and moves them to Alice. The live
refresh of the rows waits while boxes are ticked, so it never unticks them; the page says what
moved, and axe finds no serious problem on it."""

import pytest
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from reviewqueue import services
from reviewqueue.models import ItemStatus, ReviewItem
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_review_queue import WAIT_MS, patient, shot
from tests.e2e.test_reviewer_page import signed_in
from tests.reviewqueue.conftest import (  # noqa: F401
    clinical_queue,
    colleague,
    pending_run,
    prior_auth_version,
    reviewer,
    supervisor,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=WAIT_MS)


def test_a_supervisor_moves_three_of_bobs_items_to_alice(
    live_server,
    page: Page,
    settings,
    pending_run,  # noqa: F811
    reviewer,  # noqa: F811
    colleague,  # noqa: F811
    supervisor,  # noqa: F811
):
    settings.REVIEW_REFRESH_SECONDS = 1  # the rows refresh every second: ticks must survive it
    items = [pending_run().review_items.get() for _ in range(4)]
    for item in items:
        services.item_claim(item=item, user=colleague)
    signed_in(patient(page), live_server, supervisor)

    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{live_server.url}/?claimed_by={colleague.pk}")
    expect(page.locator("#dashboard-selection")).to_contain_text("claimed by bob")
    # On a phone "Move work" is folded until a row is ticked: the list comes first.
    expect(page.get_by_label("Move to")).to_be_hidden()
    assert page.locator("#bulk-move").bounding_box()["height"] < 120
    chosen = items[:3]
    for item in chosen:
        page.get_by_label(f"Tick Run {item.run_ref[:8]}").check()
    expect(page.locator("#refresh-paused")).to_be_visible()
    expect(page.get_by_label("Move to")).to_be_visible()  # unfolded by the first tick
    expect(page.locator("#move-ticked")).to_have_text("(3 ticked)")
    page.wait_for_timeout(2_500)  # two refreshes' time: none happens while boxes are ticked
    for item in chosen:
        expect(page.get_by_label(f"Tick Run {item.run_ref[:8]}")).to_be_checked()

    page.get_by_label("Move to").select_option(label="alice")
    page.get_by_label("Reason").select_option(label="Out sick")
    assert_accessible(page)
    page.get_by_role("button", name="Move", exact=True).click()

    expect(page.locator("#move-outcome")).to_have_text("3 moved to alice.")
    # The rows from fresh data: Bob keeps only the item not ticked; the refresh goes on.
    expect(page.locator('#queue-rows input[name="item"]')).to_have_count(1)
    expect(page.locator("#refresh-paused")).to_be_hidden()
    shot(page, "bulk-move")
    moved = ReviewItem.objects.filter(pk__in=[i.pk for i in chosen])
    assert {(i.status, i.claimed_by_id) for i in moved} == {(ItemStatus.CLAIMED, reviewer.pk)}
    events = AuditEvent.objects.filter(action="item.reassigned")
    assert sorted(e.item_id for e in events) == sorted(i.pk for i in chosen)
    assert all(e.detail["reason"] == "out_sick" and e.detail["via"] == "bulk" for e in events)
    assert_accessible(page)


def test_the_overloaded_reviewer_is_found_on_the_dashboard_and_relieved_in_one_move(
    live_server,
    page: Page,
    pending_run,  # noqa: F811
    reviewer,  # noqa: F811
    colleague,  # noqa: F811
    supervisor,  # noqa: F811
):
    """The issue's scenario: Bob holds 20 items, Alice one; the supervisor follows Bob's number
    on the dashboard to his list, ticks the page, moves all 20 to Alice, and the dashboard says
    so."""
    for _ in range(20):
        services.item_claim(item=pending_run().review_items.get(), user=colleague)
    services.item_claim(item=pending_run().review_items.get(), user=reviewer)
    signed_in(patient(page), live_server, supervisor)

    page.goto(f"{live_server.url}/supervisor/")
    people = page.locator("#dash-people")
    expect(people.get_by_role("link", name="20 claimed by bob")).to_be_visible()
    expect(people.get_by_role("link", name="1 claimed by alice")).to_be_visible()
    people.get_by_role("link", name="20 claimed by bob").click()

    expect(page.locator("#dashboard-selection")).to_contain_text("claimed by bob")
    expect(page.locator('#queue-rows input[name="item"]')).to_have_count(20)
    page.get_by_label("Tick every item on this page").check()
    expect(page.locator("#move-ticked")).to_have_text("(20 ticked)")
    page.get_by_label("Move to").select_option(label="alice")
    page.get_by_label("Reason").select_option(label="Workload")
    page.get_by_role("button", name="Move", exact=True).click()
    expect(page.locator("#move-outcome")).to_have_text("20 moved to alice.")

    page.goto(f"{live_server.url}/supervisor/")
    expect(people.get_by_role("link", name="21 claimed by alice")).to_be_visible()
    # Bob holds nothing now (a person with no claims and nothing completed has no row).
    expect(people.get_by_role("link", name="20 claimed by bob")).to_have_count(0)
    assert ReviewItem.objects.filter(claimed_by=reviewer).count() == 21
    assert AuditEvent.objects.filter(action="item.reassigned", detail__via="bulk").count() == 20
