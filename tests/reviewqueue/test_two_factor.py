"""Two-factor sign-in (reviewqueue/two_factor.py): supervisors, flow admins, staff and
superusers set up an authenticator app at their first sign-in and give a code at every one
after; reviewers only where the site says so (or by their own choice); no page, Django admin
included, before the code; recovery codes work once; wrong codes make the next one wait; a
supervisor resets a colleague's; every event audited, never a code or a secret.

The suite turns two-factor off (tests/conftest.py); these tests turn it on."""

import time
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse
from django_otp.oath import TOTP, totp
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from audit.models import AuditEvent
from reviewqueue import roles, two_factor
from tests.config.test_settings import PRODUCTION, settings_of

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")
VERIFY = reverse("two_factor_verify")
ENROL = reverse("two_factor_enrol")
CODES = reverse("two_factor_recovery_codes")
RESET = reverse("two_factor_reset")
QUEUE = reverse("reviewqueue:queue")


@pytest.fixture(autouse=True)
def two_factor_on(settings):
    settings.TWO_FACTOR_ENABLED = True
    settings.TWO_FACTOR_FOR_REVIEWERS = False


def code_for(device: TOTPDevice) -> str:
    """The code the person's app shows now; a code is taken once, so right after one was used,
    the next step's (which the device accepts within its tolerance of one step)."""
    device.refresh_from_db()
    now = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    now.time = time.time()
    ahead = max(0, device.last_t + 1 - now.t())
    return (
        f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift + ahead):06d}"
    )


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    """``user`` with an authenticator app set up, as the set-up page does it."""
    pending = two_factor.totp_device_pending(user=user)
    return two_factor.totp_enrol(user=user, code=code_for(pending), ip=None)


def signed_in(username: str) -> Client:
    """A browser past the password (the login page, with django-axes), not yet the code."""
    client = Client()
    response = client.post(LOGIN, {"username": username, "password": f"{username}-password"})
    assert response.status_code == 302, response.content.decode()
    return client


def verified(client: Client, device: TOTPDevice) -> Client:
    response = client.post(VERIFY, {"code": code_for(device), "next": "/"})
    assert response.status_code == 302
    assert response["Location"] == "/"
    return client


def events(action: str):
    return AuditEvent.objects.filter(action=action)


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser(
        "root", email="root@flowdesk.example", password="root-password"
    )


# --- Settings ---------------------------------------------------------------------------------


def test_it_is_on_by_default_in_development_and_production_and_off_for_reviewers():
    names = ("TWO_FACTOR_ENABLED", "TWO_FACTOR_FOR_REVIEWERS", "OTP_TOTP_ISSUER")
    assert settings_of(*names) == {
        "TWO_FACTOR_ENABLED": True,
        "TWO_FACTOR_FOR_REVIEWERS": False,
        "OTP_TOTP_ISSUER": "Flowdesk",
    }
    assert settings_of(*names, **PRODUCTION)["TWO_FACTOR_ENABLED"] is True
    assert settings_of(*names, TWO_FACTOR_ENABLED="false", TWO_FACTOR_FOR_REVIEWERS="true") == {
        "TWO_FACTOR_ENABLED": False,
        "TWO_FACTOR_FOR_REVIEWERS": True,
        "OTP_TOTP_ISSUER": "Flowdesk",
    }


def test_who_must_use_it(settings, reviewer, supervisor, flow_admin, superuser, django_user_model):
    staff = django_user_model.objects.create_user("stan", is_staff=True)
    assert [two_factor.required_for(u) for u in (supervisor, flow_admin, superuser, staff)] == [
        True
    ] * 4
    assert not two_factor.required_for(reviewer)
    settings.TWO_FACTOR_FOR_REVIEWERS = True
    assert two_factor.required_for(reviewer)
    settings.TWO_FACTOR_ENABLED = False
    assert not any(two_factor.required_for(u) for u in (reviewer, supervisor, superuser))


# --- No page before the code --------------------------------------------------------------------


def test_a_supervisor_must_set_it_up_before_any_page(supervisor):
    client = signed_in("sam")
    for path in (QUEUE, reverse("reviewqueue:runs"), reverse("password_change"), "/admin/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(ENROL), path
    assert client.get(QUEUE)["Location"] == f"{ENROL}?next=%2F"
    # A POST goes there too, without acting: no next to come back to.
    response = client.post(reverse("reviewqueue:get_next"))
    assert response["Location"] == ENROL


def test_htmx_is_sent_there_with_hx_redirect(supervisor):
    client = signed_in("sam")
    response = client.get(
        QUEUE, headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/?page=2"}
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == f"{ENROL}?next=%2F%3Fpage%3D2"
    assert b"<html" not in response.content


def test_a_person_who_set_it_up_gives_a_code_and_sees_pages(supervisor):
    device, _ = enrolled(supervisor)
    client = signed_in("sam")
    response = client.get(QUEUE + "?page=2")
    assert response["Location"] == f"{VERIFY}?next=%2F%3Fpage%3D2"
    assert "6-digit code" in client.get(response["Location"]).content.decode()

    wrong = client.post(VERIFY, {"code": "000000", "next": "/"})
    assert wrong.status_code == 200
    assert "That code is not right." in wrong.content.decode()
    assert client.get(QUEUE).status_code == 302

    before = client.session.session_key
    with time_machine.travel(time.time() + 2, tick=False):  # past the wrong code's wait
        response = client.post(VERIFY, {"code": code_for(device), "next": "/?page=2"})
    assert response.status_code == 302
    assert response["Location"] == "/?page=2"
    assert client.session.session_key != before  # a new session key once verified
    assert client.get(QUEUE).status_code == 200
    assert events("two_factor.failed").get().detail == {
        "stage": "sign-in",
        "method": "totp",
        "throttled": False,
    }
    assert events("two_factor.verified").get().actor == supervisor


def test_a_code_is_taken_once(supervisor):
    device, _ = enrolled(supervisor)
    code = code_for(device)
    first, second = signed_in("sam"), signed_in("sam")
    assert first.post(VERIFY, {"code": code}).status_code == 302
    assert "That code is not right." in second.post(VERIFY, {"code": code}).content.decode()


def test_next_must_be_a_page_of_ours(supervisor):
    device, _ = enrolled(supervisor)
    client = signed_in("sam")
    response = client.post(VERIFY, {"code": code_for(device), "next": "https://evil.example/"})
    assert response["Location"] == "/"


def test_django_admin_needs_the_code_too(superuser):
    device, _ = enrolled(superuser)
    client = Client()
    response = client.post(
        reverse("admin:login") + "?next=/admin/",
        {"username": "root", "password": "root-password", "next": "/admin/"},
    )
    assert response.status_code == 302
    response = client.get("/admin/")
    assert response["Location"] == f"{VERIFY}?next=%2Fadmin%2F"
    assert client.get("/admin/auth/user/").status_code == 302
    verified(client, device)
    assert client.get("/admin/").status_code == 200


def test_a_reviewer_is_not_asked_unless_the_site_says_so(settings, reviewer):
    assert signed_in("alice").get(QUEUE).status_code == 200
    settings.TWO_FACTOR_FOR_REVIEWERS = True
    assert signed_in("alice").get(QUEUE)["Location"].startswith(ENROL)


def test_a_reviewer_who_turned_it_on_is_asked_for_a_code(reviewer):
    client = signed_in("alice")
    assert "Set up two-factor sign-in" in client.get(reverse("two_factor")).content.decode()
    page = client.get(ENROL).content.decode()
    assert "Your role needs" not in page
    device = TOTPDevice.objects.get(user=reviewer)
    assert client.post(ENROL, {"code": code_for(device)}).status_code == 302
    assert signed_in("alice").get(QUEUE)["Location"].startswith(VERIFY)


def test_switched_off_it_asks_no_one(settings, supervisor):
    enrolled(supervisor)
    settings.TWO_FACTOR_ENABLED = False
    client = signed_in("sam")
    assert client.get(QUEUE).status_code == 200
    assert client.get(VERIFY)["Location"] == "/"


# --- Setting it up ------------------------------------------------------------------------------


def test_set_up_shows_the_secret_confirms_with_a_code_and_shows_recovery_codes_once(supervisor):
    client = signed_in("sam")
    response = client.get(ENROL)
    assert "no-store" in response["Cache-Control"]  # the secret stays out of every cache
    page = response.content.decode()
    device = TOTPDevice.objects.get(user=supervisor, confirmed=False)
    secret = two_factor.secret_of(device)
    assert secret in page
    assert "<svg" in page and "otpauth://totp/Flowdesk%3Asam?" in page
    assert "Your role needs" in page
    # A reload shows the same secret: the app may already hold it.
    assert secret in client.get(ENROL).content.decode()

    wrong = client.post(ENROL, {"code": "123456"})
    assert "That code is not right." in wrong.content.decode()
    assert not TOTPDevice.objects.filter(confirmed=True).exists()

    code = code_for(device)
    with time_machine.travel(time.time() + 2, tick=False):  # past the wrong code's wait
        response = client.post(ENROL, {"code": code, "next": "/?page=2"})
    assert response.status_code == 302
    assert response["Location"] == f"{CODES}?next=%2F%3Fpage%3D2"
    page = client.get(response["Location"]).content.decode()
    assert page.count("<li><code>") == two_factor.RECOVERY_CODE_COUNT == 10
    assert 'href="/?page=2"' in page
    shown = [t.token for t in StaticToken.objects.filter(device__user=supervisor)]
    assert all(f"{t[:4]}-{t[4:]}" in page for t in shown)
    # Once: a reload does not show them again.
    again = client.get(CODES).content.decode()
    assert "<li><code>" not in again and "You have 10 recovery codes left" in again
    assert client.get(QUEUE).status_code == 200

    assert events("two_factor.enrolled").get().actor == supervisor
    assert events("two_factor.failed").get().detail["stage"] == "enrolment"
    trail = str(list(AuditEvent.objects.values_list("detail", flat=True)))
    for value in (code, "123456", secret.replace(" ", ""), device.key, *shown):
        assert value not in trail


def test_a_second_app_is_no_way_around_the_code(supervisor):
    enrolled(supervisor)
    client = signed_in("sam")
    assert client.get(ENROL)["Location"].startswith(VERIFY)
    assert client.post(ENROL, {"code": "123456"})["Location"].startswith(VERIFY)
    assert TOTPDevice.objects.filter(user=supervisor).count() == 1
    with pytest.raises(two_factor.TwoFactorError):
        two_factor.totp_enrol(user=supervisor, code="123456", ip=None)


# --- Recovery codes -----------------------------------------------------------------------------


def test_a_recovery_code_signs_in_once(supervisor):
    _, codes = enrolled(supervisor)
    typed = f"{codes[0][:4]}-{codes[0][4:]}".upper()
    response = signed_in("sam").post(VERIFY, {"code": typed, "next": "/"})
    assert response.status_code == 302
    assert events("two_factor.recovery_code_used").get().detail == {"left": 9}
    refused = signed_in("sam").post(VERIFY, {"code": codes[0]})
    assert "That code is not right." in refused.content.decode()
    assert events("two_factor.failed").get().detail["method"] == "recovery"


def test_a_person_makes_new_recovery_codes_and_the_old_stop_working(supervisor, reviewer):
    device, old = enrolled(supervisor)
    client = verified(signed_in("sam"), device)
    response = client.post(CODES)
    assert response["Location"] == CODES
    page = client.get(CODES).content.decode()
    new = list(StaticToken.objects.filter(device__user=supervisor).values_list("token", flat=True))
    assert len(new) == 10 and not set(new) & set(old)
    assert all(f"{t[:4]}-{t[4:]}" in page for t in new)
    assert events("two_factor.recovery_codes_created").get().detail == {"count": 10}
    assert (
        "That code is not right."
        in signed_in("sam").post(VERIFY, {"code": old[1]}).content.decode()
    )

    # Someone without an app (here, a reviewer) makes none.
    alice = signed_in("alice")
    assert alice.post(CODES)["Location"] == reverse("two_factor")
    assert not StaticDevice.objects.filter(user=reviewer).exists()


# --- Wrong codes ---------------------------------------------------------------------------------


def test_wrong_codes_make_the_next_one_wait_and_signing_in_again_does_not_help(supervisor):
    device, _ = enrolled(supervisor)
    client = signed_in("sam")
    with time_machine.travel(time.time(), tick=False) as clock:
        for _ in range(4):
            clock.shift(timedelta(minutes=1))
            client.post(VERIFY, {"code": "000000"})
        # Four wrong codes: the next is not even checked for eight seconds.
        refused = signed_in("sam").post(VERIFY, {"code": code_for(device)})
        assert "Too many wrong codes. Try again in 8 seconds." in refused.content.decode()
        assert events("two_factor.failed").filter(detail__throttled=True).count() == 1
        device.refresh_from_db()
        assert device.throttling_failure_count == 4
        clock.shift(timedelta(seconds=9))
        response = signed_in("sam").post(VERIFY, {"code": code_for(device)})
        assert response.status_code == 302
    device.refresh_from_db()
    assert device.throttling_failure_count == 0


# --- A supervisor's reset ----------------------------------------------------------------------


def test_a_supervisor_resets_a_colleagues_two_factor(supervisor, flow_admin):
    sams, _ = enrolled(supervisor)
    adas, _ = enrolled(flow_admin)
    ada = verified(signed_in("ada"), adas)
    client = verified(signed_in("sam"), sams)
    page = client.get(RESET).content.decode()
    assert "Reset ada" in page and "Reset sam" not in page

    response = client.post(RESET, {"user": flow_admin.pk})
    assert response["Location"] == RESET
    assert not TOTPDevice.objects.filter(user=flow_admin).exists()
    assert not StaticDevice.objects.filter(user=flow_admin).exists()
    event = events("two_factor.reset").get()
    assert event.actor == supervisor
    assert event.detail == {"colleague": "ada", "colleague_id": flow_admin.pk}
    # Ada sets it up again: at her next page in the session she had, and at her next sign-in.
    assert ada.get(QUEUE)["Location"].startswith(ENROL)
    assert signed_in("ada").get(QUEUE)["Location"].startswith(ENROL)


def test_nobody_resets_their_own_nor_a_superusers(supervisor, superuser):
    sams, _ = enrolled(supervisor)
    enrolled(superuser)
    client = verified(signed_in("sam"), sams)
    client.post(RESET, {"user": supervisor.pk})
    client.post(RESET, {"user": superuser.pk})
    assert TOTPDevice.objects.filter(confirmed=True).count() == 2
    assert not events("two_factor.reset").exists()


def test_only_supervisors_reset(reviewer, colleague):
    enrolled(colleague)
    client = signed_in("alice")
    assert client.get(RESET).status_code == 404
    assert client.post(RESET, {"user": colleague.pk}).status_code == 404
    assert TOTPDevice.objects.filter(user=colleague).exists()


def test_the_reset_page_takes_get_and_post_only(supervisor):
    sams, _ = enrolled(supervisor)
    client = verified(signed_in("sam"), sams)
    assert client.put(RESET).status_code == 405
    assert client.post(RESET, {"user": "x"}).status_code == 404


def test_a_flow_admin_is_a_role_that_must_use_it(flow_admin):
    assert Group.objects.get(name=roles.FLOW_ADMIN) in flow_admin.groups.all()
    assert signed_in("ada").get(QUEUE)["Location"].startswith(ENROL)


def test_preferences_lead_to_two_factor_and_supervisors_to_resetting_it(reviewer, supervisor):
    for person, reset_shown in ((reviewer, False), (supervisor, True)):
        device, _ = enrolled(person)
        browser = verified(signed_in(person.username), device)
        html = browser.get(reverse("reviewqueue:preferences")).content.decode()
        assert f'href="{reverse("two_factor")}"' in html
        assert (f'href="{reverse("two_factor_reset")}"' in html) is reset_shown
