"""Separation of duties in a real Chromium, against the engine over HTTP with a real Celery worker
and webhooks, set up as the demo sets it up: Alice denies a prior authorization; its medical
director sign-off is not hers to take, even from a queue she can see; Maria signs it off, and the
signature is her name, not something typed.

Screenshots go to ``test-artifacts/review-queue/`` (git-ignored); the sign-off refused and signed
are the README's with ``FLOWDESK_README_SHOTS=1``.
"""

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import Browser, expect

from flows_integration import services as integration
from flows_integration.models import FlowRun
from reviewqueue import demo
from reviewqueue.models import ItemStatus, ReviewItem, Submission
from tests.e2e.test_review_queue import WAIT_MS, patient, shot, sign_in
from tests.reviewqueue.conftest import CLINICAL_INPUT
from tests.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.worker, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def staff(django_user_model, role_groups):
    """The demo's queues and routes, Alice on the Clinical team and Maria (first name only, so
    she signs as "Maria") on the Sign-off team. Alice is on the Sign-off team too, as a reviewer
    who also signs off other people's work: the sign-off queue is hers to see, so only the
    route's separation of duties keeps her from her own Run's sign-off."""
    demo.demo_queues_ensure()
    people = {}
    for username, first_name, teams in (
        ("alice", "", ("Clinical team", "Sign-off team")),
        ("maria", "Maria", ("Sign-off team",)),
    ):
        user = django_user_model.objects.create_user(
            username, password=f"{username}-password", first_name=first_name
        )
        user.groups.add(*[Group.objects.get_or_create(name=n)[0] for n in ("Reviewer", *teams)])
        people[username] = user
    return people


@pytest.fixture
def review(flows_api, receiver_registered, celery_worker, staff) -> ReviewItem:
    """A prior-authorization Run of the demo template, paused at its clinical review."""
    integration.templates_import()
    run = integration.run_create(
        template_id="prior-authorization", input_data=CLINICAL_INPUT, version=1
    )
    return eventually(
        lambda: ReviewItem.objects.filter(
            run__flow_run_id=run.flow_run_id, state_id="clinical-review", status=ItemStatus.OPEN
        ).first(),
        what="the clinical review to open",
    )


@pytest.fixture
def maria_page(browser: Browser):
    """Maria's own browser session (her own cookies): another desk."""
    context = browser.new_context()
    yield patient(context.new_page())
    context.close()


def test_the_reviewer_cannot_sign_off_her_own_denial_and_the_director_signs_as_herself(
    live_server, page, maria_page, review, staff
):
    page = patient(page)
    sign_in(page, live_server.url, "alice")

    # Alice denies the request in the clinical review.
    page.locator("#get-next").click()
    page.wait_for_url(f"{live_server.url}/items/{review.pk}/")
    form = page.locator("#review-form")
    form.get_by_label("Deny").check()
    expect(page.locator("#sf-denialReason span.sf-req")).to_have_count(1)
    form.get_by_label("Denial reason").select_option(label="Not medically necessary")
    form.get_by_label("Rationale").fill("Conservative therapy has not been tried for 12 weeks.")
    form.locator("#id_diagnosisCodes\\.0\\.code").fill("M17.11")
    form.get_by_label("Guideline").select_option(label="InterQual")
    form.locator("#id_reviewer\\.name").fill("Alice Reviewer")
    form.get_by_label("Credential").select_option(label="Registered nurse")
    form.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#item-status")).to_have_text("Run resumed", timeout=WAIT_MS)

    signoff = eventually(
        lambda: ReviewItem.objects.filter(
            run=review.run, state_id="supervisor-signoff", status=ItemStatus.OPEN
        ).first(),
        what="the sign-off to open",
    )
    assert signoff.queue.name == "Sign-off"

    # The sign-off is in a queue she sees, but "get next" does not hand it to her...
    page.get_by_role("link", name="← Queue").click()
    expect(page.locator("#queue-rows")).to_contain_text("Medical director sign-off")
    page.locator("#get-next").click()
    expect(page.get_by_text("Nothing left to take in your queues.")).to_be_visible()
    assert ReviewItem.objects.get(pk=signoff.pk).status == ItemStatus.OPEN

    # ...and its page says why, with nothing to claim.
    page.goto(f"{live_server.url}/items/{signoff.pk}/")
    expect(page.locator("#item-separation")).to_have_text(
        "You answered an earlier step of this Run (Clinical review); another person must take "
        "this step."
    )
    expect(page.get_by_role("button", name="Claim", exact=True)).to_have_count(0)
    shot(page, "sod-1-alice-sees-why", readme="separation-of-duties.png")

    # Maria gets it next, and the signature is hers: filled in, and not to be typed over.
    sign_in(maria_page, live_server.url, "maria")
    maria_page.locator("#get-next").click()
    maria_page.wait_for_url(f"{live_server.url}/items/{signoff.pk}/")
    expect(maria_page.get_by_role("heading", name="Medical director sign-off")).to_be_visible()
    form = maria_page.locator("#review-form")
    signature = form.get_by_label("Medical director")
    expect(signature).to_have_value("Maria")
    expect(signature).to_have_attribute("readonly", "")
    expect(signature).not_to_be_editable()
    # The choice re-renders the form (a conditional): let it land before typing elsewhere.
    with maria_page.expect_response(lambda r: r.url.endswith("/form/"), timeout=WAIT_MS):
        form.get_by_label("Uphold the reviewer's decision").check()
    expect(form.get_by_label("Medical director")).to_have_value("Maria")
    form.locator("#id_signedOn").fill("2027-01-10")
    shot(maria_page, "sod-2-maria-signs", readme="signature.png")
    form.get_by_role("button", name="Submit", exact=True).click()
    expect(maria_page.locator("#item-status")).to_have_text("Run resumed", timeout=WAIT_MS)
    shot(maria_page, "sod-3-signed-off")

    answer = Submission.objects.get(item=signoff)
    assert answer.submitted_by == staff["maria"]
    assert answer.input["signedBy"] == "Maria"
    eventually(
        lambda: FlowRun.objects.filter(pk=review.run_id, status="COMPLETE").exists(),
        what="the Run to complete",
    )
