"""The review queue in a real Chromium, against the engine over HTTP with a real Celery worker
and webhooks: a reviewer gets the next item, fills the clinical review and watches the Run
resume; two reviewers collide on one item; a draft survives a reload; the keyboard opens items.

Screenshots of each key step go to ``test-artifacts/review-queue/`` (git-ignored); with
``FLOWDESK_README_SHOTS=1`` the three the README shows are also written to ``docs/screenshots/``
(only then, so that a test run leaves the checkout clean).
"""

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs

import pytest
from playwright.sync_api import Browser, Page, expect

from flows_integration import services as integration
from flows_integration.models import FlowRun, FlowTemplate
from reviewqueue.models import Draft, ItemStatus, ReviewItem, Route
from tests.reviewqueue.conftest import (  # noqa: F401
    CLINICAL_INPUT,
    clinical_queue,
    colleague,
    reviewer,
)
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "review-queue"
README_SHOTS = ROOT / "docs" / "screenshots"

# A loaded two-core machine runs the server, the engine, the worker and Chromium at once.
WAIT_MS = 30_000


def shot(page: Page, name: str, *, readme: str | None = None) -> None:
    """Keep a screenshot as a test artifact (and, for the README, under docs/screenshots)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if readme and os.environ.get("FLOWDESK_README_SHOTS") == "1":
        README_SHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_SHOTS / readme)


def patient(page: Page) -> Page:
    page.set_default_timeout(WAIT_MS)
    page.set_default_navigation_timeout(WAIT_MS)
    return page


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/accounts/login/?next=/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-password")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/")
    expect(page.get_by_role("heading", name="Work queue")).to_be_visible()


@pytest.fixture
def paused_items(
    flows_api,
    receiver_registered,
    celery_worker,
    clinical_queue,  # noqa: F811
) -> Callable[[int], list[ReviewItem]]:
    """A factory: ``count`` prior-authorization Runs created in the engine, each paused at
    clinical review, their items open in the clinical queue (webhooks → worker → mirror)."""
    integration.templates_import()
    Route.objects.create(
        template=FlowTemplate.objects.get(template_id="prior-authorization"),
        queue=clinical_queue,
    )

    def make(count: int = 1) -> list[ReviewItem]:
        runs = [
            integration.run_create(
                template_id="prior-authorization", input_data=CLINICAL_INPUT, version=1
            )
            for _ in range(count)
        ]
        ids = [run.flow_run_id for run in runs]
        eventually(
            lambda: (
                ReviewItem.objects.filter(run__flow_run_id__in=ids, status=ItemStatus.OPEN).count()
                == count
            ),
            what=f"{count} item(s) to open",
        )
        items = [ReviewItem.objects.get(run__flow_run_id=run_id) for run_id in ids]
        assert all(item.state_id == "clinical-review" for item in items)
        return items

    return make


@pytest.fixture
def second_page(browser: Browser) -> Iterator[Page]:
    """A second, separate browser session (its own cookies): a colleague's desk."""
    context = browser.new_context()
    yield patient(context.new_page())
    context.close()


def draft_request_with(name: str, value: str) -> Callable:
    """Matches the autosave request that carries ``name=value``: it was sent after the value
    was typed, so once it has answered the draft holds it."""

    def matches(response) -> bool:
        request = response.request
        if request.method != "POST" or not request.url.endswith("/draft/"):
            return False
        return parse_qs(request.post_data or "").get(name) == [value]

    return matches


def test_get_next_fill_the_clinical_review_submit_and_watch_the_run_complete(
    live_server,
    page,
    paused_items,
    reviewer,  # noqa: F811
):
    page = patient(page)
    (item,) = paused_items(1)
    sign_in(page, live_server.url, "alice")

    rows = page.locator("#queue-rows tbody tr[data-href]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("Maria Lopez")
    # The step by its title, never its id (issue 9).
    expect(rows.first).to_contain_text("Clinical review")
    expect(rows.first).not_to_contain_text("clinical-review")
    shot(page, "1-queue", readme="queue.png")

    page.locator("#get-next").click()
    page.wait_for_url(f"{live_server.url}/items/{item.pk}/")
    expect(page.get_by_role("heading", name="Clinical review", exact=True)).to_be_visible()
    expect(page.locator("#item-status")).to_have_text("Claimed")
    expect(page.locator("#lease")).to_contain_text("Your claim:")
    form = page.locator("#review-form")
    expect(form).to_be_visible()

    # The conditionals: approving asks for the authorization period; denying asks instead for
    # a reason and a rationale.
    required = "span.sf-req"
    form.get_by_label("Approve as requested").check()
    expect(page.locator(f"#sf-authorization-validFrom {required}")).to_have_count(1)
    expect(page.locator(f"#sf-authorization-validThrough {required}")).to_have_count(1)
    expect(page.locator(f"#sf-denialReason {required}")).to_have_count(0)
    form.get_by_label("Deny").check()
    expect(page.locator(f"#sf-denialReason {required}")).to_have_count(1)
    expect(page.locator(f"#sf-rationale {required}")).to_have_count(1)
    expect(page.locator(f"#sf-authorization-validFrom {required}")).to_have_count(0)
    expect(form.get_by_label("Deny")).to_be_checked()
    form.get_by_label("Denial reason").select_option(label="Not medically necessary")
    form.get_by_label("Rationale").fill("Conservative therapy has not been tried for 12 weeks.")

    # The array: the first diagnosis row is there (minItems); add a second with its button.
    codes = form.get_by_label("ICD-10-CM code")
    expect(codes).to_have_count(1)
    codes.first.fill("M17.11")
    form.locator("#id_diagnosisCodes\\.0\\.primary").check()
    form.get_by_role("button", name="Add a row to Supporting diagnoses").click()
    expect(codes).to_have_count(2)
    expect(form.locator("#id_diagnosisCodes\\.0\\.code")).to_have_value("M17.11")
    form.locator("#id_diagnosisCodes\\.1\\.code").fill("E66.01")
    form.locator("#id_diagnosisCodes\\.1\\.description").fill("Morbid obesity")

    form.get_by_label("Guideline").select_option(label="InterQual")
    form.get_by_label("Policy section").fill("InterQual 2026, knee arthroplasty")
    form.locator("#id_reviewer\\.name").fill("Alice Reviewer")
    form.get_by_label("Credential").select_option(label="Registered nurse")
    shot(page, "2-item-filled", readme="item.png")

    form.get_by_role("button", name="Submit", exact=True).click()
    # The panel polls while the answer travels: sending → delivered → Run resumed.
    expect(page.locator("#item-status")).to_have_text("Run resumed", timeout=WAIT_MS)
    expect(page.locator("#item-panel")).to_contain_text("The Run has resumed.")
    expect(page.locator("#review-form")).to_have_count(0)
    shot(page, "3-item-sent", readme="item-sent.png")

    submission = ReviewItem.objects.get(pk=item.pk).submissions.get()
    assert submission.input["decision"] == "deny"
    assert submission.input["denialReason"] == "not-medically-necessary"
    assert [row["code"] for row in submission.input["diagnosisCodes"]] == ["M17.11", "E66.01"]
    assert submission.input["diagnosisCodes"][0]["primary"] is True
    # A denial goes to the medical director: the Run left clinical review and paused again.
    eventually(
        lambda: FlowRun.objects.filter(
            flow_run_id=item.run.flow_run_id, status="PENDING", state_id="supervisor-signoff"
        ).exists(),
        what="the Run to pause at supervisor-signoff",
    )

    # The sign-off arrives in the queue by the live refresh, without reloading the page.
    page.get_by_role("link", name="← Queue").click()
    expect(page.locator("#queue-rows")).to_contain_text(
        "Medical director sign-off", timeout=WAIT_MS
    )
    shot(page, "4-queue-signoff")
    page.locator("#get-next").click()
    expect(page.get_by_role("heading", name="Medical director sign-off")).to_be_visible()
    signoff = page.locator("#review-form")
    # The sign-off controls a conditional: its choice re-renders the form; let that land.
    with page.expect_response(lambda r: r.url.endswith("/form/"), timeout=WAIT_MS):
        signoff.get_by_label("Uphold the reviewer's decision").check()
    expect(signoff.get_by_label("Uphold the reviewer's decision")).to_be_checked()
    # The signature is the signed-in person's, not typed (x-signature).
    expect(signoff.locator("#id_signedBy")).to_have_value("alice")
    signoff.locator("#id_signedOn").fill("2027-01-10")
    signoff.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#item-status")).to_have_text("Run resumed", timeout=WAIT_MS)
    shot(page, "5-signoff-sent")
    eventually(
        lambda: FlowRun.objects.filter(
            flow_run_id=item.run.flow_run_id, status="COMPLETE"
        ).exists(),
        what="the Run to reach COMPLETE",
    )


def test_two_reviewers_claim_one_item_and_exactly_one_gets_it(
    live_server,
    page,
    second_page,
    paused_items,
    reviewer,  # noqa: F811
    colleague,  # noqa: F811
):
    (item,) = paused_items(1)
    desks = {"alice": patient(page), "bob": second_page}
    for username, desk in desks.items():
        sign_in(desk, live_server.url, username)
        desk.goto(f"{live_server.url}/items/{item.pk}/")
        expect(desk.locator("#item-status")).to_have_text("Open")
        expect(desk.get_by_role("button", name="Claim", exact=True)).to_be_visible()

    for desk in desks.values():
        desk.get_by_role("button", name="Claim", exact=True).click()

    winner = eventually(lambda: ReviewItem.objects.get(pk=item.pk).claimed_by, what="a claim")
    loser = "bob" if winner.username == "alice" else "alice"
    won, lost = desks[winner.username], desks[loser]

    expect(won.locator("#review-form")).to_be_visible(timeout=WAIT_MS)
    expect(won.locator("#item-status")).to_have_text("Claimed")
    expect(won.locator("#lease")).to_contain_text("Your claim:")
    shot(won, f"6-collision-winner-{winner.username}")

    expect(lost.locator("#item-panel .holder")).to_have_text(
        f"{winner.username} is working on this item.", timeout=WAIT_MS
    )
    expect(lost.locator("#review-form")).to_have_count(0)
    shot(lost, f"7-collision-loser-{loser}")
    assert ReviewItem.objects.get(pk=item.pk).claimed_by == winner


def test_a_draft_survives_a_reload(live_server, page, paused_items, reviewer):  # noqa: F811
    page = patient(page)
    (item,) = paused_items(1)
    sign_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/items/{item.pk}/")
    page.get_by_role("button", name="Claim", exact=True).click()
    form = page.locator("#review-form")
    expect(form).to_be_visible()

    # The conditional re-renders the form: let it land before typing elsewhere.
    form.get_by_label("Deny").check()
    expect(page.locator("#sf-denialReason span.sf-req")).to_have_count(1)
    form.get_by_label("Denial reason").select_option(label="Insufficient documentation")
    form.get_by_role("button", name="Add a row to Supporting diagnoses").click()
    expect(form.get_by_label("ICD-10-CM code")).to_have_count(2)
    # The new row takes the focus with the swap itself, never later while a field is being typed.
    expect(form.locator("#id_diagnosisCodes\\.1\\.code")).to_be_focused()
    form.locator("#id_diagnosisCodes\\.0\\.code").fill("M17.11")
    form.locator("#id_diagnosisCodes\\.1\\.code").fill("E11.9")
    form.get_by_label("Rationale").fill("No imaging report was attached.")
    # Typed right after the previous field, as people do: the autosave that follows must carry it.
    with page.expect_response(draft_request_with("reviewer.name", "Alice Draft"), timeout=WAIT_MS):
        form.locator("#id_reviewer\\.name").fill("Alice Draft")
    expect(page.locator("#draft-state")).to_contain_text("Draft saved", timeout=WAIT_MS)
    shot(page, "8-draft-saved")
    # Stored as typed, before the page shows it again: a failure below is then the page's.
    saved = Draft.objects.get(item=item).data
    assert (saved["diagnosisCodes.0.code"], saved["reviewer.name"]) == (["M17.11"], ["Alice Draft"])

    page.reload()
    form = page.locator("#review-form")
    expect(form).to_be_visible()
    expect(page.locator("#draft-state")).to_contain_text("Draft saved")
    expect(form.get_by_label("Deny")).to_be_checked()
    expect(form.get_by_label("Denial reason")).to_have_value("insufficient-documentation")
    expect(form.get_by_label("ICD-10-CM code")).to_have_count(2)
    expect(form.locator("#id_diagnosisCodes\\.0\\.code")).to_have_value("M17.11")
    expect(form.locator("#id_diagnosisCodes\\.1\\.code")).to_have_value("E11.9")
    expect(form.get_by_label("Rationale")).to_have_value("No imaging report was attached.")
    expect(form.locator("#id_reviewer\\.name")).to_have_value("Alice Draft")
    shot(page, "9-draft-after-reload")


def test_j_then_o_opens_the_first_item(live_server, page, paused_items, reviewer):  # noqa: F811
    page = patient(page)
    paused_items(2)
    sign_in(page, live_server.url, "alice")
    rows = page.locator("#queue-rows tbody tr[data-href]")
    expect(rows).to_have_count(2)
    first = rows.first.get_attribute("data-href")
    assert first

    page.keyboard.press("j")
    expect(rows.first).to_have_class(re.compile(r"\bselected\b"))
    expect(rows.first).to_be_focused()
    shot(page, "10-keyboard-selected")
    page.keyboard.press("o")
    page.wait_for_url(f"{live_server.url}{first}")
    expect(page.get_by_role("heading", name="Clinical review", exact=True)).to_be_visible()
    expect(page.locator("#item-status")).to_have_text("Open")
