"""Start a Run from the Start run page in a real Chromium, against the engine over HTTP with a
real Celery worker and webhooks: the Run's page follows it until it pauses, opens its item, and
the person who started it claims the pause and sees its form."""

import re

import pytest
from playwright.sync_api import Page, expect

from flows_integration import services as integration
from flows_integration.models import FlowTemplate
from intake.models import StartedRun
from reviewqueue.models import Queue, Route
from tests.e2e.test_review_queue import WAIT_MS, patient, shot
from tests.e2e.test_reviewer_page import signed_in
from tests.intake.conftest import starter  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=WAIT_MS)


@pytest.fixture
def eligibility_queue(flows_api, receiver_registered, celery_worker) -> Queue:
    """Flowdesk's copies of the engine's templates, coverage-check routed to its own queue."""
    integration.templates_import()
    queue = Queue.objects.create(name="Eligibility")
    Route.objects.create(
        template=FlowTemplate.objects.get(template_id="coverage-check"), queue=queue
    )
    return queue


def test_start_a_run_then_take_its_pause_as_an_item(
    live_server,
    page: Page,
    eligibility_queue,
    starter,  # noqa: F811
):
    signed_in(patient(page), live_server, starter)
    page.goto(f"{live_server.url}/runs/start/")
    page.get_by_role("link", name="Coverage check").click()
    expect(page.get_by_role("heading", name="Start Coverage check")).to_be_visible()

    form = page.locator("#start-form")
    form.get_by_label("First name").fill("Maria")
    # "Notfound": Discovery finds nothing, so the Run asks a person for the member ID.
    form.get_by_label("Last name").fill("Notfound")
    form.get_by_label("Date of birth").fill("1980-02-29")
    form.get_by_label("Payer (from intake, if known)").select_option(label="Aetna")
    shot(page, "start-run-form")
    form.get_by_role("button", name="Start the run").click()

    # The Run's page follows the Run until its pause opens as an item, then opens the item.
    expect(page).to_have_url(re.compile(r"/items/\d+/$"))
    started = StartedRun.objects.get()
    assert started.started_by == starter
    expect(page.locator("body")).to_contain_text("Collect member ID")
    page.get_by_role("button", name="Claim", exact=True).click()
    review = page.locator("#review-form")
    expect(review).to_be_visible()
    expect(review.get_by_label("Member ID")).to_be_visible()
    shot(page, "start-run-item-claimed")
