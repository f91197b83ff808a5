"""Declining in a real Chromium: Alice claims an item, declines it with a reason (a refused
attempt first, with the message on the field), the item is back in the queue, and "Get next"
gives her the other one. The item page with the form open passes axe.

Against mirrored Runs (no engine, no worker): what is tested is the page and its round trip.
"""

import re

import pytest
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from reviewqueue.models import ItemReason, ItemStatus, ReasonCode, ReasonKind, ReviewItem
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_review_queue import WAIT_MS, patient, shot
from tests.e2e.test_reviewer_page import signed_in
from tests.reviewqueue.conftest import (  # noqa: F401
    CLINICAL_INPUT,
    clinical_queue,
    pause_run,
    prior_auth_version,
    reviewer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=WAIT_MS)


@pytest.mark.parametrize("width", [1280, 390])
def test_a_reviewer_declines_with_a_reason_and_get_next_gives_her_something_else(
    live_server,
    page: Page,
    prior_auth_version,  # noqa: F811
    clinical_queue,  # noqa: F811
    reviewer,  # noqa: F811
    width,
):
    ReasonCode.objects.create(
        queue=clinical_queue, kind=ReasonKind.DECLINE, code="conflict", title="Conflict of interest"
    )
    urgent = pause_run(prior_auth_version, "clinical-review", CLINICAL_INPUT).review_items.get()
    other = pause_run(prior_auth_version, "clinical-review", CLINICAL_INPUT).review_items.get()
    page.set_viewport_size({"width": width, "height": 900})
    signed_in(patient(page), live_server, reviewer)

    page.goto(f"{live_server.url}/")
    page.locator("#get-next").click()
    page.wait_for_url(f"{live_server.url}/items/{urgent.pk}/")
    expect(page.locator("#review-form")).to_be_visible()

    decline = page.locator("#decline")
    decline.locator("summary").click()
    # No reason chosen: the browser would ask first; skip that to see the server's own answer.
    decline.get_by_label("Note (optional)").fill("My sister's case")
    decline.locator("select").evaluate("el => el.removeAttribute('required')")
    decline.get_by_role("button", name="Decline", exact=True).click()
    expect(page.locator("#decline-code-error")).to_have_text(
        "Choose a reason for declining this item."
    )
    decline = page.locator("#decline")
    expect(decline.get_by_label("Note (optional)")).to_have_value("My sister's case")
    assert ReviewItem.objects.get(pk=urgent.pk).status == ItemStatus.CLAIMED
    assert_accessible(page)
    shot(page, f"reasons-decline-refused-{width}")

    decline.get_by_label("Reason").select_option(label="Conflict of interest")
    decline.get_by_role("button", name="Decline", exact=True).click()

    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("status").filter(has_text="Declined")).to_be_visible()
    urgent.refresh_from_db()
    assert (urgent.status, urgent.claimed_by) == (ItemStatus.OPEN, None)
    given = ItemReason.objects.get()
    assert (given.code, given.text, given.by) == ("conflict", "My sister's case", reviewer)
    assert AuditEvent.objects.get(action="item.declined").detail == {"reason": "conflict"}
    # Back in the queue, for everyone to see...
    expect(page.locator(f'a[href="/items/{urgent.pk}/"]').first).to_be_visible()

    # ...but not handed back to her.
    page.locator("#get-next").click()
    page.wait_for_url(re.compile(rf"/items/{other.pk}/$"))
    expect(page.locator("#review-form")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
