"""One Run's page (/runs/<id>/) and its "Re-sync now": who may open it (404 for everyone else),
values for people, the timeline, the audit rows, a bounded number of queries, and re-sync
against the real engine over HTTP and against a failing server."""

import json
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import READ_FOLDED_WITHIN
from flows_engine import services as engine_services
from flows_integration import client as flows_client
from flows_integration import services as integration
from flows_integration.models import FlowRun, RunStatus, WebhookEvent
from reviewqueue import services
from tests.flows_integration.faulty_server import CLIENT_ID, CLIENT_SECRET, FaultyServer, respond
from tests.reviewqueue.conftest import CLINICAL_ANSWER, DEMO, clinical_form_data, mirrored

EXAMPLES = Path(__file__).parents[2] / "docs" / "examples"
GET = "GET /v1/flow-runs/"


def page(run: FlowRun) -> str:
    return f"/runs/{run.flow_run_id}/"


def resync(run: FlowRun) -> str:
    return f"/runs/{run.flow_run_id}/resync/"


def login(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def write_off(db):
    """A finished billing write-off Run (no item): money, a payer code, a Yes."""
    version = integration.version_store(
        template_id="billing-write-off",
        number=1,
        source=(DEMO / "billing-write-off" / "v1.yaml").read_text(),
    )
    input_data = json.loads((EXAMPLES / "billing-write-off-input.json").read_text())["inputData"]
    return mirrored(
        template=version.template,
        version=version,
        status=RunStatus.COMPLETE,
        input_data=input_data,
        state_results={"estimate-allowed": {"allowedAmount": 1890.5, "patientResponsibility": 25}},
        output={"claimId": "CLM-2026-0048213", "allowedAmount": 1890.5, "inNetwork": True},
    )


# --- Who may open it ---------------------------------------------------------------------------


def test_a_reviewer_opens_a_run_of_their_queue(client, reviewer, item):
    response = login(client, reviewer).get(page(item.run))
    assert response.status_code == 200
    assert f'href="/items/{item.pk}/"' in response.content.decode()


def test_a_reviewer_of_another_team_gets_404(client, outsider, item):
    login(client, outsider)
    assert client.get(page(item.run)).status_code == 404
    assert client.post(resync(item.run)).status_code == 404


def test_an_unknown_run_is_404_and_a_non_id_is_not_a_page(client, supervisor):
    login(client, supervisor)
    assert client.get(f"/runs/{uuid.uuid4()}/").status_code == 404
    assert client.get("/runs/not-a-run/").status_code == 404


def test_a_supervisor_sees_a_run_waiting_in_triage(client, supervisor):
    waiting = mirrored(status=RunStatus.PENDING, state_id="somewhere-else")
    response = login(client, supervisor).get(page(waiting))
    assert response.status_code == 200
    assert "it waits in triage" in response.content.decode()


def test_a_flow_admin_sees_runs_without_items_only(client, flow_admin, item):
    running = mirrored()
    login(client, flow_admin)
    assert client.get(page(running)).status_code == 200
    assert client.get(page(item.run)).status_code == 404


def test_a_reviewer_does_not_see_runs_without_items(client, reviewer):
    assert login(client, reviewer).get(page(mirrored())).status_code == 404


def test_methods_and_login(client, supervisor, item):
    assert client.get(page(item.run)).status_code == 302
    login(client, supervisor)
    assert client.post(page(item.run)).status_code == 405
    assert client.get(resync(item.run)).status_code == 405


# --- What it shows -----------------------------------------------------------------------------


def test_values_are_shown_for_people(client, supervisor, write_off):
    html = login(client, supervisor).get(page(write_off)).content.decode()
    assert "Billing write-off" in html  # the template by its name
    assert "Complete" in html  # the status by its title
    assert "$2,450.00" in html and "$1,310.40" in html  # input marked x-display: dollars
    assert "Aetna" in html and "60054" not in html  # a payer code by its title
    assert "$1,890.50" in html  # output, described by the step it reads
    assert "<dd>Yes</dd>" in html  # in network
    assert "Estimate allowed amount" in html or "Allowed amount" in html
    assert "Mar 22, 1957" in html  # a date in the one format people read
    main = html.split('<main id="main"', 1)[1]
    assert "{&#x27;" not in main and "{'" not in main and '{"' not in main  # never a dict
    assert "True" not in main and "1890.5<" not in main


def test_the_timeline_tells_every_status_and_what_people_did(client, supervisor, claimed_item):
    run = claimed_item.run
    WebhookEvent.objects.create(
        svix_id="msg_1",
        event_type="flow.updated",
        flow_run_id=run.flow_run_id,
        status="PENDING",
        state_id="clinical-review",
        payload={"flowRunId": str(run.flow_run_id), "status": "PENDING"},
    )
    services.submission_create(
        item=claimed_item,
        user=claimed_item.claimed_by,
        answer=CLINICAL_ANSWER,
        form_data=clinical_form_data(),
        ip=None,
    )
    response = login(client, supervisor).get(page(run))
    timeline = [entry.text for entry in response.context["story"].timeline]
    assert "Flows: waiting for input, at Clinical review" in timeline
    assert {"Item opened", "Claimed", "Submitted", "First seen by Flowdesk"} <= set(timeline)
    html = response.content.decode()
    # The submission: who, when, its status; the webhook event: its status and step by title.
    assert "Answers submitted" in html and "Waiting to be sent" in html
    assert "<td>alice</td>" in html
    assert "<code>flow.updated</code>" in html and "<td>Clinical review</td>" in html
    # Views are in the audit log, not the story of the Run.
    client.get(page(run))
    timeline = [entry.text for entry in client.get(page(run)).context["story"].timeline]
    assert not [text for text in timeline if "viewed" in text.lower()]


def test_a_run_started_through_the_intake_api_names_its_system_and_external_id(
    client, supervisor, item
):
    from tests.reviewqueue.test_views_runs import started_by_api

    started_by_api(item.run, "EHR-000123")
    html = login(client, supervisor).get(page(item.run)).content.decode()
    assert "Started in Flowdesk: Intake API by EHR, external id <code>EHR-000123</code>" in html


def test_another_queues_item_of_the_same_run_is_left_out(client, reviewer, outsider, item):
    """A Run is visible through one item; another team's item of it is not shown."""
    assert login(client, outsider).get(page(item.run)).status_code == 404
    response = login(client, reviewer).get(page(item.run))
    assert [found.pk for found, _ in response.context["story"].items] == [item.pk]


# --- Audit and cost ------------------------------------------------------------------------------


def test_each_view_is_audited_with_the_run_id_only(client, supervisor, write_off):
    login(client, supervisor).get(page(write_off))
    # A reload, even one that says it is "background", is the same read a moment later.
    client.get(page(write_off), headers={"X-Flowdesk-Background": "1"})
    events = AuditEvent.objects.filter(action="run.viewed")
    assert events.count() == 1
    with time_machine.travel(timezone.now() + READ_FOLDED_WITHIN + timedelta(seconds=1)):
        client.get(page(write_off), headers={"X-Flowdesk-Background": "1"})
    assert events.count() == 2
    event = events.first()
    assert event.flow_run_id == write_off.flow_run_id
    assert event.actor == supervisor
    assert event.detail == {}


def test_a_404_is_not_audited_as_a_read(client, outsider, item):
    login(client, outsider).get(page(item.run))
    assert not AuditEvent.objects.filter(action="run.viewed").exists()


# Session, user, time zone, two for permissions, the Run, the audit row, items, submissions,
# webhook events, audit events and the health banner: 12, with room for a session write.
QUERY_BOUND = 13


def test_the_page_costs_a_bounded_number_of_queries(
    client, supervisor, claimed_item, django_assert_max_num_queries
):
    run = claimed_item.run
    login(client, supervisor).get(page(run))

    def count() -> int:
        with django_assert_max_num_queries(QUERY_BOUND) as captured:
            assert client.get(page(run)).status_code == 200
        return len(captured.captured_queries)

    few = count()
    for n in range(40):
        WebhookEvent.objects.create(
            svix_id=f"msg_{n}",
            event_type="flow.updated",
            flow_run_id=run.flow_run_id,
            status="IN_PROGRESS",
            payload={},
        )
        services.note_add(item=claimed_item, user=supervisor, body="checked", ip=None)
    assert count() == few


# --- Re-sync now ---------------------------------------------------------------------------------

COVERAGE_INPUT = {
    "patient": {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"},
    "payerId": "60054",
}


@pytest.mark.django_db(transaction=True)
def test_resync_against_the_engine_says_what_changed(client, flows_api, supervisor):
    integration.templates_import()
    run = integration.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT, version=1)
    # The engine runs it to its pause; no webhook tells Flowdesk (nothing is registered).
    engine_services.run_advance(run.flow_run_id)

    response = login(client, supervisor).post(resync(run), follow=True)

    html = response.content.decode()
    assert "Re-synced from Flows. Changed: Status: Created → Waiting for input" in html
    assert "Waiting at: — → " in html and "collect-member-id" not in html
    mirror = FlowRun.objects.get(pk=run.pk)
    assert (mirror.status, mirror.state_id) == ("PENDING", "collect-member-id")
    event = AuditEvent.objects.get(action="run.resynced")
    assert str(event.flow_run_id) == str(run.flow_run_id)
    assert event.detail["outcome"] == "changed"
    assert "status" in event.detail["fields"]
    assert "Maria" not in json.dumps(event.detail)

    response = client.post(resync(run), follow=True)
    assert "Re-synced from Flows: nothing has changed." in response.content.decode()


@pytest.fixture
def failing_api(settings) -> Iterator[FaultyServer]:
    """Flowdesk's client pointed at a Sohar-like server scripted to fail."""
    with FaultyServer() as server:
        settings.FLOWS_API_URL = server.url
        settings.FLOWS_CLIENT_ID = CLIENT_ID
        settings.FLOWS_CLIENT_SECRET = CLIENT_SECRET
        settings.FLOWS_CONNECT_TIMEOUT = 0.5
        settings.FLOWS_READ_TIMEOUT = 1.0
        flows_client.reset_client()
        yield server
    flows_client.reset_client()


def test_resync_against_a_failing_server_shows_a_plain_message(client, failing_api, reviewer, item):
    # A Retry-After beyond the client's backoff cap: answered at once, no waiting in the test.
    failing_api.always(GET, respond(503, {"error": "unavailable"}, headers={"Retry-After": "60"}))
    response = login(client, reviewer).post(resync(item.run))
    assert response.status_code == 302
    html = client.get(response["Location"]).content.decode()
    assert "Flows is not answering right now, so this Run was not re-synced." in html
    assert "Technical detail" not in html  # for supervisors only
    mirror = FlowRun.objects.get(pk=item.run.pk)
    assert (mirror.status, mirror.state_id) == ("PENDING", "clinical-review")
    event = AuditEvent.objects.get(action="run.resynced")
    assert event.detail == {"outcome": "failed", "status": 503}


def test_resync_of_a_run_flows_does_not_know(client, failing_api, supervisor, item):
    failing_api.always(GET, respond(404, {"error": "not_found", "param": "flowRunId"}))
    response = login(client, supervisor).post(resync(item.run), follow=True)
    html = response.content.decode()
    assert "Flows does not know this Run, so nothing was re-synced." in html
    assert "Technical detail" in html


def test_resync_when_nothing_listens(client, settings, supervisor, item):
    from tests.flows_integration.faulty_server import closed_port

    settings.FLOWS_API_URL = f"http://127.0.0.1:{closed_port()}"
    settings.FLOWS_CLIENT_ID = CLIENT_ID
    settings.FLOWS_CLIENT_SECRET = CLIENT_SECRET
    settings.FLOWS_CONNECT_TIMEOUT = 0.2
    flows_client.reset_client()
    try:
        response = login(client, supervisor).post(resync(item.run), follow=True)
    finally:
        flows_client.reset_client()
    assert response.status_code == 200
    assert "so this Run was not re-synced" in response.content.decode()
