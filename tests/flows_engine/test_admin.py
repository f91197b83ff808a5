"""The engine's admin: publishing versions, and the webhook delivery log."""

import pytest
from django.test import RequestFactory
from django.urls import reverse

from flows_engine import services
from flows_engine.models import TemplateVersion
from reviewqueue import demo
from tests.documents import SIGN_OFF

VALID = SIGN_OFF

ADD_URL = reverse("admin:flows_engine_templateversion_add")


@pytest.mark.django_db
def test_publishing_in_the_admin_creates_the_next_version(admin_client):
    for expected in (1, 2):
        response = admin_client.post(ADD_URL, {"template_id": "sign-off", "source": VALID})
        assert response.status_code == 302
        assert TemplateVersion.objects.order_by("-number").first().number == expected
    assert TemplateVersion.objects.filter(template__template_id="sign-off").count() == 2


@pytest.mark.django_db
def test_the_publish_page_says_it_publishes(admin_client):
    html = admin_client.get(ADD_URL).content.decode()
    assert "<h1>Publish a new version to the engine</h1>" in html
    assert "new Runs of the template use it at once" in html
    assert "Add template version" not in html
    listing = admin_client.get(reverse("admin:flows_engine_templateversion_changelist"))
    assert f'<a href="{ADD_URL}" class="addlink">Publish a new version to the engine</a>' in (
        listing.content.decode()
    )


@pytest.mark.django_db
def test_a_document_naming_another_version_than_it_would_get_is_refused(admin_client):
    services.version_publish(template_id="sign-off", source=VALID)
    claims_v3 = VALID.replace(
        "metadata: {name: Sign-off}", "metadata: {name: Sign-off, version: 3}"
    )
    response = admin_client.post(ADD_URL, {"template_id": "sign-off", "source": claims_v3})
    assert response.status_code == 200
    errors = " ".join(response.context["adminform"].form.errors["source"])
    assert "The document says version 3" in errors and "sign-off v2" in errors
    assert TemplateVersion.objects.count() == 1

    claims_v2 = claims_v3.replace("version: 3", "version: 2")
    response = admin_client.post(ADD_URL, {"template_id": "sign-off", "source": claims_v2})
    assert response.status_code == 302
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any(m.startswith("Published sign-off v2 to the engine") for m in messages)


@pytest.mark.django_db
def test_the_demo_flow_admin_may_publish_and_nothing_more(client):
    demo.demo_users_ensure()
    client.login(request=RequestFactory().post("/"), username="ada", password=demo.DEMO_PASSWORD)
    assert client.post(ADD_URL, {"template_id": "sign-off", "source": VALID}).status_code == 302
    version = TemplateVersion.objects.get()
    change = reverse("admin:flows_engine_templateversion_change", args=[version.pk])
    assert client.get(change).status_code == 200
    assert client.get(reverse("admin:flows_engine_apiclient_changelist")).status_code == 403
    assert client.get(reverse("admin:flows_engine_webhookendpoint_add")).status_code == 403


@pytest.mark.django_db
def test_an_invalid_document_shows_every_error_on_the_field(admin_client):
    broken = VALID.replace("end: true", "next: nowhere").replace(
        "startsAt: sign-off", "startsAt: x"
    )
    response = admin_client.post(ADD_URL, {"template_id": "sign-off", "source": broken})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["source"]
    assert any(error.startswith("startsAt") for error in errors)
    assert any("states.sign-off.next" in error for error in errors)
    assert not TemplateVersion.objects.exists()


@pytest.mark.django_db
def test_published_versions_cannot_be_changed_or_deleted(admin_client):
    version = services.version_publish(template_id="sign-off", source=VALID)
    change = reverse("admin:flows_engine_templateversion_change", args=[version.pk])
    assert 'name="source"' not in admin_client.get(change).content.decode()
    delete = reverse("admin:flows_engine_templateversion_delete", args=[version.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert TemplateVersion.objects.get().source == VALID


@pytest.mark.django_db
def test_admin_pages_of_the_engine_render(admin_client, demo_templates):
    for name in [
        "template",
        "templateversion",
        "run",
        "apiclient",
        "webhookendpoint",
        "webhookmessage",
    ]:
        assert admin_client.get(reverse(f"admin:flows_engine_{name}_changelist")).status_code == 200
