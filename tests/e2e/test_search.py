"""The queue's and the Runs list's search in a real Chromium: the term is posted, never put in a
URL (the access logs write every URL and the Referer of every request a page makes), and yet
the box keeps its text, the live refresh and paging keep the search, and back and forward go
from one search to the other."""

import copy
import re

import pytest
from playwright.sync_api import Page, Request, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from reviewqueue import selectors
from tests.e2e.test_review_queue import patient as patient_page
from tests.e2e.test_review_queue import sign_in
from tests.reviewqueue.conftest import (  # noqa: F401
    CLINICAL_INPUT,
    clinical_queue,
    pending_run,
    prior_auth_version,
    reviewer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def patient(first: str, last: str) -> dict:
    data = copy.deepcopy(CLINICAL_INPUT)
    data["patient"].update(firstName=first, lastName=last)
    return data


def test_the_search_keeps_names_out_of_every_url(
    live_server,
    page: Page,
    reviewer,  # noqa: F811
    pending_run,  # noqa: F811
    settings,
    monkeypatch,
):
    settings.REVIEW_REFRESH_SECONDS = 1
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    for _ in range(3):
        pending_run(input_data=patient("Ada", "Okonkwo-Vale"))
    pending_run(input_data=patient("John", "Smithfield"))
    sent: list[Request] = []
    page.on("request", lambda request: sent.append(request))
    sign_in(patient_page(page), live_server.url, "alice")
    rows = page.locator("#queue-rows tbody tr[data-href]")
    expect(rows).to_have_count(2)  # four items, two to a page

    # "/" jumps to the box; Enter posts the filter form.
    page.keyboard.press("/")
    page.keyboard.type("Okonkwo")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/\?.*search="))
    searched = page.url
    search_box = page.get_by_role("searchbox")
    expect(search_box).to_have_value("Okonkwo")
    expect(rows).to_have_count(2)
    expect(page.locator("#queue-rows")).to_contain_text("Ada Okonkwo-Vale")
    expect(page.locator("#queue-rows")).not_to_contain_text("Smithfield")

    # The live refresh keeps the search (it polls every second here).
    with page.expect_request(lambda request: "since=" in request.url):
        pass
    expect(page.locator("#queue-rows")).not_to_contain_text("Smithfield")

    # The second page of the search, then another search, then back and forward.
    # Rows (pager included) are swapped every second here: a click whose press and release land
    # on either side of a swap is no click, as for a person, who clicks again.
    expect(page.get_by_role("link", name="Next →")).to_be_visible()
    for _ in range(5):
        page.get_by_role("link", name="Next →").click()
        try:
            page.wait_for_url(re.compile(r"page=2"), timeout=5_000)
            break
        except PlaywrightTimeout:
            continue
    page.wait_for_url(re.compile(r"page=2"))
    expect(rows).to_have_count(1)
    expect(search_box).to_have_value("Okonkwo")
    search_box.fill("Smithfield")
    search_box.press("Enter")
    page.wait_for_url(lambda url: url != searched and "page=" not in url)
    expect(page.locator("#queue-rows")).to_contain_text("John Smithfield")
    page.go_back()
    expect(search_box).to_have_value("Okonkwo")
    expect(page.locator("#queue-rows")).not_to_contain_text("Smithfield")
    page.go_forward()
    expect(search_box).to_have_value("Smithfield")

    # The Runs list searches the same way.
    page.goto(f"{live_server.url}/runs/")
    page.get_by_label("Run id or external id").fill("EHR-Okonkwo-1931")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"/runs/\?search="))
    expect(page.get_by_label("Run id or external id")).to_have_value("EHR-Okonkwo-1931")

    # No request the browser made, nor its Referer, named anyone.
    assert len(sent) > 10
    for request in sent:
        for text in (request.url, request.headers.get("referer", "")):
            assert not re.search(r"okonkwo|smithfield", text, re.I), text
