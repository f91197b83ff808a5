"""The admin's Flows connection page: which API, a test of the credentials, the webhook URL to
register with Sohar, and a warning when no webhook came in for a while."""

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.urls import reverse

from flows_integration import client as flows_client
from flows_integration import services
from reviewqueue.models import StaffPreferences
from tests.flows_integration.faulty_server import CLIENT_ID, FaultyServer

PAGE = "admin:flows_integration_apihealth_changelist"
TEST = "admin:flows_integration_apihealth_test"


@pytest.fixture
def flow_admin(client, django_user_model, role_groups):
    ada = django_user_model.objects.create_user("ada", password="ada-password", is_staff=True)
    ada.groups.add(Group.objects.get(name="Flow admin"))
    client.force_login(ada)
    return client


@pytest.mark.django_db
def test_the_page_shows_the_webhook_url_and_warns_when_none_arrived(flow_admin, settings):
    settings.FLOWS_CLIENT_ID = "flowdesk-prod"
    settings.FLOWS_CLIENT_SECRET = "never-shown-secret"

    page = flow_admin.get(reverse(PAGE)).content.decode()

    assert "http://testserver/flows/webhooks/" in page
    assert "flowdesk-prod" in page
    assert "never-shown-secret" not in page
    assert "none received yet" in page
    assert 'id="webhooks-quiet"' in page


@pytest.mark.django_db
@time_machine.travel("2026-12-05 19:03:00Z", tick=False)
def test_a_recent_webhook_is_shown_and_no_warning(flow_admin, monkeypatch, django_user_model):
    monkeypatch.setattr(services, "_enqueue_event", lambda event_id: None)
    StaffPreferences.objects.create(
        user=django_user_model.objects.get(username="ada"), time_zone="America/New_York"
    )
    services.event_receive(
        svix_id="msg_recent",
        payload={"event": "flow.updated", "flowRunId": "6c1d7c1e-8a8e-4a5b-9d1e-2f1f0c3b4a5d"},
    )

    page = flow_admin.get(reverse(PAGE)).content.decode()

    assert "none received yet" not in page
    assert 'id="webhooks-quiet"' not in page
    assert "Dec 5, 2026, 14:03 EST</strong>" in page  # in the admin's own zone, named


@pytest.mark.django_db(transaction=True)
def test_testing_the_connection_against_the_engine_succeeds(flow_admin, flows_api):
    response = flow_admin.post(reverse(TEST), follow=True)

    assert "The Flows API accepted the client id and secret." in response.content.decode()
    assert services.health_get().last_success_at is not None


@pytest.mark.django_db
def test_credentials_the_api_refuses_are_named_as_such(flow_admin, settings):
    with FaultyServer() as sohar:
        settings.FLOWS_API_URL = sohar.url
        settings.FLOWS_CLIENT_ID = CLIENT_ID
        settings.FLOWS_CLIENT_SECRET = "a-wrong-secret"
        flows_client.reset_client()
        try:
            response = flow_admin.post(reverse(TEST), follow=True)
        finally:
            flows_client.reset_client()

    assert "The Flows API refused the client id and secret." in response.content.decode()


@pytest.mark.django_db
def test_a_reviewer_cannot_see_the_page(client, alice):
    client.force_login(alice)
    assert client.get(reverse(PAGE)).status_code == 302  # to the admin's login
