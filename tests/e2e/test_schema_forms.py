"""Schema forms in a real Chromium, through the admin preview: conditionals appear and
disappear, rows are added and removed, errors land on their fields, and the JSON is exact."""

import json
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from flows_integration import services

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).parents[2] / "test-artifacts" / "schema-forms"

TEMPLATE = """
metadata: {name: E2E form}
input: {type: object}
startsAt: review
states:
  review:
    type: callback
    title: Review the balance
    input:
      type: object
      required: [reason, items]
      properties:
        reason:
          type: string
          title: Reason
          oneOf: [{const: small, title: Small balance}, {const: other, title: Other}]
        amount: {type: integer, title: Amount, minimum: 1}
        items:
          type: array
          title: Items
          minItems: 1
          maxItems: 3
          items:
            type: object
            required: [code]
            properties:
              code: {type: string, title: Code, pattern: "^[A-Z][0-9]{2}$"}
      if: {properties: {reason: {const: other}}, required: [reason]}
      then:
        properties: {explanation: {type: string, title: Explanation, minLength: 5}}
        required: [explanation]
    ui: {fields: {reason: {widget: radio}}}
    end: true
"""


@pytest.fixture
def admin_page(live_server, page, django_user_model):
    django_user_model.objects.create_superuser("ada", password="ada-password")
    page.goto(f"{live_server.url}{reverse('admin:login')}")
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("ada-password")
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{live_server.url}/admin/")
    return page


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_conditionals_rows_errors_and_the_exact_json(live_server, admin_page):
    page = admin_page
    version = services.version_store(template_id="e2e-form", number=1, source=TEMPLATE)
    url = reverse("admin:flows_integration_templateversion_preview", args=[version.pk, "review"])
    page.goto(f"{live_server.url}{url}")
    expect(page.get_by_role("heading", name="Preview: Review the balance")).to_be_visible()

    # A conditional field appears when its controlling field changes, by keyboard too.
    expect(page.get_by_label("Explanation")).to_have_count(0)
    page.get_by_label("Other").focus()
    page.keyboard.press("Space")
    expect(page.get_by_label("Explanation")).to_be_visible()
    page.get_by_label("Explanation").fill("stale text that must not be sent")
    shot(page, "1-conditional-shown")
    page.get_by_label("Small balance").check()
    expect(page.get_by_label("Explanation")).to_have_count(0)

    # Rows: one to start (minItems), add up to maxItems, remove one.
    expect(page.get_by_label("Code")).to_have_count(1)
    page.get_by_role("button", name="Add a row to Items").click()
    expect(page.get_by_label("Code")).to_have_count(2)
    expect(page.locator("#id_items\\.1\\.code")).to_be_focused()
    page.keyboard.type("X99")
    page.get_by_role("button", name="Add a row to Items").click()
    expect(page.get_by_label("Code")).to_have_count(3)
    expect(page.get_by_role("button", name="Add a row to Items")).to_have_count(0)
    page.locator("#id_items\\.2\\.code").fill("Q77")
    page.get_by_role("button", name="Remove Items 2").click()
    expect(page.get_by_label("Code")).to_have_count(2)
    # What was typed stayed with its row: row 3 moved up to row 2.
    expect(page.locator("#id_items\\.1\\.code")).to_have_value("Q77")
    shot(page, "2-rows")

    # Errors land on the right fields, input kept as typed.
    page.locator("#id_items\\.0\\.code").fill("M17")
    page.locator("#id_items\\.1\\.code").fill("bad")
    page.get_by_label("Amount").fill("0")
    page.get_by_role("button", name="Validate and show the JSON").click()
    expect(page.locator("#sf-items-1-code .errorlist")).to_have_text(
        "Enter it in the expected format."
    )
    expect(page.locator("#sf-amount .errorlist")).to_have_text("Must be at least 1.")
    expect(page.locator("#sf-items-0-code .errorlist")).to_have_count(0)
    expect(page.locator("#id_items\\.1\\.code")).to_have_value("bad")
    expect(page.get_by_label("Amount")).to_have_attribute("aria-describedby", "id_amount_error")
    shot(page, "3-errors")

    page.locator("#id_items\\.1\\.code").fill("E11")
    page.get_by_label("Amount").fill("5")
    page.get_by_role("button", name="Validate and show the JSON").click()
    answer = json.loads(page.locator("#sf-answer").inner_text())
    assert answer == {"reason": "small", "amount": 5, "items": [{"code": "M17"}, {"code": "E11"}]}
    shot(page, "4-json")


def test_a_demo_form_by_keyboard_alone(live_server, admin_page):
    """The billing write-off form: tab to each control, type, submit with Enter."""
    page = admin_page
    source = (Path(__file__).parents[2] / "flows_engine/demo/billing-write-off/v1.yaml").read_text()
    version = services.version_store(template_id="billing-write-off", number=1, source=source)
    url = reverse(
        "admin:flows_integration_templateversion_preview", args=[version.pk, "manager-approval"]
    )
    page.goto(f"{live_server.url}{url}")
    page.get_by_role("radio", name="Reject").focus()
    page.keyboard.press("Space")  # reject: rejection reason and next step become required
    expect(page.locator("#sf-rejectionReason .sf-req")).to_have_count(1)
    page.get_by_label("Why rejected").focus()
    page.keyboard.type("Balance is owed by the patient")
    page.keyboard.press("Tab")
    expect(page.get_by_label("Next step for the account")).to_be_focused()
    page.keyboard.press("ArrowDown")
    page.get_by_role("button", name="Validate and show the JSON").focus()
    page.keyboard.press("Enter")
    answer = json.loads(page.locator("#sf-answer").inner_text())
    assert answer["decision"] == "reject"
    assert answer["rejectionReason"] == "Balance is owed by the patient"
    assert answer["nextStep"] in {"bill-patient", "payment-plan", "appeal", "collections"}
    shot(page, "5-keyboard")


MONEY_TEMPLATE = """
metadata: {name: E2E money}
input: {type: object}
startsAt: adjust
states:
  adjust:
    type: callback
    title: Adjust the balance
    input:
      type: object
      required: [amount, confirmed]
      properties:
        amount: {type: number, title: Amount (USD), multipleOf: 0.01, minimum: 0}
        notes: {type: string, title: Notes}
        confirmed: {type: boolean, title: I checked the balance}
    end: true
"""


def test_an_amount_in_cents_and_a_multi_line_note_are_sent_exactly(live_server, admin_page):
    page = admin_page
    version = services.version_store(template_id="e2e-money", number=1, source=MONEY_TEMPLATE)
    url = reverse("admin:flows_integration_templateversion_preview", args=[version.pk, "adjust"])
    page.goto(f"{live_server.url}{url}")

    # A fraction of a cent is refused on its field; the amount stays as typed.
    page.get_by_label("Amount (USD)").fill("1234.575")
    page.get_by_role("button", name="Validate and show the JSON").click()
    expect(page.locator("#sf-amount .errorlist")).to_have_text("Must be a multiple of 0.01.")
    expect(page.get_by_label("Amount (USD)")).to_have_value("1234.575")

    # 1234.57 (which binary floating point calls no multiple of 0.01) is accepted, and Enter
    # in the notes starts a new line instead of submitting the form.
    page.get_by_label("Amount (USD)").fill("1234.57")
    notes = page.get_by_label("Notes")
    expect(notes).to_have_js_property("tagName", "TEXTAREA")
    notes.click()
    page.keyboard.type("Called the payer.")
    page.keyboard.press("Enter")
    page.keyboard.press("Enter")
    page.keyboard.type("  Ref PAY-77812")
    page.get_by_label("I checked the balance").check()
    page.get_by_role("button", name="Validate and show the JSON").click()

    shown = page.locator("#sf-answer").inner_text()
    assert '"amount": 1234.57,' in shown  # the number as typed, not a string, not 1234.5699…
    assert json.loads(shown) == {
        "amount": 1234.57,
        "notes": "Called the payer.\n\n  Ref PAY-77812",
        "confirmed": True,
    }
    # The re-rendered form still holds both lines.
    expect(page.get_by_label("Notes")).to_have_value("Called the payer.\n\n  Ref PAY-77812")
    shot(page, "6-money-and-notes")
