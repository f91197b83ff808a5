"""One session per person (SESSION_ONE_PER_USER): a sign-in ends the person's other sessions at
their next request, which is sent to sign in with a message saying why; other people's sessions
are untouched. Off by default. Each sign-in overwrites the person's one ``LatestSignIn`` row, so
of any number of sign-ins the last one written is the one that stays."""

import pytest
from django.test import Client
from django.urls import reverse

from config.middleware import SIGNED_IN_ELSEWHERE
from reviewqueue.models import LatestSignIn
from tests.config.test_settings import settings_of

pytestmark = pytest.mark.django_db

PAGE = reverse("reviewqueue:queue")
LOGIN = reverse("login")
HX = {"HX-Request": "true"}


@pytest.fixture
def one_per_user(settings):
    settings.SESSION_ONE_PER_USER = True


def signed_in_as(user) -> Client:
    """A browser of its own, signed in through the sign-in form."""
    client = Client()
    response = client.post(
        LOGIN, {"username": user.get_username(), "password": f"{user.get_username()}-password"}
    )
    assert response.status_code == 302, "signed in"
    return client


def is_signed_in(client: Client) -> bool:
    return client.get(PAGE).status_code == 200


def test_off_by_default_two_sessions_live_side_by_side(alice):
    assert settings_of("SESSION_ONE_PER_USER") == {"SESSION_ONE_PER_USER": False}
    desk, laptop = signed_in_as(alice), signed_in_as(alice)
    assert is_signed_in(desk)
    assert is_signed_in(laptop)


def test_the_setting_comes_from_the_environment():
    assert settings_of("SESSION_ONE_PER_USER", SESSION_ONE_PER_USER="true") == {
        "SESSION_ONE_PER_USER": True
    }


def test_signing_in_elsewhere_ends_the_first_session_and_says_why(one_per_user, alice):
    desk = signed_in_as(alice)
    assert is_signed_in(desk)
    laptop = signed_in_as(alice)
    response = desk.get(PAGE, follow=True)
    assert response.redirect_chain[-1][0].startswith(LOGIN)
    assert SIGNED_IN_ELSEWHERE in response.content.decode()
    assert "_auth_user_id" not in desk.session
    assert is_signed_in(laptop)
    # Said once: the next visit to the sign-in page is a plain one.
    assert SIGNED_IN_ELSEWHERE not in desk.get(LOGIN).content.decode()


def test_an_htmx_request_of_the_ended_session_is_sent_to_sign_in(one_per_user, alice):
    desk = signed_in_as(alice)
    signed_in_as(alice)
    response = desk.get(PAGE, headers={**HX, "X-Flowdesk-Background": "1"})
    assert response.status_code == 200
    assert response["HX-Redirect"] == LOGIN
    assert SIGNED_IN_ELSEWHERE in desk.get(LOGIN).content.decode()


def test_other_peoples_sessions_are_untouched(one_per_user, alice, bob):
    bobs = signed_in_as(bob)
    signed_in_as(alice)
    signed_in_as(alice)
    assert is_signed_in(bobs)


def test_of_many_sign_ins_only_the_last_stays(one_per_user, alice):
    browsers = [signed_in_as(alice) for _ in range(5)]
    assert [is_signed_in(browser) for browser in browsers] == [False] * 4 + [True]
    assert LatestSignIn.objects.filter(user=alice).count() == 1


def test_signing_in_again_in_the_same_browser_keeps_it(one_per_user, alice):
    desk = signed_in_as(alice)
    desk.post(LOGIN, {"username": "alice", "password": "alice-password"})
    assert is_signed_in(desk)


def test_switching_it_on_applies_to_sessions_already_open(settings, alice):
    desk, laptop = signed_in_as(alice), signed_in_as(alice)
    settings.SESSION_ONE_PER_USER = True
    assert not is_signed_in(desk)
    assert is_signed_in(laptop)


def test_a_signed_out_session_signs_no_one_else_out(one_per_user, alice):
    desk = signed_in_as(alice)
    laptop = signed_in_as(alice)
    laptop.post(reverse("logout"))
    desk_again = signed_in_as(alice)
    assert is_signed_in(desk_again)
    assert not is_signed_in(desk)
