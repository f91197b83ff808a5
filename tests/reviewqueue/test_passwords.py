"""Staff's passwords: at least 12 characters and not a common one; changed by their owner or
reset through a link sent by e-mail (the console under `make run`); each change audited."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

NEW = "correct horse battery"


def test_a_short_or_common_password_is_refused_on_its_field(reviewer):
    client = Client()
    client.force_login(reviewer)
    for weak, why in [("Eleven1!xyz", "at least 12 characters"), ("password1234", "too common")]:
        response = client.post(
            reverse("password_change"),
            {"old_password": "alice-password", "new_password1": weak, "new_password2": weak},
        )
        assert response.status_code == 200
        assert why in response.content.decode()
    reviewer.refresh_from_db()
    assert reviewer.check_password("alice-password")
    assert not AuditEvent.objects.filter(action="password.changed").exists()


def test_staff_change_their_own_password_and_it_is_audited(reviewer):
    client = Client()
    client.force_login(reviewer)
    assert "Change your password" in client.get(reverse("reviewqueue:preferences")).content.decode()

    response = client.post(
        reverse("password_change"),
        {"old_password": "alice-password", "new_password1": NEW, "new_password2": NEW},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("password_change_done")
    reviewer.refresh_from_db()
    assert reviewer.check_password(NEW)
    event = AuditEvent.objects.get(action="password.changed")
    assert event.actor == reviewer
    assert NEW not in str(event.detail)


def test_a_forgotten_password_is_reset_through_a_link_that_works_once(reviewer):
    reviewer.email = "alice@flowdesk.example"
    reviewer.save()
    client = Client()
    assert "Forgot your password?" in client.get(reverse("login")).content.decode()

    response = client.post(reverse("password_reset"), {"email": "alice@flowdesk.example"})

    assert response.status_code == 302
    (message,) = mail.outbox
    link = re.search(r"http://testserver(/accounts/password/reset/\S+/)", message.body)[1]
    form_page = client.get(link, follow=True)
    assert "Set a new password" in form_page.content.decode()
    response = client.post(
        form_page.redirect_chain[-1][0], {"new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 302
    reviewer.refresh_from_db()
    assert reviewer.check_password(NEW)
    assert AuditEvent.objects.get(action="password.reset").actor == reviewer
    # Used once: the same link no longer works.
    again = Client().get(link, follow=True).content.decode()
    assert "This link does not work" in again


def test_a_reset_for_an_unknown_address_says_the_same_and_sends_nothing(db):
    response = Client().post(reverse("password_reset"), {"email": "nobody@flowdesk.example"})
    assert response.status_code == 302
    assert not mail.outbox
