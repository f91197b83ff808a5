"""API clients in the admin: the token is shown once, only its hash is kept, revoking works."""

import pytest

from intake import services
from intake.models import ApiClient, StartedRun

pytestmark = pytest.mark.django_db


def test_a_new_client_shows_its_token_once(admin_client):
    response = admin_client.post("/admin/intake/apiclient/add/", {"name": "EHR integration"})
    assert response.status_code == 200
    token = response.context["token"]
    assert token.startswith("fdk_")
    assert token in response.content.decode()
    stored = ApiClient.objects.get()
    assert services.client_authenticate(token) == stored
    # Nowhere afterwards: the list and the client's page show only its first characters.
    for url in ("/admin/intake/apiclient/", f"/admin/intake/apiclient/{stored.pk}/change/"):
        html = admin_client.get(url).content.decode()
        assert token not in html
        assert stored.token_hint in html


def test_revoking_refuses_the_token(admin_client):
    api_client, token = services.client_create(name="Scheduler")
    response = admin_client.post(
        "/admin/intake/apiclient/",
        {"action": "revoke", "_selected_action": [api_client.pk]},
        follow=True,
    )
    assert response.status_code == 200
    api_client.refresh_from_db()
    assert not api_client.is_active and api_client.revoked_at is not None
    assert services.client_authenticate(token) is None


def test_started_runs_are_read_only(admin_client):
    assert admin_client.get("/admin/intake/startedrun/").status_code == 200
    assert admin_client.get("/admin/intake/startedrun/add/").status_code == 403
    assert not StartedRun.objects.exists()
