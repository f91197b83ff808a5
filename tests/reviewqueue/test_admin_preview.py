"""The admin preview of a stored version's forms: try values, see errors and the JSON."""

import json

import pytest
from django.urls import reverse

from flows_integration import services
from tests.reviewqueue.conftest import DEMO

pytestmark = pytest.mark.django_db


@pytest.fixture
def prior_auth():
    source = (DEMO / "prior-authorization" / "v1.yaml").read_text()
    return services.version_store(template_id="prior-authorization", number=1, source=source)


def preview_url(version, state_id):
    return reverse("admin:flows_integration_templateversion_preview", args=[version.pk, state_id])


def test_the_version_page_links_every_form(ada, prior_auth):
    page = ada.get(reverse("admin:flows_integration_templateversion_change", args=[prior_auth.pk]))
    html = page.content.decode()
    assert 'id="form-previews"' in html
    for state_id in ("$input", "coverage-problem", "clinical-review", "supervisor-signoff"):
        assert preview_url(prior_auth, state_id) in html


def test_a_preview_shows_the_form_with_htmx(ada, prior_auth):
    response = ada.get(preview_url(prior_auth, "clinical-review"))
    assert response.status_code == 200
    html = response.content.decode()
    assert "htmx" in html
    assert 'name="decision"' in html
    partial = reverse(
        "reviewqueue:form_partial", args=["prior-authorization", 1, "clinical-review"]
    )
    assert f'hx-post="{partial}"' in html


def test_a_preview_post_shows_the_errors_on_their_fields(ada, prior_auth):
    response = ada.post(
        preview_url(prior_auth, "clinical-review"),
        {"decision": "deny", "diagnosisCodes~rows": "1", "diagnosisCodes.0.code": "bad"},
    )
    form = response.context["form"]
    assert form.answer is None
    assert form.errors["denialReason"] == ["This field is required."]
    assert form.errors["rationale"] == ["This field is required."]
    assert form.errors["diagnosisCodes.0.code"] == ["Enter it in the expected format."]
    assert "Nothing would be sent" in response.content.decode()
    assert 'value="bad"' in response.content.decode()  # input kept as typed


def test_a_preview_post_shows_the_json_that_would_be_sent(ada, prior_auth):
    response = ada.post(
        preview_url(prior_auth, "clinical-review"),
        {
            "decision": "modify",
            "approvedUnits": "6",
            "authorization.validFrom": "2026-03-01",
            "authorization.validThrough": "2026-06-01",
            "diagnosisCodes~rows": "1",
            "diagnosisCodes.0.code": "M17.11",
            "criteria.guideline": "mcg",
            "criteria.met": "on",
            "reviewer.name": "Ann Reviewer",
            "reviewer.credential": "RN",
            # Declared only in the template's branch for a denial: hidden here, never sent.
            "denialReason": "experimental",
        },
    )
    form = response.context["form"]
    assert form.errors == {}
    expected = {
        "decision": "modify",
        "approvedUnits": 6,
        "authorization": {"validFrom": "2026-03-01", "validThrough": "2026-06-01"},
        "diagnosisCodes": [{"code": "M17.11", "primary": False}],
        "criteria": {"guideline": "mcg", "met": True},
        "reviewer": {"name": "Ann Reviewer", "credential": "RN"},
    }
    assert form.answer == expected
    assert 'id="sf-answer"' in response.content.decode()
    assert json.loads(response.context["form"].answer_json()) == expected


def test_the_start_run_input_has_a_preview(ada, prior_auth):
    response = ada.get(preview_url(prior_auth, "$input"))
    assert response.status_code == 200
    assert 'name="patient.memberId"' in response.content.decode()


def test_a_preview_of_no_callback_state_is_404(ada, prior_auth):
    assert ada.get(preview_url(prior_auth, "estimate-cost")).status_code == 404


def test_a_preview_needs_an_admin(client, alice, prior_auth):
    client.force_login(alice)
    response = client.get(preview_url(prior_auth, "clinical-review"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_preview_refuses_other_methods(ada, prior_auth):
    assert ada.put(preview_url(prior_auth, "clinical-review")).status_code == 405
