"""Django admin for Flowdesk's template copies: storing a copy for forms (which publishes
nothing), copying from the Flows server, and the numbers agreeing with the server's.

Driven as ada, the demo flow admin exactly as `make run` creates her (group permissions, not a
superuser), against Flowdesk's engine over real HTTP, a Sohar-like server without the template
documents extension, and a server that is down.
"""

from collections.abc import Iterator

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory
from django.urls import reverse

from flows_engine import services as engine
from flows_engine.models import TemplateVersion as PublishedVersion
from flows_integration import client
from flows_integration.models import FlowTemplate, TemplateVersion
from reviewqueue import demo
from tests.documents import SIGN_OFF
from tests.flows_integration.faulty_server import CLIENT_ID, CLIENT_SECRET, FaultyServer, respond

VALID = SIGN_OFF
BROKEN = VALID.replace("end: true", "next: nowhere")
# The same template as it might be published next: one more field, and it names its version.
SIGN_OFF_V2 = VALID.replace("metadata: {name: Sign-off}", "metadata: {name: Sign-off, version: 2}")
SIGN_OFF_V2 = SIGN_OFF_V2.replace(
    "approved: {type: boolean}", "approved: {type: boolean}, note: {type: string}"
)

ADD_URL = reverse("admin:flows_integration_templateversion_add")
LIST_URL = reverse("admin:flows_integration_templateversion_changelist")
IMPORT_URL = reverse("admin:flows_integration_templateversion_import")
PUBLISH_URL = reverse("admin:flows_engine_templateversion_add")
FLOWDESK_PUBLISH_URL = reverse("admin:flows_integration_templateversion_publish")


@pytest.fixture
def ada(client, role_groups):
    demo.demo_users_ensure()
    client.login(request=RequestFactory().post("/"), username="ada", password=demo.DEMO_PASSWORD)
    return client


def use_server(monkeypatch, url: str, client_id: str, secret: str) -> None:
    """Point Flowdesk's client at `url`, without retries so a failing server answers at once."""
    flows = client.FlowsClient(url, client_id, secret, max_retries=0, read_timeout=5)
    monkeypatch.setattr(client, "get_client", lambda: flows)


@pytest.fixture
def engine_server(live_server, engine_clients, monkeypatch):
    """Flowdesk's engine over real HTTP, with sign-off v1 published."""
    engine.version_publish(template_id="sign-off", source=VALID)
    use_server(monkeypatch, f"{live_server.url}/flows-api", "test-sandbox", "sandbox-secret")


@pytest.fixture
def sohar(monkeypatch) -> Iterator[FaultyServer]:
    """A server like Sohar's: no template documents endpoints (404)."""
    with FaultyServer() as server:
        use_server(monkeypatch, server.url, CLIENT_ID, CLIENT_SECRET)
        yield server


@pytest.fixture
def server_down(monkeypatch) -> Iterator[FaultyServer]:
    with FaultyServer() as server:
        server.always("GET /v1/flows", respond(503))
        use_server(monkeypatch, server.url, CLIENT_ID, CLIENT_SECRET)
        yield server


def field_errors(response, field: str) -> str:
    return " ".join(response.context["adminform"].form.errors[field])


# --- What each action says it does -----------------------------------------------------------


@pytest.mark.django_db
def test_the_add_page_says_it_stores_a_copy_and_publishes_nothing(ada):
    page = ada.get(ADD_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Store a template copy for forms</h1>" in html
    assert "<strong>not</strong> publish anything" in html
    # Publishing is the other action, which stores the copy too.
    assert f'href="{FLOWDESK_PUBLISH_URL}">Publish a new version to the Flows server</a>' in html
    assert "Add template version" not in html


@pytest.mark.django_db
def test_the_list_names_each_action(ada):
    html = ada.get(LIST_URL).content.decode()
    assert "Store a template copy for forms" in html
    assert f'<a href="{FLOWDESK_PUBLISH_URL}" ' in html
    assert "Publish a new version to the Flows server" in html
    assert IMPORT_URL in html and "Copy new versions from the Flows server" in html
    assert "Add template version" not in html


# --- Numbers: taken from the document and the server, never renumbered -----------------------


@pytest.mark.django_db
def test_a_number_that_disagrees_with_the_document_is_refused(ada, server_down):
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "3", "source": SIGN_OFF_V2})
    assert response.status_code == 200
    assert "The document says it is version 2" in field_errors(response, "number")
    assert not TemplateVersion.objects.exists()


@pytest.mark.django_db
def test_a_blank_number_takes_the_documents_own_not_the_next_free_one(ada, server_down):
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "", "source": SIGN_OFF_V2})
    assert response.status_code == 302
    assert TemplateVersion.objects.get().number == 2  # not 1, the next number free here
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("v2 was not checked" in m and "could not be asked" in m for m in messages)


@pytest.mark.django_db
def test_with_no_number_anywhere_and_no_server_the_number_is_asked_for(ada, server_down):
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "", "source": VALID})
    assert response.status_code == 200
    assert "give the number the Flows server shows" in field_errors(response, "number")
    assert not TemplateVersion.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_empty_document_copies_the_servers_under_its_number(ada, engine_server):
    engine.version_publish(template_id="sign-off", source=SIGN_OFF_V2)
    assert ada.post(ADD_URL, {"template_id": "sign-off", "number": "1"}).status_code == 302
    assert ada.post(ADD_URL, {"template_id": "sign-off"}).status_code == 302  # the latest
    copies = TemplateVersion.objects.order_by("number")
    assert [(c.number, c.document) for c in copies] == [
        (p.number, p.document) for p in PublishedVersion.objects.order_by("number")
    ]
    assert copies[0].template.name == "Sign-off"


@pytest.mark.django_db(transaction=True)
def test_a_pasted_document_is_checked_against_the_servers_version(ada, engine_server):
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "1", "source": SIGN_OFF_V2})
    assert response.status_code == 200
    assert "The document says it is version 2" in field_errors(response, "number")

    response = ada.post(ADD_URL, {"template_id": "sign-off", "source": SIGN_OFF_V2})
    assert response.status_code == 200
    assert "The Flows server has no version 2 of sign-off" in field_errors(response, "number")

    edited = VALID.replace("title: Sign off", "title: Sign it off")
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "1", "source": edited})
    assert "not the document the Flows server published as sign-off v1" in field_errors(
        response, "source"
    )
    assert not TemplateVersion.objects.exists()

    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "1", "source": VALID})
    assert response.status_code == 302
    stored = TemplateVersion.objects.get()
    assert (stored.number, stored.source) == (1, VALID)  # the pasted text, comments and all


@pytest.mark.django_db(transaction=True)
def test_an_unknown_template_is_refused(ada, engine_server):
    response = ada.post(ADD_URL, {"template_id": "no-such"})
    assert "The Flows server has no template no-such" in field_errors(response, "template_id")


@pytest.mark.django_db(transaction=True)
def test_a_stored_number_cannot_be_stored_again(ada, engine_server):
    assert ada.post(ADD_URL, {"template_id": "sign-off"}).status_code == 302
    response = ada.post(ADD_URL, {"template_id": "sign-off"})
    assert response.status_code == 200
    assert "sign-off v1 is stored already" in field_errors(response, "number")
    assert TemplateVersion.objects.count() == 1


# --- Against Sohar: no template documents API, so the document is uploaded --------------------


@pytest.mark.django_db
def test_against_sohar_an_uploaded_document_is_stored_with_its_number(ada, sohar):
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": ""})
    assert "does not hand out template documents" in field_errors(response, "source")
    assert "paste or upload the document" in field_errors(response, "source")

    upload = SimpleUploadedFile("sign-off.yaml", VALID.encode(), content_type="application/yaml")
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "4", "upload": upload})
    assert response.status_code == 302
    stored = TemplateVersion.objects.get()
    assert (stored.template.template_id, stored.number, stored.source) == ("sign-off", 4, VALID)
    assert stored.spec.callback_states()[0].id == "sign-off"
    assert sohar.count("GET /v1/flows/sign-off?version=4") == 1  # it did ask


@pytest.mark.django_db
def test_against_sohar_the_copy_button_says_to_upload(ada, sohar):
    response = ada.post(IMPORT_URL, follow=True)
    assert "does not list its templates" in response.content.decode()


# --- Validation and immutability -------------------------------------------------------------


@pytest.mark.django_db
def test_flowspec_errors_show_on_the_field_and_keep_the_input(ada, server_down):
    response = ada.post(ADD_URL, {"template_id": "sign-off", "number": "1", "source": BROKEN})
    assert response.status_code == 200
    assert "states.sign-off.next" in field_errors(response, "source")
    assert "next: nowhere" in response.content.decode()
    assert not FlowTemplate.objects.exists()
    assert server_down.count("GET /v1/flows") == 0  # an invalid document is not sent anywhere


@pytest.mark.django_db
def test_versions_are_read_only_once_stored(ada, server_down):
    ada.post(ADD_URL, {"template_id": "sign-off", "number": "1", "source": VALID})
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


# --- Under make run: publish to the engine in one step, and the numbers agree ----------------


@pytest.mark.django_db(transaction=True)
def test_ada_publishes_to_the_engine_and_flowdesk_copies_the_same_number(ada, engine_server):
    page = ada.get(PUBLISH_URL)
    assert page.status_code == 200
    assert "<h1>Publish a new version to the engine</h1>" in page.content.decode()

    response = ada.post(PUBLISH_URL, {"template_id": "sign-off", "source": SIGN_OFF_V2})
    assert response.status_code == 302
    published = PublishedVersion.objects.get(number=2)
    assert published.document["metadata"]["version"] == 2

    assert ada.get(IMPORT_URL).status_code == 405
    response = ada.post(IMPORT_URL, follow=True)
    assert "Copied sign-off v1, sign-off v2 from the Flows server" in response.content.decode()
    copies = TemplateVersion.objects.order_by("number")
    assert [(c.number, c.document) for c in copies] == [
        (p.number, p.document) for p in PublishedVersion.objects.order_by("number")
    ]
    response = ada.post(IMPORT_URL, follow=True)
    assert "Copied nothing new" in response.content.decode()
