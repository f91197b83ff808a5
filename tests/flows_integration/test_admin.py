"""Django admin for mirrored templates: paste or upload a version, import from the server."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from flows_integration.models import FlowTemplate, TemplateVersion
from tests.documents import SIGN_OFF

VALID = SIGN_OFF
BROKEN = VALID.replace("end: true", "next: nowhere")

ADD_URL = reverse("admin:flows_integration_templateversion_add")


@pytest.fixture
def ada(admin_client):
    return admin_client


@pytest.mark.django_db
def test_a_pasted_version_is_validated_and_stored(ada):
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "", "source": VALID})
    assert response.status_code == 302
    version = TemplateVersion.objects.get()
    assert (version.template.template_id, version.number) == ("sign-off", 1)
    assert version.template.name == "Sign-off"
    assert version.spec.callback_states()[0].id == "sign-off"


@pytest.mark.django_db
def test_an_uploaded_file_works_too(ada):
    upload = SimpleUploadedFile("sign-off.yaml", VALID.encode(), content_type="application/yaml")
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "4", "upload": upload})
    assert response.status_code == 302
    assert TemplateVersion.objects.get().number == 4


@pytest.mark.django_db
def test_flowspec_errors_show_on_the_field_and_keep_the_input(ada):
    response = ada.post(ADD_URL, {"template_id": "sign-off", "source": BROKEN})
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["source"]
    assert any("states.sign-off.next" in error for error in errors)
    assert "next: nowhere" in response.content.decode()
    assert not FlowTemplate.objects.exists()


@pytest.mark.django_db
def test_a_stored_number_cannot_be_stored_again(ada):
    ada.post(ADD_URL, {"template_id": "sign-off", "number": "1", "source": VALID})
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "1", "source": VALID})
    assert response.status_code == 200
    assert "is stored already" in str(response.context["adminform"].form.errors["number"])
    assert TemplateVersion.objects.count() == 1


@pytest.mark.django_db
def test_versions_are_read_only_once_stored(ada):
    ada.post(ADD_URL, {"template_id": "sign-off", "source": VALID})
    version = TemplateVersion.objects.get()
    url = reverse("admin:flows_integration_templateversion_change", args=[version.pk])
    page = ada.get(url)
    assert page.status_code == 200
    assert 'name="source"' not in page.content.decode()
    ada.post(url, {"source": "changed"})
    version.refresh_from_db()
    assert version.source == VALID
    delete = reverse("admin:flows_integration_templateversion_delete", args=[version.pk])
    assert ada.post(delete, {"post": "yes"}).status_code == 403


@pytest.mark.django_db(transaction=True)
def test_import_from_the_server_brings_every_version(flows_api, admin_client):
    url = reverse("admin:flows_integration_templateversion_import")
    assert admin_client.get(url).status_code == 405
    response = admin_client.post(url, follow=True)
    assert "Imported" in response.content.decode()
    assert TemplateVersion.objects.count() == 4
    response = admin_client.post(url, follow=True)
    assert "nothing new" in response.content.decode()


@pytest.mark.django_db
def test_the_import_button_is_on_the_version_list(ada):
    page = ada.get(reverse("admin:flows_integration_templateversion_changelist"))
    assert reverse("admin:flows_integration_templateversion_import") in page.content.decode()
