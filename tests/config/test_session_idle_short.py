"""Idle limits below a minute are honoured (config/middleware.py records activity every
min(60, idle // 4) seconds): with SESSION_IDLE_SECONDS=20 the session ends 20 seconds after the
last click, never later, and a person who clicks more often than that stays signed in. The clock
is moved with time_machine."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.urls import reverse

from config import middleware

pytestmark = pytest.mark.django_db

PAGE = reverse("reviewqueue:queue")
LOGIN = reverse("login")
BACKGROUND = {"HX-Request": "true", "X-Flowdesk-Background": "1"}
START = datetime(2030, 1, 7, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def twenty_idle_seconds(settings):
    settings.SESSION_IDLE_SECONDS = 20


@pytest.fixture
def clock():
    with time_machine.travel(START, tick=False) as traveller:
        yield traveller


@pytest.fixture
def tab(clock, client, alice):
    """Alice, signed in at START."""
    client.force_login(alice)
    return client


def signed_in(response) -> bool:
    return response.status_code == 200


def signed_out(response) -> bool:
    return response.status_code == 302 and response["Location"].startswith(LOGIN)


def test_activity_is_recorded_often_enough_for_the_limit():
    assert middleware._activity_granularity() == 5


@pytest.mark.parametrize("idle", [1, 2, 3, 4, 7, 20, 59, 60, 239, 240, 30 * 60])
def test_the_granularity_is_at_most_a_quarter_of_the_limit(settings, idle):
    settings.SESSION_IDLE_SECONDS = idle
    assert 1 <= middleware._activity_granularity() <= max(1, idle // 4)
    assert middleware._activity_granularity() <= middleware.ACTIVITY_GRANULARITY


def test_twenty_idle_seconds_end_the_session(tab, clock):
    assert signed_in(tab.get(PAGE))
    clock.shift(timedelta(seconds=20))
    assert signed_in(tab.get(PAGE))  # at the limit: not beyond it
    clock.shift(timedelta(seconds=21))
    assert signed_out(tab.get(PAGE))
    assert "_auth_user_id" not in tab.session


@pytest.mark.parametrize("every", [1, 2, 3, 4, 6, 13])
def test_the_session_ends_no_later_than_the_limit_after_the_last_click(tab, clock, every):
    for _ in range(120 // every):  # two minutes of clicks, whatever their rhythm
        assert signed_in(tab.get(PAGE))
        clock.shift(timedelta(seconds=every))
    assert signed_in(tab.get(PAGE))  # the last click
    clock.shift(timedelta(seconds=21))
    assert signed_out(tab.get(PAGE))


def test_a_pause_shorter_than_the_limit_less_the_granularity_keeps_the_session(tab, clock):
    for _ in range(20):  # a click every three seconds: most are not recorded
        assert signed_in(tab.get(PAGE))
        clock.shift(timedelta(seconds=3))
    clock.shift(timedelta(seconds=20 - 5 - 3))
    assert signed_in(tab.get(PAGE))


def test_background_polls_do_not_keep_a_short_session_alive(tab, clock):
    assert signed_in(tab.get(PAGE))
    for _ in range(4):  # the queue's live refresh, every five seconds
        clock.shift(timedelta(seconds=5))
        assert signed_in(tab.get(PAGE, headers=BACKGROUND))
    clock.shift(timedelta(seconds=1))
    response = tab.get(PAGE, headers=BACKGROUND)
    assert response["HX-Redirect"] == LOGIN
