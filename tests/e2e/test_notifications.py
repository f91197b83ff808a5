"""Notifications in a real Chromium: Sam, a supervisor, assigns an item to Bob; Bob's top bar
says he has one unread; he opens it from his notifications, lands on the item, and the count is
gone. The notifications page passes axe, and nothing breaks the Content-Security-Policy."""

import re

import pytest
from playwright.sync_api import Page, expect

from reviewqueue.models import ItemStatus, Notification
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_review_queue import WAIT_MS, patient, shot
from tests.e2e.test_reviewer_page import signed_in
from tests.reviewqueue.conftest import (  # noqa: F401
    clinical_queue,
    colleague,
    item,
    pending_run,
    prior_auth_version,
    supervisor,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=WAIT_MS)


def test_an_assigned_item_is_announced_and_opened_from_the_notification(
    live_server,
    page: Page,
    item,  # noqa: F811
    colleague,  # noqa: F811
    supervisor,  # noqa: F811
):
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content-Security-Policy" in message.text else None
        ),
    )
    signed_in(patient(page), live_server, supervisor)
    page.goto(f"{live_server.url}/items/{item.pk}/")
    expect(page.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    page.get_by_label("Assign to").select_option(label="bob")
    page.get_by_role("button", name="Assign", exact=True).click()
    expect(page.locator("#item-panel .holder")).to_have_text("bob is working on this item.")
    item.refresh_from_db()
    assert (item.status, item.claimed_by_id) == (ItemStatus.CLAIMED, colleague.pk)

    page.context.clear_cookies()
    signed_in(page, live_server, colleague)
    page.goto(f"{live_server.url}/")
    header_link = page.get_by_role("link", name="Notifications (1 unread)", exact=True)
    expect(header_link).to_be_visible()
    header_link.click()

    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    notice = page.get_by_role("button", name=re.compile(rf"Sam assigned Run {item.run_ref[:8]}"))
    expect(notice).to_be_visible()
    assert_accessible(page)
    shot(page, "notifications")
    notice.click()

    page.wait_for_url(f"{live_server.url}/items/{item.pk}/")
    expect(page.get_by_role("link", name="Notifications", exact=True)).to_be_visible()
    assert Notification.objects.get(user=colleague).read_at is not None
    assert violations == []
