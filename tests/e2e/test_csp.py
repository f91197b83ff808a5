"""The Content-Security-Policy in a real Chromium: the queue, an item page worked through its
form, and the admin's pages report no violation, and their scripts still do their jobs.

Violations are collected twice: by a ``securitypolicyviolation`` listener that Playwright adds
before any of the page's own scripts run (a CSP does not apply to it), and from Chromium's
console, where each refusal is also logged.
"""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from playwright.sync_api import Page, expect

from flows_integration.models import TemplateVersion
from tests.e2e.test_accessibility import (  # noqa: F401
    WAIT_MS,
    demo_item,
    demo_queue,
    reviewer,
    signed_in,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} blocked ${event.blockedURI || "inline"}`
    + ` at ${event.sourceFile}:${event.lineNumber}`);
});
"""


class Violations:
    """What the policy refused on ``page``, from every document it loaded."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(LISTEN)
        page.on("console", self._console)

    def _console(self, message) -> None:
        if "Content Security Policy" in message.text:
            self.console.append(message.text)

    def seen(self) -> list[str]:
        return [*self.page.evaluate("window.__violations"), *self.console]

    def assert_none(self) -> None:
        assert self.seen() == [], f"on {self.page.url}"


@pytest.fixture
def violations(page: Page) -> Violations:
    return Violations(page)


def test_a_violation_is_seen(live_server, page, violations):
    """The listeners are not deaf: an inline script put into a served page is refused, and seen."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.ran = true'; document.body.append(s); }"
    )
    expect(page.locator("body")).to_be_visible()
    page.wait_for_function("window.__violations.length > 0", timeout=WAIT_MS)
    assert page.evaluate("window.ran") is None
    assert any("script-src" in v for v in violations.seen())


def test_the_queue_and_an_item_worked_through(live_server, page, violations, demo_queue, reviewer):  # noqa: F811
    item = demo_item("clinical-review")
    demo_item("request-write-off")
    signed_in(page, live_server, reviewer)
    page.goto(f"{live_server.url}/")
    rows = page.locator("table.queue tr[data-href]")
    expect(rows).to_have_count(2)
    # reviewqueue.js runs: "j" selects the first row.
    page.keyboard.press("j")
    expect(rows.first).to_have_class("selected")
    violations.assert_none()

    page.goto(f"{live_server.url}/items/{item.pk}/")
    page.get_by_role("button", name="Claim", exact=True).click()  # htmx swaps the panel
    form = page.locator("#review-form")
    expect(form).to_be_visible()
    # The lease clock (reviewqueue.js) counts down from what the server said.
    expect(page.locator("#lease")).to_contain_text("min left")
    # A conditional field appears through an htmx re-render (schema_forms.js and htmx).
    form.get_by_label("Approve with modifications").check()
    expect(form.get_by_label("Approved units")).to_be_visible()
    form.get_by_role("button", name="Submit", exact=True).click()
    expect(page.locator("#sf-summary")).to_be_focused()
    violations.assert_none()


def test_the_admin(live_server, page, violations, demo_queue, admin_user):  # noqa: F811
    signed_in(page, live_server, admin_user)
    page.goto(f"{live_server.url}{reverse('admin:index')}")
    expect(page.locator("#site-name")).to_be_visible()
    # A change list with actions, and a change form whose widgets the admin's scripts build.
    Group.objects.create(name="Night shift")
    page.goto(f"{live_server.url}{reverse('admin:auth_group_changelist')}")
    page.locator("input.action-select").first.check()
    expect(page.locator(".action-counter")).to_contain_text("1 of ")  # actions.js counts
    page.goto(f"{live_server.url}{reverse('admin:auth_user_change', args=[admin_user.pk])}")
    expect(page.locator("#id_groups_from")).to_be_attached()  # built by SelectFilter2.js
    violations.assert_none()

    # Flowdesk's own admin pages: a version's form preview (htmx in the admin).
    version = TemplateVersion.objects.get(template__template_id="prior-authorization")
    url = reverse(
        "admin:flows_integration_templateversion_preview", args=[version.pk, "clinical-review"]
    )
    page.goto(f"{live_server.url}{url}")
    page.get_by_role("button", name="Validate and show the JSON").click()
    expect(page.locator("#sf-not-sent")).to_be_visible()
    violations.assert_none()

    # A new API client's token: a click selects it (select_on_click.js, once an onclick).
    page.goto(f"{live_server.url}{reverse('admin:intake_apiclient_add')}")
    page.get_by_label("Name").fill("EHR integration")
    page.get_by_role("button", name="Save", exact=True).click()
    token = page.locator("#intake-token")
    # The script that selects is attached once the page has loaded: a click before it selects
    # nothing (on a loaded machine the field can be clickable sooner).
    expect(token).to_be_visible()
    page.wait_for_load_state("load")
    token.click()
    selected = page.evaluate(
        "() => { const f = document.activeElement;"
        " return f.value.substring(f.selectionStart, f.selectionEnd); }"
    )
    assert selected == token.input_value()
    violations.assert_none()
