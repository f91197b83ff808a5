"""The sign-in throttle (django-axes): wrong passwords lock out a username and an address, at
the staff sign-in and the admin's alike; every failure and lockout is audited; a supervisor sees
the locks and lifts one; the lock also ends by itself after the cool-off."""

from datetime import timedelta

import pytest
import time_machine
from django.conf import settings
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

LOGIN = reverse("login")
ADMIN_LOGIN = reverse("admin:login")
LOCKS = reverse("reviewqueue:signin_locks")


def sign_in(username: str, password: str, *, ip: str = "10.0.0.1", url: str = LOGIN):
    return Client(REMOTE_ADDR=ip).post(url, {"username": username, "password": password})


def wrong_passwords(username: str, times: int, **kwargs) -> None:
    for _ in range(times):
        response = sign_in(username, "not-the-password", **kwargs)
        assert response.status_code in (200, 429), response.status_code


def test_wrong_passwords_lock_the_username_until_a_supervisor_unlocks_it(reviewer, supervisor):
    limit = settings.AXES_FAILURE_LIMIT
    wrong_passwords("alice", limit - 1)
    assert sign_in("alice", "alice-password").status_code == 302  # the count resets on success
    wrong_passwords("alice", limit)

    # Locked: the right password from another address is refused too, and says why.
    locked = sign_in("alice", "alice-password", ip="10.9.9.9")
    assert locked.status_code == 429
    assert "Too many wrong passwords" in locked.content.decode()
    assert "_auth_user_id" not in locked.client.session
    assert (
        AuditEvent.objects.filter(action="login.failed", detail__username="alice").count() >= limit
    )
    assert AuditEvent.objects.filter(action="login.locked_out", detail__username="alice").exists()
    assert not AuditEvent.objects.filter(detail__icontains="not-the-password").exists()

    supervising = Client()
    supervising.force_login(supervisor)
    # Both alice and the address the guesses came from are locked.
    assert "2 sign-in locks</a>" in supervising.get(reverse("reviewqueue:queue")).content.decode()
    page = supervising.get(LOCKS).content.decode()
    assert "User <strong>alice</strong>" in page
    assert "Address <code>10.0.0.1</code>" in page
    response = supervising.post(LOCKS, {"kind": "username", "value": "alice"})
    assert response.status_code == 302
    assert "Nobody is locked out" in supervising.get(LOCKS).content.decode()
    event = AuditEvent.objects.get(action="signin.unlocked")
    assert (event.actor, event.detail) == (supervisor, {"kind": "username", "value": "alice"})
    assert sign_in("alice", "alice-password").status_code == 302


def test_an_address_is_locked_whatever_usernames_it_tries(reviewer):
    for n in range(settings.AXES_FAILURE_LIMIT):
        sign_in(f"guess{n}", "password1", ip="10.6.6.6")
    assert sign_in("alice", "alice-password", ip="10.6.6.6").status_code == 429
    assert sign_in("alice", "alice-password", ip="10.1.1.1").status_code == 302


def test_the_admin_sign_in_is_throttled_too(reviewer):
    wrong_passwords("alice", settings.AXES_FAILURE_LIMIT, url=ADMIN_LOGIN)
    assert sign_in("alice", "alice-password", url=ADMIN_LOGIN).status_code == 429
    assert sign_in("alice", "alice-password").status_code == 429


def test_a_lock_ends_by_itself_after_the_cool_off(reviewer):
    wrong_passwords("alice", settings.AXES_FAILURE_LIMIT)
    assert sign_in("alice", "alice-password").status_code == 429
    later = timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    with time_machine.travel(later):
        assert sign_in("alice", "alice-password").status_code == 302


def test_only_supervisors_see_the_locks(reviewer):
    client = Client()
    client.force_login(reviewer)
    assert client.get(LOCKS).status_code == 404
    assert client.post(LOCKS, {"kind": "username", "value": "alice"}).status_code == 404
