"""Accessibility in a real Chromium: axe-core finds no serious or critical problem on the pages
staff use, and a reviewer who has only a keyboard can get the next item, fill every demo form
and submit it.

axe-core is vendored (tests/e2e/vendor/, see its README) and injected into each page, so these
tests need no network. Each check runs axe's default rule set (WCAG 2.0 and 2.1 at levels A and
AA, and axe's best practices; not AAA, not its experimental rules) with WCAG 2.2's target size
added, and fails on any violation of impact "serious" or "critical".
"""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from playwright.sync_api import Page, expect

from flows_integration import services as integration
from reviewqueue.models import ItemStatus, Queue, ReviewItem, Route, Submission, SubmissionStatus
from tests.reviewqueue.conftest import DEMO, pause_run

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).parents[2]
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
EXAMPLES = ROOT / "docs" / "examples"
WAIT_MS = 20_000
# Assertions wait as long as actions do: a loaded two-core machine runs the server and Chromium.
expect.set_options(timeout=WAIT_MS)
FAILING_IMPACTS = ("serious", "critical")
# axe's default rules, plus WCAG 2.2's target size (off by default in axe 4.14). No rule is
# turned off: every problem found so far was real and fixed.
AXE_OPTIONS = {"resultTypes": ["violations"], "rules": {"target-size": {"enabled": True}}}


def axe_problems(page: Page) -> list[dict[str, Any]]:
    """The serious and critical violations axe finds on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        # Evaluated through the DevTools protocol, not added as a <script>: the pages' policy
        # refuses inline script, which is what add_script_tag would insert.
        page.evaluate(AXE.read_text())
    results = page.evaluate("options => axe.run(document, options)", AXE_OPTIONS)
    return [v for v in results["violations"] if v["impact"] in FAILING_IMPACTS]


def explained(problems: list[dict[str, Any]]) -> str:
    """Each violation's rule, what it asks and where it failed, for the failure message."""
    lines = []
    for problem in problems:
        lines.append(f"{problem['id']} ({problem['impact']}): {problem['help']}")
        lines.append(f"  {problem['helpUrl']}")
        for node in problem["nodes"]:
            lines.append(f"  at {' > '.join(map(str, node['target']))}")
            summary = node.get("failureSummary", "").replace("\n", " ")
            if summary:
                lines.append(f"    {summary}")
    return "\n".join(lines)


def assert_accessible(page: Page) -> None:
    problems = axe_problems(page)
    assert not problems, f"axe found problems on {page.url}:\n{explained(problems)}"


def signed_in(page: Page, live_server, user) -> Page:
    """A browser page with ``user``'s session cookie: the login page has its own test."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies["sessionid"]
    page.context.add_cookies([{"name": "sessionid", "value": cookie.value, "url": live_server.url}])
    page.set_default_timeout(WAIT_MS)
    return page


# --- The demo templates, each callback state with an item waiting in it --------------------

PATIENT = {"firstName": "Maria", "lastName": "Lopez", "dateOfBirth": "1980-02-29"}
PRIOR_AUTH_INPUT = json.loads((EXAMPLES / "prior-authorization-input.json").read_text())[
    "inputData"
]
BILLING_INPUT = json.loads((EXAMPLES / "billing-write-off-input.json").read_text())["inputData"]
COVERAGE_INPUT = {"patient": {**PATIENT, "phone": "555-0100"}, "payerId": "60054"}
WRITE_OFF = {"reason": "hardship", "amount": 1310.4, "adjustmentCode": "WO-HS"}

# (template id, version, state id, the Run's input, what earlier states produced)
DEMO_STATES: dict[str, tuple[str, int, str, dict, dict]] = {
    "clinical-review": (
        "prior-authorization",
        1,
        "clinical-review",
        PRIOR_AUTH_INPUT,
        {"estimate-cost": {"estimatedCost": 8150.0, "inNetwork": True}},
    ),
    "coverage-problem": (
        "prior-authorization",
        1,
        "coverage-problem",
        PRIOR_AUTH_INPUT,
        {"verify-coverage": {"active": False, "status": "inactive"}},
    ),
    "supervisor-signoff": (
        "prior-authorization",
        1,
        "supervisor-signoff",
        PRIOR_AUTH_INPUT,
        {
            "estimate-cost": {"estimatedCost": 8150.0},
            "clinical-review": {
                "decision": "deny",
                "denialReason": "insufficient-documentation",
                "rationale": "No imaging report attached.",
                "reviewer": {"name": "Laura Chen", "credential": "RN"},
            },
        },
    ),
    "request-write-off": ("billing-write-off", 1, "request-write-off", BILLING_INPUT, {}),
    "manager-approval": (
        "billing-write-off",
        1,
        "manager-approval",
        BILLING_INPUT,
        {"request-write-off": WRITE_OFF},
    ),
    "post-adjustment": (
        "billing-write-off",
        1,
        "post-adjustment",
        BILLING_INPUT,
        {"request-write-off": WRITE_OFF, "manager-approval": {"decision": "approve"}},
    ),
    "close-request": (
        "billing-write-off",
        1,
        "close-request",
        BILLING_INPUT,
        {
            "request-write-off": WRITE_OFF,
            "manager-approval": {
                "decision": "reject",
                "rejectionReason": "Income above the hardship limit.",
                "nextStep": "payment-plan",
            },
        },
    ),
    "collect-member-id": ("coverage-check", 2, "collect-member-id", COVERAGE_INPUT, {}),
    "coverage-inactive": (
        "coverage-check",
        2,
        "coverage-inactive",
        COVERAGE_INPUT,
        {"discover": {"found": True, "active": False, "payerName": "Aetna"}},
    ),
}


@pytest.fixture
def demo_queue(db, reviewer):
    """One queue, worked by alice's team, with every demo template routed to it."""
    from django.contrib.auth.models import Group

    queue = Queue.objects.create(name="Demo work")
    queue.teams.add(Group.objects.get_or_create(name="Clinical team")[0])
    for path in sorted(DEMO.glob("*/v*.yaml")):
        version = integration.version_store(
            template_id=path.parent.name, number=int(path.stem[1:]), source=path.read_text()
        )
        Route.objects.get_or_create(template=version.template, queue=queue)
    return queue


def demo_item(name: str) -> ReviewItem:
    """An open item of the demo callback state ``name`` (see DEMO_STATES)."""
    from flows_integration.models import TemplateVersion

    template_id, number, state_id, input_data, results = DEMO_STATES[name]
    version = TemplateVersion.objects.get(template__template_id=template_id, number=number)
    run = pause_run(version, state_id, input_data, state_results=results)
    return run.review_items.get()


@pytest.fixture
def reviewer(django_user_model):
    """Alice, a reviewer on the Clinical team."""
    from django.contrib.auth.models import Group

    alice = django_user_model.objects.create_user(
        "alice", password="alice-password", first_name="Alice"
    )
    alice.groups.add(
        *(Group.objects.get_or_create(name=n)[0] for n in ("Reviewer", "Clinical team"))
    )
    return alice


# --- 1. axe finds nothing serious ----------------------------------------------------------


def test_axe_runs_and_reports_what_it_finds(page):
    """A check that finds nothing proves nothing unless axe really ran: an unlabeled field on
    grey text fails it."""
    page.set_content(
        '<html lang="en"><body><main><h1>Test</h1><input>'
        '<p style="color:#bbb;background:#fff">Faint</p></main></body></html>'
    )
    found = {problem["id"] for problem in axe_problems(page)}
    assert {"label", "color-contrast"} <= found, found


def test_the_login_page(live_server, page):
    page.goto(f"{live_server.url}/accounts/login/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert_accessible(page)
    # With the error a wrong password brings.
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Please enter a correct username")).to_be_visible()
    assert_accessible(page)


def test_the_queue_page(live_server, page, demo_queue, reviewer):
    for name in DEMO_STATES:
        demo_item(name)
    signed_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/")
    expect(page.locator("table.queue tr[data-href]")).to_have_count(len(DEMO_STATES))
    assert_accessible(page)
    page.goto(f"{live_server.url}/preferences/")
    expect(page.get_by_role("heading", name="Preferences")).to_be_visible()
    assert_accessible(page)


def test_the_people_page_with_someone_away(live_server, page, demo_queue, reviewer):
    from django.contrib.auth import get_user_model

    from reviewqueue import services

    sam = get_user_model().objects.create_superuser("sam", password="sam-password")
    services.reviewer_pause(reviewer=reviewer, by=sam)
    signed_in(page, live_server, sam)
    page.goto(f"{live_server.url}/supervisor/people/")
    expect(page.get_by_role("button", name="Resume Alice")).to_be_visible()
    assert_accessible(page)


@pytest.mark.parametrize("name", DEMO_STATES)
def test_an_item_with_its_form_claimed(live_server, page, demo_queue, reviewer, name):
    item = demo_item(name)
    signed_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/items/{item.pk}/")
    assert_accessible(page)  # open, not claimed yet
    page.get_by_role("button", name="Claim", exact=True).click()
    form = page.locator("#review-form")
    expect(form).to_be_visible()
    assert_accessible(page)
    # Submitted empty: the error summary and the errors on their fields.
    form.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#sf-summary")).to_be_focused()
    assert_accessible(page)


@pytest.mark.parametrize(
    ("status", "submission_status"),
    [
        (ItemStatus.SENDING, SubmissionStatus.PENDING),
        (ItemStatus.DELIVERED, SubmissionStatus.DELIVERED),
    ],
)
def test_an_item_whose_answer_was_sent(
    live_server, page, demo_queue, reviewer, status, submission_status
):
    """As the delivery task leaves it (no worker runs here): the answer shown, the status live."""
    item = demo_item("clinical-review")
    Submission.objects.create(
        item=item,
        submitted_by=reviewer,
        input=KEYBOARD_ANSWERS["clinical-review"][1],
        status=submission_status,
    )
    ReviewItem.objects.filter(pk=item.pk).update(status=status)
    signed_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/items/{item.pk}/")
    expect(page.locator("#item-status")).to_have_text(ItemStatus(status).label)
    assert_accessible(page)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_admin_preview_of_a_template_version(live_server, page, demo_queue, admin_user, scheme):
    """The admin follows the system's colour scheme; the form on its page must follow too."""
    from flows_integration.models import TemplateVersion

    version = TemplateVersion.objects.get(template__template_id="prior-authorization")
    page.emulate_media(color_scheme=scheme)
    signed_in(page, live_server, admin_user)
    # The version's own page, which links each form's preview.
    url = reverse("admin:flows_integration_templateversion_change", args=[version.pk])
    page.goto(f"{live_server.url}{url}")
    expect(page.locator("#form-previews")).to_be_visible()
    assert_accessible(page)
    url = reverse(
        "admin:flows_integration_templateversion_preview", args=[version.pk, "clinical-review"]
    )
    page.goto(f"{live_server.url}{url}")
    expect(page.get_by_role("button", name="Validate and show the JSON")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name="Validate and show the JSON").click()
    expect(page.locator("#sf-not-sent")).to_be_visible()
    assert_accessible(page)


# --- 2. A keyboard is enough ---------------------------------------------------------------
#
# Only page.keyboard acts below: no click, fill, check or select_option. Locators only read
# the page (which element has focus, what a field holds) to decide the next key.

MAX_TABS = 60
FIRST_FIELD = "input:not([type=hidden]), select, textarea"
# htmx marks the element whose request is in flight, and the part being swapped and settled.
BUSY = ".htmx-request, .htmx-swapping, .htmx-settling"


def settled(page: Page) -> None:
    """Wait until no re-render is in flight or settling: a part swapped in replaces the
    elements a locator resolved before, so focus is read only on a quiet page."""
    page.wait_for_function(f"() => !document.querySelector({BUSY!r})")


def focused(page: Page, locator) -> bool:
    settled(page)
    element_id = locator.get_attribute("id")
    if element_id:
        return page.evaluate("id => document.activeElement?.id === id", element_id)
    return locator.evaluate("el => el === document.activeElement")


def focus_name(page: Page) -> str:
    return page.evaluate(
        "() => { const e = document.activeElement;"
        " return e.id || e.name || `${e.tagName}: ${e.textContent.trim().slice(0, 30)}`; }"
    )


def tab_to(page: Page, locator) -> None:
    """Press Tab until ``locator`` has focus, as a keyboard user moves through the page."""
    seen = []
    for _ in range(MAX_TABS):
        if focused(page, locator):
            return
        page.keyboard.press("Tab")
        seen.append(focus_name(page))
    raise AssertionError(f"Tab never reached {locator}; it went through {seen}")


def type_into(page: Page, field, text: str) -> None:
    """Tab to ``field`` and type ``text`` over whatever it held."""
    tab_to(page, field)
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.type(text)
    expect(field).to_have_value(text)


def type_date(page: Page, field, iso: str) -> None:
    """A date input takes the digits in the browser's order (en-US: month, day, year)."""
    year, month, day = iso.split("-")
    tab_to(page, field)
    page.keyboard.type(f"{month}{day}{year}")
    expect(field).to_have_value(iso)


def choose(page: Page, select, option: str) -> None:
    """Pick ``option`` of a closed select with the arrow keys."""
    tab_to(page, select)
    labels = [text.strip() for text in select.locator("option").all_inner_texts()]
    steps = labels.index(option) - select.evaluate("el => el.selectedIndex")
    for _ in range(abs(steps)):
        page.keyboard.press("ArrowDown" if steps > 0 else "ArrowUp")
        settled(page)
    expect(select.locator("option:checked")).to_have_text(option)


def choose_radio(page: Page, form, option: str) -> None:
    """Tab into the radio group (onto its first radio, or the checked one), then arrow down to
    ``option``; Space picks the radio that has focus when none is checked."""
    radio = form.get_by_role("radio", name=option, exact=True)
    name = radio.get_attribute("name")
    group = form.locator(f'input[type=radio][name="{name}"]')
    for _ in range(MAX_TABS):
        settled(page)
        if page.evaluate("n => document.activeElement?.name === n", name):
            break
        page.keyboard.press("Tab")
    for _ in range(group.count()):
        if focused(page, radio):
            break
        page.keyboard.press("ArrowDown")  # moves and checks; the group wraps at its end
    if not radio.is_checked():
        page.keyboard.press("Space")
    expect(radio).to_be_checked()
    settled(page)


def tick(page: Page, box) -> None:
    """Tab to a checkbox and toggle it with Space."""
    tab_to(page, box)
    page.keyboard.press("Space")
    settled(page)


def press_button(page: Page, button) -> None:
    tab_to(page, button)
    page.keyboard.press("Enter")


# What the reviewer types into each demo form, with the keys alone, and the answer it must send.
# Each takes the branch that shows a conditional part, where the form has one.


def _clinical_review(page: Page, form) -> None:
    choose_radio(page, form, "Approve with modifications")
    expect(form.get_by_label("Approved units")).to_be_visible()
    type_into(page, form.get_by_label("Approved units"), "6")
    type_date(page, form.get_by_label("Valid from"), "2027-01-15")
    type_date(page, form.get_by_label("Valid through"), "2027-04-15")
    type_into(page, form.get_by_label("Rationale"), "Six visits, not twelve.\nSee policy 4.2.")
    first = form.locator('[id="sf-diagnosisCodes-0"]')
    type_into(page, first.get_by_label("ICD-10-CM code"), "M23.221")
    tick(page, first.get_by_label("Primary diagnosis"))
    press_button(page, form.get_by_role("button", name="Add a row to Supporting diagnoses"))
    second = form.locator('[id="sf-diagnosisCodes-1"]')
    # The new row's first field has focus: the reviewer types on.
    expect(second.get_by_label("ICD-10-CM code")).to_be_focused()
    type_into(page, second.get_by_label("ICD-10-CM code"), "M25.561")
    type_into(page, second.get_by_label("Description"), "Pain in right knee")
    choose(page, form.get_by_label("Guideline"), "MCG")
    tick(page, form.get_by_label("Criteria met"))
    type_into(page, form.get_by_label("Name"), "Laura Chen")
    choose(page, form.get_by_label("Credential"), "Physician")


def _coverage_problem(page: Page, form) -> None:
    choose_radio(page, form, "Patient will self-pay")
    type_date(page, form.get_by_label("Office contacted on"), "2026-12-03")
    type_into(page, form.get_by_label("Notes"), "Spoke to the front desk.\nThey will tell her.")


def _supervisor_signoff(page: Page, form) -> None:
    choose_radio(page, form, "Overturn the decision")
    type_date(page, form.get_by_label("Signed on"), "2026-12-04")
    choose_radio(page, form, "Yes")
    type_into(page, form.get_by_label("Comments"), "The imaging report arrived after the review.")


def _request_write_off(page: Page, form) -> None:
    choose(page, form.get_by_label("Reason"), "Financial hardship")
    expect(form.get_by_label("Household size")).to_be_visible()
    type_into(page, form.get_by_label("Amount to write off (USD)"), "980.25")
    choose(page, form.get_by_label("Adjustment code"), "WO-HS Hardship (internal)")
    type_into(page, form.get_by_label("Explanation"), "Lost her job in October; two children.")
    type_into(page, form.get_by_label("Household size"), "3")
    type_into(page, form.get_by_label("Annual household income (USD)"), "31000")
    tick(page, form.get_by_label("pay-stubs"))
    tick(page, form.get_by_label("benefits-letter"))
    type_into(page, form.get_by_label("Payer call reference"), "PAY-77812")
    type_date(page, form.get_by_label("Date of the payer call"), "2026-11-30")


def _manager_approval(page: Page, form) -> None:
    choose_radio(page, form, "Reject")
    expect(form.get_by_label("Why rejected")).to_be_visible()
    type_into(page, form.get_by_label("Why rejected"), "Income is above the hardship limit.")
    choose(page, form.get_by_label("Next step for the account"), "Offer a payment plan")


def _post_adjustment(page: Page, form) -> None:
    type_into(page, form.get_by_label("Adjustment ID in the PM system"), "ADJ-0048213")
    type_date(page, form.get_by_label("Posted on"), "2026-12-02")
    box = form.get_by_label("Patient statement suppressed")
    expect(box).to_be_checked()  # the template's default
    tick(page, box)


def _close_request(page: Page, form) -> None:
    tick(page, form.get_by_label("Next step carried out"))
    type_into(page, form.get_by_label("Notes"), "Payment plan set up: 6 x $218.40.")


def _collect_member_id(page: Page, form) -> None:
    choose(page, form.get_by_label("Payer"), "Cigna")  # over the intake's payer, prefilled
    type_into(page, form.get_by_label("Member ID"), "W123456789")
    type_into(page, form.get_by_label("Notes"), "Read from the card's photo.")


def _coverage_inactive(page: Page, form) -> None:
    choose_radio(page, form, "Patient has new insurance")  # the first radio: Space picks it
    type_into(page, form.get_by_label("Notes"), "New card requested.")


KEYBOARD_ANSWERS: dict[str, tuple[Any, dict[str, Any]]] = {
    "clinical-review": (
        _clinical_review,
        {
            "decision": "modify",
            "approvedUnits": 6,
            "authorization": {"validFrom": "2027-01-15", "validThrough": "2027-04-15"},
            "rationale": "Six visits, not twelve.\nSee policy 4.2.",
            "diagnosisCodes": [
                {"code": "M23.221", "primary": True},
                {"code": "M25.561", "description": "Pain in right knee", "primary": False},
            ],
            "criteria": {"guideline": "mcg", "met": True},
            "reviewer": {"name": "Laura Chen", "credential": "MD"},
        },
    ),
    "coverage-problem": (
        _coverage_problem,
        {
            "outcome": "self-pay",
            "contactedOn": "2026-12-03",
            "notes": "Spoke to the front desk.\nThey will tell her.",
        },
    ),
    "supervisor-signoff": (
        _supervisor_signoff,
        {
            "signoff": "overturned",
            "signedBy": "Alice",  # the signed-in person's name, never typed
            "signedOn": "2026-12-04",
            "peerToPeerOffered": True,
            "comments": "The imaging report arrived after the review.",
        },
    ),
    "request-write-off": (
        _request_write_off,
        {
            "reason": "hardship",
            "amount": 980.25,
            "adjustmentCode": "WO-HS",
            "explanation": "Lost her job in October; two children.",
            "hardship": {
                "householdSize": 3,
                "annualIncome": 31000,
                "documentsReceived": ["pay-stubs", "benefits-letter"],
            },
            "payerReference": "PAY-77812",
            "payerContactDate": "2026-11-30",
        },
    ),
    "manager-approval": (
        _manager_approval,
        {
            "decision": "reject",
            "rejectionReason": "Income is above the hardship limit.",
            "nextStep": "payment-plan",
            "decidedBy": "Alice",
        },
    ),
    "post-adjustment": (
        _post_adjustment,
        {"adjustmentId": "ADJ-0048213", "postedOn": "2026-12-02", "statementSuppressed": False},
    ),
    "close-request": (
        _close_request,
        {"done": True, "notes": "Payment plan set up: 6 x $218.40."},
    ),
    "collect-member-id": (
        _collect_member_id,
        {"payerId": "62308", "memberId": "W123456789", "notes": "Read from the card's photo."},
    ),
    "coverage-inactive": (
        _coverage_inactive,
        {"nextStep": "new-insurance", "notes": "New card requested."},
    ),
}

# Counts every press of a mouse or touch: the keyboard test must end with none.
POINTER_WATCH = """
window.__pointerPresses = 0;
for (const type of ["pointerdown", "mousedown", "touchstart"]) {
  document.addEventListener(type, () => { window.__pointerPresses += 1; }, true);
}
"""


@pytest.mark.parametrize("name", DEMO_STATES)
def test_a_keyboard_alone_gets_the_next_item_fills_it_and_submits(
    live_server, page, demo_queue, reviewer, name
):
    item = demo_item(name)
    fill, answer = KEYBOARD_ANSWERS[name]
    page.add_init_script(POINTER_WATCH)
    signed_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/")
    expect(page.get_by_role("heading", name="Work queue")).to_be_visible()

    press_button(page, page.get_by_role("button", name="Get next item"))
    form = page.locator("#review-form")
    expect(form).to_be_visible()
    expect(page.locator("#item-status")).to_have_text("Claimed")
    # The claimed item opens with its first field in focus, as a claim on its page does.
    expect(form.locator(FIRST_FIELD).first).to_be_focused()
    fill(page, form)
    press_button(page, form.get_by_role("button", name="Submit", exact=True))

    expect(page.locator("#item-status")).to_have_text(re.compile("Sending|Delivered"))
    assert Submission.objects.get(item=item).input == answer
    assert page.evaluate("window.__pointerPresses") == 0


def test_the_queue_keys_get_the_next_item_and_submit_and_next_opens_the_one_after(
    live_server, page, demo_queue, reviewer
):
    first, second = demo_item("close-request"), demo_item("close-request")
    page.add_init_script(POINTER_WATCH)
    signed_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/")
    expect(page.locator("table.queue tr[data-href]")).to_have_count(2)
    page.keyboard.press("n")  # the queue's key for "Get next item"

    done = page.locator("#review-form").get_by_label("Next step carried out")
    expect(done).to_be_focused()
    opened = page.url
    page.keyboard.press("Space")
    press_button(page, page.get_by_role("button", name="Submit and next"))

    # The other item opens, with its first field in focus again.
    expect(page).not_to_have_url(opened)
    expect(page.locator("#item-status")).to_have_text("Claimed")
    expect(page.locator("#review-form").get_by_label("Next step carried out")).to_be_focused()
    submitted = Submission.objects.get()
    assert submitted.item_id in (first.pk, second.pk)
    assert submitted.input == {"done": True}
    other = second if submitted.item_id == first.pk else first
    assert page.url.endswith(f"/items/{other.pk}/")
    assert page.evaluate("window.__pointerPresses") == 0
