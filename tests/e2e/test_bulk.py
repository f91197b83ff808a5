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

    page.goto(f"{live_server.url}/?claimed_by={colleague.pk}")
    expect(page.locator("#dashboard-selection")).to_contain_text("claimed by bob")
    chosen = items[:3]
    for item in chosen:
        page.get_by_label(f"Tick Run {item.run_ref[:8]}").check()
    expect(page.locator("#refresh-paused")).to_be_visible()
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
