"""The Start run page in Django's test client: who may use it, the form of the chosen version,
errors on their fields with the input kept, one Run per form, an outage in plain words, and the
Run's page until its item opens."""

import uuid

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from flows_integration.models import FlowRun
from intake.models import StartedRun
from tests.reviewqueue.conftest import DEMO

CHOOSE = "/runs/start/"
FORM = "/runs/start/coverage-check/"

FILLED = {
    "~form": "1",
    "patient.firstName": "Maria",
    "patient.lastName": "Notfound",
    "patient.dateOfBirth": "1980-02-29",
    "payerId": "60054",
}


def filled(**extra):
    return {**FILLED, "~key": str(uuid.uuid4()), **extra}


# --- Who may start ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url", [CHOOSE, FORM])
def test_a_reviewer_may_not_start_runs(client, reviewer_only, stored_coverage, url):
    client.force_login(reviewer_only)
    assert client.get(url).status_code == 403
    assert client.post(FORM, filled()).status_code == 403
    assert not StartedRun.objects.exists()


@pytest.mark.django_db
def test_signed_out_people_are_sent_to_sign_in(client, stored_coverage):
    response = client.get(FORM)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_the_wrong_method_is_405(client, starter, stored_coverage):
    client.force_login(starter)
    assert client.post(CHOOSE).status_code == 405
    assert client.put(FORM).status_code == 405


# --- Choosing and filling --------------------------------------------------------------------


@pytest.mark.django_db
def test_the_templates_are_listed(client, starter, stored_coverage):
    client.force_login(starter)
    html = client.get(CHOOSE).content.decode()
    assert reverse("intake:start_form", args=["coverage-check"]) in html
    assert "latest version 2" in html


@pytest.mark.django_db
def test_the_form_is_the_latest_versions_input_schema_unless_another_is_chosen(
    client, starter, stored_coverage
):
    client.force_login(starter)
    latest = client.get(FORM)
    assert latest.status_code == 200
    html = latest.content.decode()
    assert 'name="patient.firstName"' in html
    assert 'name="~version" value="2"' in html
    assert 'name="~key"' in html
    assert "Start Coverage check" in html
    older = client.get(FORM + "?version=1").content.decode()
    assert 'name="~version" value="1"' in older
    assert client.get(FORM + "?version=7").status_code == 404
    assert client.get("/runs/start/no-such-template/").status_code == 404


@pytest.mark.django_db
def test_the_forms_conditionals_re_render_from_the_shared_partial(client, starter, stored_coverage):
    client.force_login(starter)
    html = client.get(FORM).content.decode()
    partial = reverse("reviewqueue:form_partial", args=["coverage-check", 2, "$input"])
    # An "add a row" button posts there; the partial answers a fragment with htmx.
    assert f'hx-post="{partial}"' in html
    response = client.post(
        partial, {"~form": "1", "~action": "add:procedureCodes"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    assert "<html" not in response.content.decode()


@pytest.mark.django_db
def test_errors_land_on_their_fields_and_the_input_is_kept(
    client, starter, stored_coverage, no_flows_call
):
    client.force_login(starter)
    response = client.post(
        FORM, filled(**{"patient.dateOfBirth": "1980-13-45", "patient.firstName": ""})
    )
    assert response.status_code == 422
    form = response.context["form"]
    assert "patient.dateOfBirth" in form.errors
    assert "patient.firstName" in form.errors
    html = response.content.decode()
    assert 'value="Notfound"' in html  # what was typed stays
    assert not StartedRun.objects.exists()


@pytest.mark.django_db
def test_a_flows_outage_says_so_and_keeps_the_input(client, starter, stored_coverage, flows_down):
    client.force_login(starter)
    response = client.post(FORM, filled())
    assert response.status_code == 503
    html = response.content.decode()
    assert "not answering" in html
    assert 'value="Notfound"' in html
    assert not StartedRun.objects.exists()


# --- Starting, against the engine over real HTTP ---------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_valid_form_starts_the_run_and_shows_it(client, starter, live_templates):
    client.force_login(starter)
    response = client.post(FORM, filled())
    assert response.status_code == 302
    started = StartedRun.objects.get()
    assert started.started_by == starter
    assert (started.source, started.template_id, started.version) == ("page", "coverage-check", 2)
    run = started.flow_run
    assert response["Location"] == reverse("intake:run_started", args=[run.flow_run_id])
    assert run.input_data["patient"]["lastName"] == "Notfound"
    event = AuditEvent.objects.get(action="run.started")
    assert event.actor == starter
    assert event.detail["source"] == "page"

    page = client.get(response["Location"])
    assert page.status_code == 200
    assert str(run.flow_run_id) in page.content.decode()
    assert AuditEvent.objects.filter(action="run.status_viewed").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_double_submit_starts_one_run(client, starter, live_templates):
    client.force_login(starter)
    data = filled()
    first, second = client.post(FORM, data), client.post(FORM, data)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"]
    assert FlowRun.objects.count() == 1
    assert AuditEvent.objects.filter(action="run.started").count() == 1


@pytest.mark.django_db
def test_the_runs_page_polls_until_the_run_settles_and_opens_its_item(
    client, starter, stored_coverage
):
    from reviewqueue.models import ReviewItem
    from reviewqueue.services import default_queue

    run = FlowRun.objects.create(
        flow_run_id=uuid.uuid4(),
        template=stored_coverage[1].template,
        version=stored_coverage[1],
        status="IN_PROGRESS",
    )
    StartedRun.objects.create(
        source="page", template_id="coverage-check", version=2, flow_run=run, started_by=starter
    )
    url = reverse("intake:run_started", args=[run.flow_run_id])
    client.force_login(starter)
    page = client.get(url).content.decode()
    assert 'hx-trigger="every 2s"' in page

    polled = client.get(url, HTTP_HX_REQUEST="true", HTTP_X_FLOWDESK_BACKGROUND="1")
    assert polled.status_code == 200
    assert "<html" not in polled.content.decode()
    assert AuditEvent.objects.filter(action="run.status_viewed").count() == 1  # not the poll

    item = ReviewItem.objects.create(
        run=run,
        episode=1,
        queue=default_queue(),
        version=stored_coverage[1],
        state_id="collect-member-id",
        due_at=run.created_at,
        run_ref=str(run.flow_run_id),
    )
    polled = client.get(url, HTTP_HX_REQUEST="true", HTTP_X_FLOWDESK_BACKGROUND="1")
    assert polled["HX-Redirect"] == reverse("reviewqueue:item", args=[item.pk])
    assert client.get(url)["Location"] == reverse("reviewqueue:item", args=[item.pk])


@pytest.mark.django_db
def test_a_run_that_flowdesk_did_not_start_has_no_such_page(client, starter):
    run = FlowRun.objects.create(flow_run_id=uuid.uuid4(), status="PENDING")
    client.force_login(starter)
    assert client.get(reverse("intake:run_started", args=[run.flow_run_id])).status_code == 404


@pytest.mark.django_db
def test_a_signature_on_the_start_form_is_the_signed_in_persons(client, starter):
    """An ``x-signature`` field of a template's input is filled with whoever starts the Run and
    cannot be typed over, as on an item's form."""
    from flows_integration import services as integration

    source = (DEMO / "coverage-check" / "v1.yaml").read_text()
    signed = source.replace(
        "    dateOfService: {type: string, title: Date of service, format: date}\n",
        "    dateOfService: {type: string, title: Date of service, format: date}\n"
        "    requestedBy: {type: string, title: Requested by, x-signature: true}\n",
    )
    assert signed != source
    integration.version_store(template_id="coverage-check", number=1, source=signed)
    client.force_login(starter)

    page = client.get(FORM).content.decode()
    assert 'name="requestedBy"' in page and 'value="Sam"' in page and "readonly" in page
    # A forged name, posted with a missing field: the form comes back, signed by Sam.
    data = filled(requestedBy="Dr. Someone Else")
    del data["payerId"]
    again = client.post(FORM, data).content.decode()
    assert "Dr. Someone Else" not in again and 'value="Sam"' in again
