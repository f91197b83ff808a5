"""Triage in a real Chromium: a Run another system started on a Sohar-like server, of a
template Flowdesk cannot tell, is announced on the supervisor's queue page; on the triage page
the supervisor says which template version and step it is, and its item opens and can be
claimed. The page holds on a phone and axe finds no serious problem on it."""

import re

import pytest
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from flows_integration.models import PauseRule
from reviewqueue.models import ItemStatus, ReviewItem
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_review_queue import WAIT_MS, patient, shot
from tests.e2e.test_reviewer_page import signed_in
from tests.reviewqueue.conftest import clinical_queue, supervisor  # noqa: F401
from tests.reviewqueue.test_triage import other_looks, sohar, started_elsewhere, two_looks  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=WAIT_MS)


@pytest.mark.parametrize("width", [1280, 390])
def test_a_supervisor_says_which_template_a_run_is_and_its_item_opens(
    live_server,
    page: Page,
    sohar,  # noqa: F811
    two_looks,  # noqa: F811
    other_looks,  # noqa: F811
    supervisor,  # noqa: F811
    width,
):
    run_id = started_elsewhere(sohar)
    page.set_viewport_size({"width": width, "height": 900})
    signed_in(patient(page), live_server, supervisor)

    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="1 Run waiting in triage").click()
    expect(page.get_by_role("heading", name="Runs waiting in triage")).to_be_visible()
    card = page.locator(".triage-run", has_text=run_id)
    expect(card).to_contain_text("waiting at first-look")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert_accessible(page)
    shot(page, f"triage-{width}")

    # Nothing chosen: the browser asks for a choice and nothing opens.
    card.get_by_role("button", name="Open the item").click()
    choice = card.get_by_label("Template version and step")
    assert choice.evaluate("el => el.validity.valueMissing")
    expect(page).to_have_url(re.compile(r"/triage/$"))
    assert not ReviewItem.objects.exists()

    choice.select_option(label="Two looks v1: First look")
    card.get_by_label("Take every later Run waiting at this step for this version").check()
    card.get_by_role("button", name="Open the item").click()

    expect(page).to_have_url(re.compile(r"/items/\d+/$"))
    expect(page.get_by_role("status").filter(has_text="The item is open.")).to_be_visible()
    item = ReviewItem.objects.get(run__flow_run_id=run_id)
    assert (item.version, item.state_id, item.status) == (two_looks, "first-look", ItemStatus.OPEN)
    assert AuditEvent.objects.get(action="run.triaged").actor == supervisor
    assert PauseRule.objects.get(state_id="first-look").version == two_looks

    page.get_by_role("button", name="Claim", exact=True).click()
    expect(page.locator("#review-form")).to_be_visible()
    # Triage is empty again, and says so.
    page.goto(f"{live_server.url}/triage/")
    expect(page.locator("main")).to_contain_text("Nothing is waiting in triage")
