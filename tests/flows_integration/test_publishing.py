"""Publishing a new version to the Flows server from Flowdesk, with Flowdesk's copy stored under
the number the server answered: the client's call, the service, and the admin page.

Against Flowdesk's engine over real HTTP (pytest-django's live server), and against a stand-in
that serves only Sohar's documented API (no extension endpoints) or fails on purpose. The admin
page is driven as ada, the demo flow admin exactly as `make run` creates her.
"""

from collections.abc import Iterator

import pytest
from django.contrib.admin.models import LogEntry
from django.test import RequestFactory
from django.urls import reverse

from flows_engine import services as engine
from flows_engine.models import TemplateVersion as PublishedVersion
from flows_integration import client as flows_client
from flows_integration import publishing, services
from flows_integration.models import TemplateVersion
from reviewqueue import demo
from tests.documents import SIGN_OFF
from tests.flows_integration.faulty_server import CLIENT_ID, CLIENT_SECRET, FaultyServer, respond

NAMES_V2 = SIGN_OFF.replace("metadata: {name: Sign-off}", "metadata: {name: Sign-off, version: 2}")
NAMES_V2 = NAMES_V2.replace(
    "approved: {type: boolean}", "approved: {type: boolean}, note: {type: string}"
)
NAMES_V3 = NAMES_V2.replace("version: 2", "version: 3")
BROKEN = SIGN_OFF.replace("end: true", "next: nowhere")

PUBLISH_URL = reverse("admin:flows_integration_templateversion_publish")
LIST_URL = reverse("admin:flows_integration_templateversion_changelist")
STORE_URL = reverse("admin:flows_integration_templateversion_add")


def server_client(url: str, client_id: str, secret: str) -> flows_client.FlowsClient:
    """Flowdesk's client for `url`, without retries so that a failing server answers at once."""
    return flows_client.FlowsClient(url, client_id, secret, max_retries=0, read_timeout=5)


@pytest.fixture
def engine_server(live_server, engine_clients, monkeypatch) -> flows_client.FlowsClient:
    """Flowdesk's engine over real HTTP, with sign-off v1 published and copied; the default
    client points at it."""
    engine.version_publish(template_id="sign-off", source=SIGN_OFF)
    flows = server_client(f"{live_server.url}/flows-api", "test-sandbox", "sandbox-secret")
    monkeypatch.setattr(flows_client, "get_client", lambda: flows)
    services.version_store(template_id="sign-off", number=1, source=SIGN_OFF)
    yield flows
    flows.close()


@pytest.fixture
def sohar(monkeypatch) -> Iterator[FaultyServer]:
    """A server that answers only Sohar's documented API: every extension is a 404."""
    with FaultyServer() as server:
        flows = server_client(server.url, CLIENT_ID, CLIENT_SECRET)
        monkeypatch.setattr(flows_client, "get_client", lambda: flows)
        yield server
        flows.close()


@pytest.fixture
def ada(client, role_groups):
    demo.demo_users_ensure()
    client.login(request=RequestFactory().post("/"), username="ada", password=demo.DEMO_PASSWORD)
    return client


def published_numbers() -> list[int]:
    return list(
        PublishedVersion.objects.filter(template__template_id="sign-off")
        .order_by("number")
        .values_list("number", flat=True)
    )


def copies() -> list[tuple[int, dict]]:
    return [(c.number, c.document) for c in TemplateVersion.objects.order_by("number")]


def form_errors(response, field: str | None) -> str:
    form = response.context["form"]
    return " ".join(form.non_field_errors() if field is None else form.errors.get(field, []))


# --- The client ------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_client_publishes_and_answers_the_servers_number(engine_server):
    published = engine_server.publish_template("sign-off", NAMES_V2)
    assert (published.template_id, published.version, published.name) == ("sign-off", 2, "Sign-off")
    assert published.document == PublishedVersion.objects.get(number=2).document

    with pytest.raises(flows_client.FlowsError) as refused:
        engine_server.publish_template("sign-off", BROKEN)
    assert (refused.value.status, refused.value.param) == (400, "source")
    assert "states.sign-off.next: " in refused.value.message
    assert not refused.value.retryable and not refused.value.outcome_unknown
    assert published_numbers() == [1, 2]


@pytest.mark.django_db
def test_against_sohar_the_client_raises_not_supported(sohar):
    flows = server_client(sohar.url, CLIENT_ID, CLIENT_SECRET)
    with pytest.raises(flows_client.NotSupported):
        flows.publish_template("sign-off", SIGN_OFF)
    [sent] = sohar.requests_to("POST /v1/flows/sign-off/versions")
    assert sent.json == {"source": SIGN_OFF}


@pytest.mark.django_db
def test_a_publish_that_may_have_happened_is_never_sent_twice(sohar):
    sohar.plan("POST /v1/flows/sign-off/versions", respond(503))
    flows = flows_client.FlowsClient(sohar.url, CLIENT_ID, CLIENT_SECRET, max_retries=3)
    with pytest.raises(flows_client.TransientFlowsError) as failed:
        flows.publish_template("sign-off", SIGN_OFF)
    assert failed.value.outcome_unknown
    assert sohar.count("POST /v1/flows/sign-off/versions") == 1


# --- The service -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_copy_is_stored_under_the_number_the_server_gave(engine_server):
    unnamed = NAMES_V2.replace("metadata: {name: Sign-off, version: 2}", "metadata: {name: S}")
    first = publishing.version_publish(template_id="sign-off", source=unnamed)
    second = publishing.version_publish(template_id="sign-off", source=NAMES_V3)
    assert (first.version.number, second.version.number) == (2, 3)
    assert second.version.source == NAMES_V3  # the text as published, comments and all
    # Numbers and documents agree with the server's, version by version.
    assert copies() == [(p.number, p.document) for p in PublishedVersion.objects.order_by("number")]


@pytest.mark.django_db(transaction=True)
def test_a_number_flowdesk_holds_already_is_refused_before_anything_is_sent(engine_server):
    with pytest.raises(publishing.PublishRefused) as refused:
        publishing.version_publish(
            template_id="sign-off", source=NAMES_V2.replace("version: 2", "version: 1")
        )
    assert refused.value.field == "source"
    assert "Flowdesk already holds sign-off v1" in refused.value.messages[0]
    assert published_numbers() == [1]


@pytest.mark.django_db(transaction=True)
def test_a_copy_that_arrived_first_is_kept_if_it_is_the_same_document(engine_server):
    # Flowdesk holds v2 before the server has it (as if imported between publish and answer).
    unnamed = NAMES_V2.replace("metadata: {name: Sign-off, version: 2}", "metadata: {name: S}")
    services.version_store(template_id="sign-off", number=2, source=unnamed)
    kept = publishing.version_publish(template_id="sign-off", source=unnamed)
    assert kept.previous and kept.version.number == 2

    other = unnamed.replace("note: {type: string}", "remark: {type: string}")
    services.version_store(template_id="sign-off", number=3, source=unnamed)
    with pytest.raises(publishing.PublishRefused) as refused:
        publishing.version_publish(template_id="sign-off", source=other)
    assert refused.value.field is None
    assert (
        "published this as sign-off v3, but Flowdesk holds another document under v3"
        in (refused.value.messages[0])
    )
    assert published_numbers() == [1, 2, 3]


# --- The admin page --------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_ada_publishes_a_new_version_in_one_step_and_the_numbers_agree(ada, engine_server):
    page = ada.get(PUBLISH_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert "<h1>Publish a new version to the Flows server</h1>" in html
    assert "<strong>publishes</strong>" in html and f'href="{STORE_URL}"' in html
    assert html.index('name="template_id"') < html.index('name="source"')

    response = ada.post(PUBLISH_URL, {"template_id": "sign-off", "source": NAMES_V2})
    assert response.status_code == 302 and response.url == LIST_URL
    assert published_numbers() == [1, 2]
    published = PublishedVersion.objects.get(number=2)
    copy = TemplateVersion.objects.get(number=2)
    assert published.document["metadata"]["version"] == copy.number == 2
    assert copy.document == published.document and copy.source == NAMES_V2
    messages = [str(m) for m in response.wsgi_request._messages]
    assert messages == [
        "Published sign-off v2 to the Flows server: new Runs of sign-off use version 2. "
        "Flowdesk stored its copy for forms under the same number."
    ]
    assert LogEntry.objects.get().object_id == str(copy.pk)  # in the admin's history


@pytest.mark.django_db(transaction=True)
def test_a_document_naming_another_number_is_refused_on_the_field(ada, engine_server):
    response = ada.post(PUBLISH_URL, {"template_id": "sign-off", "source": NAMES_V3})
    assert response.status_code == 200
    assert (
        "metadata.version: The document says version 3, but it would be published as "
        "sign-off v2. Change metadata.version to 2, or remove it."
    ) in form_errors(response, "source")
    assert "version: 3" in response.content.decode()  # the input is kept
    assert published_numbers() == [1] and TemplateVersion.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_invalid_document_shows_its_errors_and_is_not_sent(ada, engine_server):
    response = ada.post(PUBLISH_URL, {"template_id": "sign-off", "source": BROKEN})
    assert response.status_code == 200
    assert "states.sign-off.next" in form_errors(response, "source")
    assert "next: nowhere" in response.content.decode()
    assert published_numbers() == [1]

    response = ada.post(PUBLISH_URL, {"template_id": "not a slug", "source": SIGN_OFF})
    assert form_errors(response, "template_id")
    assert published_numbers() == [1]


@pytest.mark.django_db
def test_against_sohar_the_page_says_to_publish_there_and_store_the_copy(ada, sohar):
    response = ada.post(PUBLISH_URL, {"template_id": "sign-off", "source": SIGN_OFF})
    assert response.status_code == 200
    error = form_errors(response, None)
    assert "does not take new versions from Flowdesk" in error
    assert "Store a template copy for forms" in error
    assert "title: Sign off" in response.content.decode()  # the input is kept
    assert not TemplateVersion.objects.exists()
    assert sohar.count("POST /v1/flows/sign-off/versions") == 1


@pytest.mark.django_db
def test_a_failure_after_sending_says_the_version_may_exist(ada, sohar):
    sohar.plan("POST /v1/flows/sign-off/versions", respond(503))
    response = ada.post(PUBLISH_URL, {"template_id": "sign-off", "source": SIGN_OFF})
    assert "sign-off may have been published" in form_errors(response, None)
    assert not TemplateVersion.objects.exists()


@pytest.mark.django_db
def test_only_those_who_may_store_versions_may_publish(client, ada, django_user_model, sohar):
    assert ada.put(PUBLISH_URL).status_code == 405
    ada.logout()
    assert client.get(PUBLISH_URL).status_code == 302  # to the admin's sign-in
    django_user_model.objects.create_user("carol", password="carol-password", is_staff=True)
    client.login(request=RequestFactory().post("/"), username="carol", password="carol-password")
    assert client.get(PUBLISH_URL).status_code == 403
    assert client.post(PUBLISH_URL, {"template_id": "x", "source": SIGN_OFF}).status_code == 403
    assert sohar.count("POST") == 0
