"""reviewqueue:form_partial: a schema form re-rendered from what has been typed so far."""

import pytest
from django.urls import reverse

from flows_integration import services
from flows_integration.models import TemplateVersion
from tests.reviewqueue.conftest import DEMO

pytestmark = pytest.mark.django_db


@pytest.fixture
def write_off():
    source = (DEMO / "billing-write-off" / "v1.yaml").read_text()
    return services.version_store(template_id="billing-write-off", number=1, source=source)


def url(state_id="request-write-off", number=1):
    return reverse("reviewqueue:form_partial", args=["billing-write-off", number, state_id])


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def test_without_htmx_get_is_a_whole_page(alice_client, write_off):
    response = alice_client.get(url())
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert 'name="reason"' in html
    assert 'id="schema-form"' in html


def test_without_htmx_a_post_validates_and_shows_the_json(alice_client, write_off):
    response = alice_client.post(
        url(), {"reason": "small-balance", "amount": "12", "adjustmentCode": "CO-45"}
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert form.answer == {"reason": "small-balance", "amount": 12, "adjustmentCode": "CO-45"}
    assert "The JSON that would be sent" in response.content.decode()


def test_without_htmx_a_row_action_shows_the_form_as_typed(alice_client, write_off):
    response = alice_client.post(
        url(), {"~action": "add:hardship.documentsReceived", "amount": "x"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'value="x"' in html
    assert "errorlist" not in html


def test_with_htmx_a_controlling_field_re_renders_its_fieldset(alice_client, write_off):
    response = alice_client.post(
        url(), {"reason": "hardship", "~part": ""}, headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<div id="sf-root"')
    # Hardship documentation is now required: its fieldset is marked so.
    assert "Hardship documentation" in html


def test_with_htmx_a_get_is_the_form_fragment(alice_client, write_off):
    response = alice_client.get(url(), headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" not in html
    assert 'id="schema-form"' in html


def test_with_htmx_an_unknown_part_replaces_the_whole_form(alice_client, write_off):
    response = alice_client.post(url(), {"~part": "gone"}, headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == "#schema-form"


def test_wrong_method_is_refused(alice_client, write_off):
    assert alice_client.put(url()).status_code == 405
    assert alice_client.delete(url()).status_code == 405


def test_an_outsider_is_sent_to_sign_in(client, write_off):
    response = client.get(url())
    assert response.status_code == 302
    assert reverse("login") in response["Location"]


def test_unknown_version_or_state_is_404(alice_client, write_off):
    assert alice_client.get(url(number=9)).status_code == 404
    assert alice_client.get(url(state_id="estimate-allowed")).status_code == 404  # not a callback
    assert alice_client.get(url(state_id="nope")).status_code == 404


def test_the_start_run_form_is_addressed_as_input(alice_client, write_off):
    response = alice_client.get(url(state_id="$input"))
    assert response.status_code == 200
    assert 'name="patient.firstName"' in response.content.decode()
    assert TemplateVersion.objects.count() == 1
