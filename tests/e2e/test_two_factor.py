"""Two-factor sign-in in a real Chromium: a supervisor signs in with a password, is asked to set
up an authenticator app, types the key the page shows into "the app" (this test, with
django-otp's TOTP functions), keeps the recovery codes, signs out, and signs in again with a
password and a code. A reviewer is not asked while the site does not ask reviewers."""

from base64 import b32decode

import pytest
from playwright.sync_api import Page, expect

from audit.models import AuditEvent
from tests.e2e.test_accessibility import assert_accessible
from tests.e2e.test_review_queue import WAIT_MS, patient, shot
from tests.reviewqueue.conftest import reviewer, supervisor  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

expect.set_options(timeout=WAIT_MS)


@pytest.fixture(autouse=True)
def two_factor_on(settings):
    settings.TWO_FACTOR_ENABLED = True
    settings.TWO_FACTOR_FOR_REVIEWERS = False


def app_code(secret: str, *, steps_ahead: int = 0) -> str:
    """What an authenticator app holding ``secret`` (as the page shows it) displays now."""
    from django_otp.oath import totp

    key = b32decode(secret.replace(" ", "") + "=" * (-len(secret.replace(" ", "")) % 8))
    return f"{totp(key, drift=steps_ahead):06d}"


def sign_in(page: Page, base_url: str, username: str) -> None:
    page.goto(f"{base_url}/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(f"{username}-password")
    page.get_by_role("button", name="Sign in").click()


def test_a_supervisor_sets_up_two_factor_and_signs_in_with_a_code(
    live_server,
    page: Page,
    supervisor,  # noqa: F811
):
    patient(page)
    sign_in(page, live_server.url, "sam")
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    assert "/accounts/two-factor/set-up/" in page.url
    expect(page.locator(".qr-code svg")).to_be_visible()
    assert_accessible(page)
    shot(page, "two-factor-set-up", readme="two-factor.png")
    secret = page.locator("#two-factor-secret").inner_text()

    page.get_by_label("Code").fill(app_code(secret))
    page.get_by_role("button", name="Turn on two-factor sign-in").click()

    expect(page.get_by_role("heading", name="Recovery codes", exact=True)).to_be_visible()
    codes = page.get_by_role("list", name="Recovery codes").get_by_role("listitem")
    expect(codes).to_have_count(10)
    assert_accessible(page)
    shot(page, "two-factor-recovery-codes")
    page.get_by_role("link", name="I have saved them: continue").click()
    expect(page.get_by_role("heading", name="Work queue")).to_be_visible()

    page.get_by_role("button", name="Sign out sam").click()
    page.wait_for_url("**/accounts/login/")
    sign_in(page, live_server.url, "sam")
    expect(page.get_by_role("heading", name="Two-factor sign-in", exact=True)).to_be_visible()
    assert_accessible(page)
    page.get_by_label("Code").fill("000000" if app_code(secret) != "000000" else "111111")
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_text("That code is not right.")).to_be_visible()
    # Wrong codes make the next one wait a second; the code just used at setting up is spent,
    # so the app's next one (accepted a step early).
    page.wait_for_timeout(1_500)
    page.get_by_label("Code").fill(app_code(secret, steps_ahead=1))
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("heading", name="Work queue")).to_be_visible()

    actions = list(AuditEvent.objects.order_by("pk").values_list("action", flat=True))
    assert [a for a in actions if a.startswith("two_factor.")] == [
        "two_factor.enrolled",
        "two_factor.failed",
        "two_factor.verified",
    ]


def test_a_reviewer_is_not_asked_while_the_site_does_not_ask_reviewers(
    live_server,
    page: Page,
    reviewer,  # noqa: F811
):
    patient(page)
    sign_in(page, live_server.url, "alice")
    expect(page.get_by_role("heading", name="Work queue")).to_be_visible()
    assert "two-factor" not in page.url
