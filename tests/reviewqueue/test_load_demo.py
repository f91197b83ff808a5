"""`make run`'s demo content: loaded against the embedded engine, never against a real Flows
API unless asked for."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from reviewqueue import demo
from reviewqueue.models import Queue


@pytest.mark.django_db
def test_against_a_real_flows_api_no_demo_logins_or_queues_are_made(settings):
    settings.FLOWDESK_DEMO = False
    queues_before = set(Queue.objects.values_list("name", flat=True))
    out = StringIO()

    call_command("load_demo", stdout=out)

    assert not get_user_model().objects.filter(username__in=["alice", "sam", "ada"]).exists()
    assert set(Queue.objects.values_list("name", flat=True)) == queues_before
    assert "createsuperuser" in out.getvalue()


@pytest.mark.django_db
def test_the_demo_is_made_when_asked_for(settings):
    settings.FLOWDESK_DEMO = False

    call_command("load_demo", "--demo", stdout=StringIO())

    assert get_user_model().objects.filter(username="alice").exists()
    assert Queue.objects.filter(name__in=[name for name, *_ in demo.DEMO_QUEUES]).exists()
