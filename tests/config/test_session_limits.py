"""Sessions end after SESSION_IDLE_SECONDS without activity and SESSION_MAX_SECONDS in all
(config/middleware.py); background polling is not activity; htmx is sent to sign in with
HX-Redirect. The clock is moved with time_machine."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from audit.models import AuditEvent
from config import middleware

pytestmark = pytest.mark.django_db

PAGE = reverse("reviewqueue:queue")
LOGIN = reverse("login")
HX = {"HX-Request": "true"}
BACKGROUND = {"HX-Request": "true", "X-Flowdesk-Background": "1"}
START = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture(autouse=True)
def long_cookie(settings):
    # Django's own expiry must not be what ends the session in these tests: the middleware is.
    settings.SESSION_COOKIE_AGE = 14 * 24 * 60 * 60


@pytest.fixture
def browser(clock, client, alice):
    """Alice, signed in at START."""
    client.force_login(alice)
    return client


def signed_in(response) -> bool:
    return response.status_code == 200


def signed_out(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_the_limits_are_thirty_idle_minutes_and_twelve_hours(settings):
    assert settings.SESSION_IDLE_SECONDS == 30 * 60
    assert settings.SESSION_MAX_SECONDS == 12 * 60 * 60


def test_a_session_in_use_stays_signed_in(browser, clock):
    for _ in range(12):  # four hours, a click every twenty minutes
        assert signed_in(browser.get(PAGE))
        clock.shift(timedelta(minutes=20))
    assert signed_in(browser.get(PAGE))


def test_idle_beyond_the_limit_signs_out(browser, clock, alice):
    assert signed_in(browser.get(PAGE))
    clock.shift(timedelta(minutes=29))
    assert signed_in(browser.get(PAGE))
    clock.shift(timedelta(minutes=31))
    response = browser.get(PAGE)
    assert signed_out(response)
    assert "next=/" in response["Location"]
    assert "_auth_user_id" not in browser.session
    assert AuditEvent.objects.filter(action="logout", actor=alice).count() == 1
    # Signed out for good: the next request is not let back in.
    assert signed_out(browser.get(PAGE))


def test_idle_is_counted_from_sign_in_when_nothing_follows(browser, clock):
    clock.shift(timedelta(minutes=31))
    assert signed_out(browser.get(PAGE))


def test_twelve_hours_is_the_most_even_when_active(browser, clock):
    elapsed = timedelta(0)
    while elapsed <= timedelta(hours=12):
        assert signed_in(browser.get(PAGE)), f"signed out after {elapsed}"
        clock.shift(timedelta(minutes=25))
        elapsed += timedelta(minutes=25)
    assert signed_out(browser.get(PAGE))


def test_signing_in_again_starts_both_clocks(browser, clock, alice):
    for _ in range(11 * 3):  # eleven hours of work
        assert signed_in(browser.get(PAGE))
        clock.shift(timedelta(minutes=20))
    browser.force_login(alice)  # the same user's session: Django keeps its data
    for _ in range(5):  # on to 12h40, counted from the new sign-in
        assert signed_in(browser.get(PAGE))
        clock.shift(timedelta(minutes=20))
    assert signed_in(browser.get(PAGE))


def test_background_requests_do_not_count_as_activity(browser, clock):
    assert signed_in(browser.get(PAGE))
    for _ in range(3):  # the queue's live refresh, every ten minutes
        clock.shift(timedelta(minutes=10))
        assert signed_in(browser.get(PAGE, headers=BACKGROUND))
    clock.shift(timedelta(minutes=1))
    assert signed_out(browser.get(PAGE))


def test_a_background_poll_after_the_limit_is_sent_to_sign_in(browser, clock):
    assert signed_in(browser.get(PAGE))
    clock.shift(timedelta(minutes=31))
    response = browser.get(PAGE, headers=BACKGROUND)
    assert response.status_code == 200
    assert response["HX-Redirect"] == LOGIN
    assert b"queue-rows" not in response.content
    assert signed_out(browser.get(PAGE))


def test_htmx_gets_hx_redirect_to_sign_in(browser, clock):
    assert signed_in(browser.get(PAGE, headers=HX))
    clock.shift(timedelta(hours=1))
    response = browser.post(reverse("reviewqueue:get_next"), headers=HX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == LOGIN
    assert "_auth_user_id" not in browser.session


def test_the_limits_come_from_settings(browser, clock, settings, alice):
    settings.SESSION_IDLE_SECONDS = 120
    settings.SESSION_MAX_SECONDS = 600
    assert signed_in(browser.get(PAGE))
    clock.shift(timedelta(minutes=3))
    assert signed_out(browser.get(PAGE))

    browser.force_login(alice)
    for _ in range(7):  # a click every ninety seconds, up to nine minutes in
        assert signed_in(browser.get(PAGE))
        clock.shift(timedelta(seconds=90))
    assert signed_out(browser.get(PAGE))  # 10.5 minutes after signing in


# --- Idle limits below a minute ---------------------------------------------------------------
# Activity is recorded every min(60, idle // 4) seconds: with SESSION_IDLE_SECONDS=20 the session
# ends 20 seconds after the last click, never later, and a person who clicks more often than that
# stays signed in.


@pytest.fixture
def twenty_idle_seconds(settings):
    settings.SESSION_IDLE_SECONDS = 20


def test_activity_is_recorded_often_enough_for_the_limit(twenty_idle_seconds):
    assert middleware._activity_granularity() == 5


@pytest.mark.parametrize("idle", [1, 2, 3, 4, 7, 20, 59, 60, 239, 240, 30 * 60])
def test_the_granularity_is_at_most_a_quarter_of_the_limit(settings, idle):
    settings.SESSION_IDLE_SECONDS = idle
    assert 1 <= middleware._activity_granularity() <= max(1, idle // 4)
    assert middleware._activity_granularity() <= middleware.ACTIVITY_GRANULARITY


def test_twenty_idle_seconds_end_the_session(twenty_idle_seconds, browser, clock):
    assert signed_in(browser.get(PAGE))
    clock.shift(timedelta(seconds=20))
    assert signed_in(browser.get(PAGE))  # at the limit: not beyond it
    clock.shift(timedelta(seconds=21))
    assert signed_out(browser.get(PAGE))
    assert "_auth_user_id" not in browser.session


@pytest.mark.parametrize("every", [1, 2, 3, 4, 6, 13])
def test_the_session_ends_no_later_than_the_limit_after_the_last_click(
    twenty_idle_seconds, browser, clock, every
):
    for _ in range(120 // every):  # two minutes of clicks, whatever their rhythm
        assert signed_in(browser.get(PAGE))
        clock.shift(timedelta(seconds=every))
    assert signed_in(browser.get(PAGE))  # the last click
    clock.shift(timedelta(seconds=21))
    assert signed_out(browser.get(PAGE))


def test_a_pause_shorter_than_the_limit_less_the_granularity_keeps_the_session(
    twenty_idle_seconds, browser, clock
):
    for _ in range(20):  # a click every three seconds: most are not recorded
        assert signed_in(browser.get(PAGE))
        clock.shift(timedelta(seconds=3))
    clock.shift(timedelta(seconds=20 - 5 - 3))
    assert signed_in(browser.get(PAGE))


def test_background_polls_do_not_keep_a_short_session_alive(twenty_idle_seconds, browser, clock):
    assert signed_in(browser.get(PAGE))
    for _ in range(4):  # the queue's live refresh, every five seconds
        clock.shift(timedelta(seconds=5))
        assert signed_in(browser.get(PAGE, headers=BACKGROUND))
    clock.shift(timedelta(seconds=1))
    response = browser.get(PAGE, headers=BACKGROUND)
    assert response["HX-Redirect"] == LOGIN
