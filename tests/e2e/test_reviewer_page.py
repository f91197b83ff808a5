"""The reviewer's item page in a real Chromium: the side column reads at every width, the form
never loses or half-sends what was typed (with the re-render slowed down on purpose too),
conditional fields hide, focus goes where a keyboard user expects, and an ended claim shows at
once.

These run against mirrored Runs (no engine, no worker): what is tested is the page.
"""

import json
import re
import time
from pathlib import Path

import pytest
from django.test import Client
from playwright.sync_api import Locator, Page, Route, expect

from flows_integration import services as integration
from reviewqueue.models import Draft, ItemStatus, Queue, ReviewItem, Submission
from reviewqueue.models import Route as QueueRoute
from tests.e2e.test_review_queue import shot
from tests.reviewqueue.conftest import (  # noqa: F401
    CLINICAL_INPUT,
    DEMO,
    clinical_queue,
    pause_run,
    prior_auth_version,
    reviewer,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "docs" / "examples"
WAIT_MS = 20_000
# Assertions wait as long as actions do: a loaded two-core machine runs the server and Chromium.
expect.set_options(timeout=WAIT_MS)
LONG_NOTES = (
    "Patient reports persistent medial knee pain for 18 months despite physical therapy, "
    "NSAIDs and two corticosteroid injections; imaging shows bone-on-bone contact in the medial "
    "compartment with osteophytes. BMI 31. Requesting total knee arthroplasty."
)


def signed_in(page: Page, live_server, user) -> Page:
    """A browser page with ``user``'s session cookie: the login page has its own test."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])
    page.set_default_timeout(WAIT_MS)
    return page


@pytest.fixture
def billing_item(db, reviewer):  # noqa: F811
    """An open "Request a write-off" item in a billing queue that alice works."""
    from django.contrib.auth.models import Group

    version = integration.version_store(
        template_id="billing-write-off",
        number=1,
        source=(DEMO / "billing-write-off" / "v1.yaml").read_text(),
    )
    team, _ = Group.objects.get_or_create(name="Billing team")
    reviewer.groups.add(team)
    queue = Queue.objects.create(name="Billing")
    queue.teams.add(team)
    QueueRoute.objects.create(template=version.template, queue=queue)
    data = json.loads((EXAMPLES / "billing-write-off-input.json").read_text())["inputData"]
    run = pause_run(version, "request-write-off", data)
    return run.review_items.get()


@pytest.fixture
def clinical_item(prior_auth_version):  # noqa: F811
    """An open clinical review whose Run carries long clinical notes and earlier steps."""
    data = {**CLINICAL_INPUT, "urgency": "expedited", "clinicalNotes": LONG_NOTES}
    run = pause_run(
        prior_auth_version,
        "clinical-review",
        data,
        state_results={
            "verify-coverage": {
                "active": True,
                "status": "active",
                "planName": "Aetna Choice POS II",
            },
            "estimate-cost": {"estimatedCost": 32150.0, "inNetwork": True},
        },
    )
    return run.review_items.get()


def open_claimed(page: Page, live_server, item: ReviewItem) -> Locator:
    """The item's page, claimed: its review form."""
    page.goto(f"{live_server.url}/items/{item.pk}/")
    page.get_by_role("button", name="Claim", exact=True).click()
    form = page.locator("#review-form")
    expect(form).to_be_visible()
    return form


# --- 1. The side column reads at every width -------------------------------------------------


@pytest.mark.parametrize("width", [390, 1024, 1280, 1920])
def test_the_runs_context_wraps_at_words_and_the_page_stays_short(
    live_server,
    page,
    clinical_item,
    reviewer,  # noqa: F811
    width,
):
    page.set_viewport_size({"width": width, "height": 900})
    signed_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/items/{clinical_item.pk}/")
    side = page.locator("aside.item-side")
    expect(side).to_contain_text("Aetna")

    # No value is squeezed into a sliver: every one is at least a few words wide.
    widths = side.locator("dd").evaluate_all("els => els.map(e => e.getBoundingClientRect().width)")
    assert widths and min(widths) >= 120, widths
    # The long clinical note wraps at spaces, not inside words.
    notes = side.locator("dd", has_text="persistent medial knee pain")
    lines = notes.evaluate(
        """el => { const r = document.createRange(); r.selectNodeContents(el);
                   return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size; }"""
    )
    assert 1 <= lines <= 14, lines
    # Nothing overflows sideways, and the page is not thousands of pixels tall.
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, scroll_width
    height = page.evaluate("document.documentElement.scrollHeight")
    assert height < (4200 if width < 600 else 2600), height
    if width != 1024:
        shot(page, f"item-{width}", readme=f"item-{width}.png")


# --- 2. The form never blanks itself ---------------------------------------------------------


def _fill_write_off(page: Page) -> None:
    form = page.locator("#review-form")
    form.get_by_label("Reason").select_option(label="Small balance")
    form.get_by_label("Adjustment code").select_option(label="CO-45 Charge exceeds fee schedule")
    form.get_by_label("Date of the payer call").fill("2026-11-30")


def _slow_form_partial(page: Page, seconds: float) -> list[str]:
    """Hold every conditional re-render for ``seconds``: a slow server, on purpose."""
    seen: list[str] = []

    def hold(route: Route) -> None:
        seen.append(route.request.url)
        time.sleep(seconds)
        route.continue_()

    page.route(re.compile(r"/items/\d+/form/$"), hold)
    return seen


@pytest.mark.parametrize("delay", [0.0, 1.5])
def test_typing_then_submitting_at_once_sends_the_whole_answer(
    live_server,
    page,
    billing_item,
    reviewer,  # noqa: F811
    delay,
):
    signed_in(page, live_server, reviewer)
    held = _slow_form_partial(page, delay) if delay else []
    open_claimed(page, live_server, billing_item)
    _fill_write_off(page)
    form = page.locator("#review-form")
    reference = form.get_by_label("Payer call reference")
    reference.click()
    page.keyboard.type("PAY-77812")
    # The click blurs the field: its change posts the re-render, and the submit follows at once.
    form.get_by_role("button", name="Submit", exact=True).click()

    expect(page.locator("#item-status")).to_have_text(re.compile("Sending|Delivered"))
    submission = Submission.objects.get(item=billing_item)
    assert submission.input["reason"] == "small-balance"
    assert submission.input["adjustmentCode"] == "CO-45"
    assert submission.input["payerReference"] == "PAY-77812"
    assert submission.input["payerContactDate"] == "2026-11-30"
    assert submission.input["amount"] > 0
    if delay:
        assert held, "the reference field should have asked for a re-render"


def test_a_re_render_arriving_after_an_autosave_never_saves_over_it(
    live_server,
    page,
    billing_item,
    reviewer,  # noqa: F811
):
    """A re-render saves the draft from what it carried; held on the way, it reaches the server
    after an autosave of later typing, and that typing must still be there after a reload."""
    signed_in(page, live_server, reviewer)
    held: list[Route] = []
    page.route(re.compile(r"/items/\d+/form/$"), lambda route: held.append(route))
    form = open_claimed(page, live_server, billing_item)
    with page.expect_request(re.compile(r"/form/$")):
        form.get_by_label("Reason").select_option(label="Other")
    with page.expect_response(
        lambda r: "/draft/" in r.url and "42.5" in (r.request.post_data or "")
    ):
        form.get_by_label("Amount to write off (USD)").fill("42.5")
    assert len(held) == 1
    with page.expect_response(re.compile(r"/form/$")):
        held[0].continue_()

    page.reload()
    expect(page.locator("#review-form").get_by_label("Amount to write off (USD)")).to_have_value(
        "42.5"
    )
    assert Draft.objects.get(item=billing_item).data["amount"] == ["42.5"]


def test_typing_during_a_slow_re_render_keeps_every_keystroke(
    live_server,
    page,
    billing_item,
    reviewer,  # noqa: F811
):
    signed_in(page, live_server, reviewer)
    _slow_form_partial(page, 1.5)
    form = open_claimed(page, live_server, billing_item)
    with page.expect_response(re.compile(r"/form/$")):
        form.get_by_label("Reason").select_option(label="Other")
        # While the re-render is held, the reviewer goes on typing elsewhere.
        form.get_by_label("Amount to write off (USD)").fill("42.5")
        form.get_by_label("Explanation").click()
        page.keyboard.type("Balance below the statement threshold")
    expect(form.get_by_label("Explanation")).to_be_focused()
    expect(form.get_by_label("Explanation")).to_have_value("Balance below the statement threshold")
    expect(form.get_by_label("Amount to write off (USD)")).to_have_value("42.5")
    expect(form.get_by_label("Reason")).to_have_value("other")
    page.keyboard.type(" for this account.")
    expect(form.get_by_label("Explanation")).to_have_value(
        "Balance below the statement threshold for this account."
    )


def test_typing_in_a_row_while_a_row_is_added_keeps_it(
    live_server,
    page,
    clinical_item,
    reviewer,  # noqa: F811
):
    signed_in(page, live_server, reviewer)
    form = open_claimed(page, live_server, clinical_item)
    form.get_by_label("Deny").check()
    expect(page.locator("#sf-denialReason span.sf-req")).to_have_count(1)
    held: list[Route] = []
    page.route(re.compile(r"/items/\d+/form/$"), lambda route: held.append(route))

    with page.expect_request(re.compile(r"/form/$")):
        form.get_by_role("button", name="Add a row to Supporting diagnoses").click()
    # While the new row is on its way, the reviewer types in the row already there.
    form.locator("#id_diagnosisCodes\\.0\\.code").fill("M17.11")
    assert len(held) == 1
    with page.expect_response(re.compile(r"/form/$")):
        held[0].continue_()

    expect(form.get_by_label("ICD-10-CM code")).to_have_count(2)
    # Once the new part has settled (htmx focuses `autofocus` fields then), the caret is still
    # where the reviewer was typing, not in the new row.
    expect(form.locator("#sf-diagnosisCodes")).not_to_have_class(
        re.compile(r"htmx-(added|settling)")
    )
    page.keyboard.type("2")
    expect(form.locator("#id_diagnosisCodes\\.0\\.code")).to_have_value("M17.112")
    expect(form.locator("#id_diagnosisCodes\\.1\\.code")).to_have_value("")


def test_no_autosave_ever_writes_an_empty_draft_over_a_real_one(
    live_server,
    page,
    billing_item,
    reviewer,  # noqa: F811
):
    signed_in(page, live_server, reviewer)
    _slow_form_partial(page, 1.0)
    open_claimed(page, live_server, billing_item)
    _fill_write_off(page)
    posted: list[list[tuple[str, str]]] = []
    page.on(
        "request",
        lambda r: (
            posted.append(_pairs(r.post_data))
            if r.method == "POST" and r.url.endswith(("/draft/", "/form/"))
            else None
        ),
    )
    form = page.locator("#review-form")
    form.get_by_label("Payer call reference").fill("PAY-1")
    form.get_by_label("Explanation").click()  # change → slow re-render; autosave meanwhile
    page.keyboard.type("Typed while the form re-renders.")
    expect(page.locator("#draft-state")).to_contain_text("Draft saved")
    page.wait_for_timeout(1500)
    saves = [dict(pairs) for pairs in posted]
    assert saves and all(s.get("reason") == "small-balance" for s in saves), saves
    # Removing the focused field in a swap fires its "change" while the old part and the new
    # are both in the form: an autosave serialized then carried every field twice.
    for pairs in posted:
        names = [name for name, _ in pairs]
        assert len(names) == len(set(names)), pairs
    draft = Draft.objects.get(item=billing_item)
    assert draft.data["reason"] == ["small-balance"]
    assert draft.data["payerReference"] == ["PAY-1"]


def _pairs(body: str | None) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(body or "", keep_blank_values=True)


# --- 3. Conditional fields hide --------------------------------------------------------------


def test_fields_for_another_decision_are_not_shown_or_sent(
    live_server,
    page,
    clinical_item,
    reviewer,  # noqa: F811
):
    signed_in(page, live_server, reviewer)
    form = open_claimed(page, live_server, clinical_item)
    for label in ("Denial reason", "Approved units", "Valid from"):
        expect(form.get_by_label(label)).to_have_count(0)
    form.get_by_label("Deny").check()
    expect(form.get_by_label("Denial reason")).to_be_visible()
    expect(form.get_by_label("Approved units")).to_have_count(0)
    expect(form.get_by_label("Valid from")).to_have_count(0)
    form.get_by_label("Approve with modifications").check()
    expect(form.get_by_label("Approved units")).to_be_visible()
    expect(form.get_by_label("Valid from")).to_be_visible()
    expect(form.get_by_label("Denial reason")).to_have_count(0)


def test_hardship_fields_show_only_for_a_hardship_write_off(
    live_server,
    page,
    billing_item,
    reviewer,  # noqa: F811
):
    signed_in(page, live_server, reviewer)
    form = open_claimed(page, live_server, billing_item)
    expect(form.get_by_label("Household size")).to_have_count(0)
    form.get_by_label("Reason").select_option(label="Financial hardship")
    expect(form.get_by_label("Household size")).to_be_visible()
    form.get_by_label("Reason").select_option(label="Small balance")
    expect(form.get_by_label("Household size")).to_have_count(0)


def test_a_choice_made_while_a_part_settles_still_shows_its_branch(
    live_server,
    page,
    billing_item,
    reviewer,  # noqa: F811
):
    """htmx binds a fresh part's controls only when it settles; a choice made before that fired
    no re-render and the form kept showing the old choice's fields (seen on a fast click)."""
    signed_in(page, live_server, reviewer)
    open_claimed(page, live_server, billing_item)
    # Widen the moment between swap and settle so the second choice lands inside it.
    page.evaluate("htmx.config.defaultSettleDelay = 1500")
    form = page.locator("#review-form")
    form.get_by_label("Reason").select_option(label="Financial hardship")
    household = form.get_by_label("Household size")
    expect(household).to_be_visible()
    form.get_by_label("Reason").select_option(label="Small balance")
    expect(household).to_have_count(0)
    expect(form.get_by_label("Reason")).to_have_value("small-balance")


# --- 4. Error summary and focus --------------------------------------------------------------


def test_focus_follows_the_work_and_the_summary_stays_true(
    live_server,
    page,
    clinical_item,
    reviewer,  # noqa: F811
):
    signed_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/items/{clinical_item.pk}/")
    # A skip link is the first thing a keyboard reaches.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name=re.compile("Skip to"))).to_be_focused()

    page.get_by_role("button", name="Claim", exact=True).click()
    expect(page.locator("#review-form")).to_be_visible()
    # After a claim, the first field has focus.
    expect(
        page.locator("#review-form input:not([type=hidden]), #review-form select").first
    ).to_be_focused()

    form = page.locator("#review-form")
    form.get_by_role("button", name="Submit", exact=True).click()
    summary = page.locator("#sf-summary")
    expect(summary).to_be_visible()
    expect(summary).to_be_focused()
    expect(summary).to_contain_text("Decision")

    # Answering the decision re-renders the form: the summary no longer names it, and the
    # focus stays on the control the reviewer used.
    form.get_by_label("Deny").check()
    expect(form.get_by_label("Denial reason")).to_be_visible()
    expect(form.get_by_label("Deny")).to_be_focused()
    expect(page.locator("#sf-summary", has_text="Decision")).to_have_count(0)


# --- 5. An ended claim shows at once ---------------------------------------------------------


def test_a_claim_warns_before_it_ends_and_shows_when_it_has(
    live_server,
    page,
    clinical_item,
    reviewer,  # noqa: F811
):
    from datetime import timedelta

    from django.utils import timezone

    signed_in(page, live_server, reviewer)
    open_claimed(page, live_server, clinical_item)
    page.locator("#review-form").get_by_label("Rationale").fill("Typed before the claim ran low.")
    expect(page.locator("#draft-state")).to_contain_text("Draft saved")
    expect(page.locator("#lease")).to_contain_text(re.compile(r"\d+ min left"))
    warning = page.locator("#lease-warning")
    expect(warning).to_be_hidden()

    # Less than two minutes left when the page loads: it warns at once. (A loaded machine may
    # take seconds to reload, so the lease is set well inside the window, not at its edge.)
    ends_soon = timezone.now() + timedelta(seconds=100)
    ReviewItem.objects.filter(pk=clinical_item.pk).update(lease_until=ends_soon)
    page.reload()
    expect(warning).to_be_visible(timeout=WAIT_MS)
    expect(warning).to_contain_text("Your claim ends in")
    warning.get_by_role("button", name="Keep my claim").click()
    expect(warning).to_be_hidden()
    lease_until = ReviewItem.objects.get(pk=clinical_item.pk).lease_until
    assert lease_until - timezone.now() > timedelta(minutes=29)

    # Seconds left (enough for a slow reload to show the form first): the end shows by the
    # page's own clock, no request needed.
    ReviewItem.objects.filter(pk=clinical_item.pk).update(
        lease_until=timezone.now() + timedelta(seconds=8)
    )
    page.reload()
    form = page.locator("#review-form")
    expect(form.get_by_label("Rationale")).to_be_enabled()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    expect(page.locator("#item-status")).to_have_text("Claim ended", timeout=WAIT_MS)
    expect(form.get_by_label("Rationale")).to_be_disabled()
    expect(form.get_by_role("button", name="Submit", exact=True)).to_be_disabled()
    expect(page.locator("#lease-ended")).to_be_visible()
    assert asked == []
    expect(form.get_by_label("Rationale")).to_have_value("Typed before the claim ran low.")
    page.locator("#lease-ended").get_by_role("button", name="Claim again").click()
    expect(page.locator("#item-status")).to_have_text("Claimed")
    expect(page.locator("#review-form").get_by_label("Rationale")).to_be_enabled()
    expect(page.locator("#review-form").get_by_label("Rationale")).to_have_value(
        "Typed before the claim ran low."
    )
    assert ReviewItem.objects.get(pk=clinical_item.pk).status == ItemStatus.CLAIMED


def test_a_claim_that_ended_on_the_server_is_never_shown_as_someone_working(
    live_server,
    page,
    clinical_item,
    reviewer,  # noqa: F811
):
    signed_in(page, live_server, reviewer)
    open_claimed(page, live_server, clinical_item)
    item = ReviewItem.objects.get(pk=clinical_item.pk)
    ReviewItem.objects.filter(pk=item.pk).update(lease_until=item.status_changed_at)
    page.reload()
    expect(page.locator("#item-status")).to_have_text("Claim ended")
    expect(page.locator("#item-panel")).not_to_contain_text("is working on this item")
    expect(page.get_by_role("button", name="Claim again")).to_be_visible()
