"""Expired sessions, which keep people's searches, do not stay in the database."""

from datetime import timedelta

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from reviewqueue.tasks import clear_expired_sessions

pytestmark = pytest.mark.django_db


def test_expired_sessions_are_cleared_and_live_ones_kept(settings):
    settings.SESSION_ENGINE = "django.contrib.sessions.backends.db"
    live = SessionStore()
    live["searches"] = {"Ab3x": "Okafor"}
    live.save()
    expired = SessionStore()
    expired["searches"] = {"Zz9q": "Lopez"}
    expired.save()
    Session.objects.filter(pk=expired.session_key).update(
        expire_date=timezone.now() - timedelta(minutes=1)
    )
    clear_expired_sessions()
    assert list(Session.objects.values_list("pk", flat=True)) == [live.session_key]
