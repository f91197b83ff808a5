"""The supervisors' dashboard in a real Chromium: a supervisor opens it from the top bar, at a
desk and on a phone; axe finds no serious problem, the page never scrolls sideways, and the
"overdue" number of a queue opens a list with exactly that many rows."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import Page, expect

from reviewqueue import services
from reviewqueue.models import ReviewItem
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
from tests.reviewqueue.test_dashboard import completed

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=WAIT_MS)


@pytest.mark.parametrize("width", [1280, 390])
def test_a_supervisor_reads_the_dashboard_and_opens_a_queues_overdue_items(
    live_server,
    page: Page,
    pending_run,  # noqa: F811
    reviewer,  # noqa: F811
    colleague,  # noqa: F811
    supervisor,  # noqa: F811
    width,
):
    now = timezone.now()
    items = [pending_run().review_items.get() for _ in range(6)]
    overdue = [item.pk for item in items[:3]]
    ReviewItem.objects.filter(pk__in=overdue).update(due_at=now - timedelta(hours=1))
    services.item_claim(item=items[3], user=reviewer)
    for days, person in ((0, reviewer), (1, colleague), (2, reviewer), (4, colleague)):
        completed(
            pending_run().review_items.get(),
            person,
            claimed=now - timedelta(days=days, hours=1),
            handled=timedelta(minutes=12),
        )

    page.set_viewport_size({"width": width, "height": 900})
    signed_in(patient(page), live_server, supervisor)
    page.goto(f"{live_server.url}/")
    page.get_by_role("navigation").get_by_role("link", name="Dashboard").click()
    expect(page.get_by_role("heading", name="Supervisor dashboard")).to_be_visible()
    expect(page.get_by_role("img", name=re.compile("Completed items per day"))).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # Every chart fits its box: scaled, never scrolled inside it (on a phone too).
    expect(
        page.get_by_role(
            "img", name=re.compile("Completed items per hour, last 24 hours, all queues")
        )
    ).to_be_visible()
    assert page.evaluate(
        "[...document.querySelectorAll('figure.chart')]"
        ".every(box => box.scrollWidth <= box.clientWidth)"
    )
    expect(page.locator("#dash-signed-in")).to_contain_text("1 person signed in now")
    assert_accessible(page)
    shot(page, f"dashboard-{width}", readme="dashboard.png" if width == 1280 else None)

    page.get_by_role("link", name="3 overdue in Clinical review").click()
    expect(page.get_by_role("heading", name="Work queue")).to_be_visible()
    expect(page.locator("#queue-rows tbody tr")).to_have_count(3)
    shown = {int(href.rsplit("/", 2)[-2]) for href in _item_links(page)}
    assert shown == set(overdue)


def _item_links(page: Page) -> list[str]:
    links = page.locator("#queue-rows tbody tr[data-href]")
    return [links.nth(i).get_attribute("data-href") or "" for i in range(links.count())]
