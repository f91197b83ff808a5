"""The audit report in a real Chromium: a compliance officer finds what happened to one
patient's Run by name without the name reaching the address bar, narrows it, and exports it.
The page holds on a phone and axe finds no serious problem on it."""

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from reviewqueue import roles, services
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_review_queue import WAIT_MS, patient, shot
from tests.e2e.test_reviewer_page import signed_in
from tests.reviewqueue.conftest import (  # noqa: F401
    clinical_queue,
    item,
    pending_run,
    prior_auth_version,
    reviewer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=WAIT_MS)


@pytest.fixture
def officer(django_user_model, role_groups):
    cora = django_user_model.objects.create_user("cora", first_name="Cora", last_name="Diaz")
    cora.groups.add(Group.objects.get(name=roles.COMPLIANCE))
    return cora


@pytest.mark.parametrize("width", [1280, 390])
def test_an_officer_finds_a_patients_events_and_exports_them(
    live_server,
    page: Page,
    item,  # noqa: F811
    reviewer,  # noqa: F811
    officer,
    width,
):
    services.item_claim(item=item, user=reviewer)
    services.audit_record(action="item.viewed", actor=reviewer, item=item, ip="10.0.0.5")
    page.set_viewport_size({"width": width, "height": 900})
    signed_in(patient(page), live_server, officer)

    page.goto(f"{live_server.url}/runs/")
    page.get_by_role("link", name="Audit", exact=True).click()
    expect(page.get_by_role("heading", name="Audit report")).to_be_visible()

    page.get_by_label("Patient", exact=True).fill("Lopez")
    page.get_by_label("Action").select_option(label="Work on items")
    page.get_by_role("button", name="Apply").click()
    expect(page).to_have_url(re.compile(r"/audit/\?.*action=work"))
    assert "lopez" not in page.url.lower()
    table = page.locator("#audit-events")
    expect(table).to_contain_text("Claimed")
    expect(table).to_contain_text("alice")
    expect(table).not_to_contain_text("Item viewed")  # not work: a read
    expect(page.get_by_label("Patient", exact=True)).to_have_value("Lopez")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    assert_accessible(page)
    shot(page, f"audit-report-{width}", readme="audit-report.png" if width == 1280 else None)

    # A Run id mistyped: said on its field, the rest kept.
    page.get_by_label("Run id", exact=True).fill("not-a-run")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#run-error")).to_contain_text("is not a Run id")
    expect(page.get_by_label("Patient", exact=True)).to_have_value("Lopez")
    expect(table).to_contain_text("Correct the filters above.")
    page.get_by_label("Run id", exact=True).fill("")
    page.get_by_role("button", name="Apply").click()
    expect(table).to_contain_text("Claimed")

    with page.expect_download() as download:
        page.get_by_role("link", name="Export these events as CSV").click()
    exported = download.value.path().read_text(encoding="utf-8")
    assert "item.claimed" in exported and "item.viewed" not in exported
    assert AuditEvent.objects.filter(action="audit.exported", actor=officer).count() == 1
