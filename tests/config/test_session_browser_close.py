"""Sessions end when the browser closes (SESSION_EXPIRE_AT_BROWSER_CLOSE): the session cookie
carries no Expires or Max-Age, while the server keeps ending the session at its idle and absolute
limits (tests/config/test_session_limits.py)."""

import pytest
from django.urls import reverse

from tests.config.test_settings import settings_of

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")


def sign_in(client, username: str):
    return client.post(LOGIN, {"username": username, "password": f"{username}-password"})


def test_the_session_cookie_ends_with_the_browser(client, alice, settings):
    response = sign_in(client, "alice")
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie.value
    assert cookie["expires"] == ""
    assert cookie["max-age"] == ""
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"


def test_the_server_still_ends_it_at_the_absolute_limit(client, alice, settings):
    sign_in(client, "alice")
    assert client.session.get_expire_at_browser_close()
    assert client.session.get_expiry_age() == settings.SESSION_MAX_SECONDS


def test_a_cookie_that_outlives_the_browser_can_be_chosen(client, alice, settings):
    """For kiosks that never close the browser nothing changes; for sites that want the old
    behaviour back, the setting turns it off (documented in the README)."""
    settings.SESSION_EXPIRE_AT_BROWSER_CLOSE = False
    cookie = sign_in(client, "alice").cookies[settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == settings.SESSION_MAX_SECONDS


def test_the_setting_is_on_unless_the_environment_says_otherwise():
    assert settings_of("SESSION_EXPIRE_AT_BROWSER_CLOSE") == {
        "SESSION_EXPIRE_AT_BROWSER_CLOSE": True
    }
    off = settings_of("SESSION_EXPIRE_AT_BROWSER_CLOSE", SESSION_EXPIRE_AT_BROWSER_CLOSE="false")
    assert off == {"SESSION_EXPIRE_AT_BROWSER_CLOSE": False}
