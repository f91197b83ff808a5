"""Runs started anywhere: against a Sohar-like server whose Get Run and webhooks name no
template, a Run another system started becomes an item by the state it waits in; when that does
not tell, it waits in triage until a supervisor or flow admin says which template it is.

Every Run that waits for input is an item or in triage: nothing is dropped.
"""

import threading
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from audit.models import AuditEvent
from flows_integration import services as integration
from flows_integration.models import FlowRun, FlowTemplate, PauseRule, TemplateVersion
from reviewqueue import selectors, services
from reviewqueue.models import ItemStatus, ReviewItem, Route
from tests.flows_integration.faulty_server import Recorded
from tests.flows_integration.sohar_like import SoharLikeServer, flowdesk_pointed_at
from tests.reviewqueue.test_unconfirmed import TWO_PAUSES
from tests.waiting import eventually

OTHER_LOOKS = TWO_PAUSES.replace("name: Two looks", "name: Other looks")


@pytest.fixture
def sohar(settings, monkeypatch) -> Iterator[SoharLikeServer]:
    # Webhooks are processed by the test itself, in order, instead of by a worker.
    monkeypatch.setattr(integration, "_enqueue_event", lambda event_id: None)
    with flowdesk_pointed_at(SoharLikeServer(["first-look", "second-look"]), settings) as server:
        yield server


@pytest.fixture
def two_looks(db, clinical_queue):
    version = integration.version_store(template_id="two-looks", number=1, source=TWO_PAUSES)
    Route.objects.create(template=version.template, queue=clinical_queue)
    return version


@pytest.fixture
def other_looks(db, clinical_queue):
    """Another template with the same callback state ids: a state id alone is ambiguous."""
    version = integration.version_store(template_id="other-looks", number=1, source=OTHER_LOOKS)
    Route.objects.create(template=version.template, queue=clinical_queue)
    return version


def webhook(run_id: str, status: str, state_id: str = "") -> None:
    """Sohar's thin webhook, as the receiver stores it once verified, then processed."""
    payload = {"event": "flow.updated", "flowRunId": run_id, "status": status}
    if state_id:
        payload["stateId"] = state_id
    event_id = integration.event_receive(
        svix_id=f"msg_{run_id}_{status}_{state_id}", payload=payload
    )
    assert event_id is not None
    integration.events_process([event_id])


def started_elsewhere(sohar: SoharLikeServer) -> str:
    """A Run that an EHR integration started on Sohar, announced by its webhook."""
    run_id = sohar.start_run()
    webhook(run_id, "PENDING", "first-look")
    return run_id


@pytest.mark.django_db
def test_a_run_started_elsewhere_opens_an_item_by_the_state_it_waits_in(sohar, two_looks):
    run_id = started_elsewhere(sohar)

    run = FlowRun.objects.get(flow_run_id=run_id)
    assert (run.version, run.state_id) == (two_looks, "first-look")
    item = run.review_items.get()
    assert (item.status, item.state_id, item.version) == (ItemStatus.OPEN, "first-look", two_looks)
    assert not selectors.runs_in_triage().exists()


@pytest.mark.django_db
def test_an_ambiguous_run_waits_in_triage_until_someone_says_which_it_is(
    sohar, two_looks, other_looks, supervisor, client
):
    run_id = started_elsewhere(sohar)

    run = FlowRun.objects.get(flow_run_id=run_id)
    assert run.version is None
    assert not ReviewItem.objects.exists()
    assert list(selectors.runs_in_triage()) == [run]
    client.force_login(supervisor)
    queue_page = client.get(reverse("reviewqueue:queue")).content.decode()
    assert "1 Run waiting in triage" in queue_page
    triage_page = client.get(reverse("reviewqueue:triage")).content.decode()
    assert run_id in triage_page
    assert "Two looks v1: First look" in triage_page
    assert "Other looks v1: First look" in triage_page

    response = client.post(
        reverse("reviewqueue:triage"),
        {"run": run.pk, "choice": f"{two_looks.pk}:first-look", "remember": "1"},
    )

    item = ReviewItem.objects.get(run=run)
    assert response.status_code == 302
    assert response["Location"] == reverse("reviewqueue:item", args=[item.pk])
    assert (item.version, item.state_id, item.status) == (two_looks, "first-look", ItemStatus.OPEN)
    event = AuditEvent.objects.get(action="run.triaged")
    assert (event.actor, str(event.flow_run_id), event.item_id) == (supervisor, run_id, item.pk)
    assert event.detail == {"version": two_looks.pk, "state": "first-look", "remembered": True}
    assert PauseRule.objects.get(state_id="first-look").version == two_looks
    assert not selectors.runs_in_triage().exists()
    # Remembered: the next such Run opens at once.
    later = FlowRun.objects.get(flow_run_id=started_elsewhere(sohar))
    assert later.review_items.get().version == two_looks


@pytest.mark.django_db
def test_triage_refuses_a_choice_that_is_not_one_of_the_runs(
    sohar, two_looks, other_looks, supervisor, reviewer, client
):
    run = FlowRun.objects.get(flow_run_id=started_elsewhere(sohar))
    client.force_login(supervisor)

    response = client.post(
        reverse("reviewqueue:triage"), {"run": run.pk, "choice": f"{two_looks.pk}:second-look"}
    )

    assert response.status_code == 422
    assert "Choose the template version and step" in response.content.decode()
    assert not ReviewItem.objects.exists()
    assert not AuditEvent.objects.filter(action="run.triaged").exists()
    # Reviewers neither see triage nor its count.
    client.force_login(reviewer)
    assert client.get(reverse("reviewqueue:triage")).status_code == 404
    assert "triage" not in client.get(reverse("reviewqueue:queue")).content.decode()


@pytest.mark.django_db
def test_a_run_of_no_stored_template_is_in_triage_and_says_what_to_do(sohar, supervisor, client):
    run_id = started_elsewhere(sohar)

    assert [run.flow_run_id for run in selectors.runs_in_triage()] == [
        FlowRun.objects.get().flow_run_id
    ]
    client.force_login(supervisor)
    page = client.get(reverse("reviewqueue:triage")).content.decode()
    assert run_id in page
    assert "Store a copy of its template first" in page


@pytest.mark.django_db
def test_a_run_whose_state_nobody_named_is_chosen_with_its_step(
    sohar, two_looks, other_looks, supervisor
):
    """Reconcile alone (Sohar's Get Run) sees PENDING but no state: triage offers every pause."""
    run_id = sohar.start_run()
    integration.run_refresh(run_id)
    run = FlowRun.objects.get(flow_run_id=run_id)
    assert (run.state_id, run.version) == ("", None)
    labels = [label for _, label in selectors.triage_choices(run)]
    assert labels == [
        "Other looks v1: First look",
        "Other looks v1: Second look",
        "Two looks v1: First look",
        "Two looks v1: Second look",
    ]

    item = services.run_triage(run=run, version=two_looks, state_id="second-look", user=supervisor)

    assert item is not None and (item.state_id, item.version) == ("second-look", two_looks)
    assert not PauseRule.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_webhook_that_beats_create_runs_reply_does_not_lose_the_template(
    sohar, two_looks, other_looks
):
    """Create Run's reply comes back after the Run's first webhook was processed: the mirror row
    exists, without template (the state id is ambiguous here), and run_create fills it in."""
    webhook_done = threading.Event()

    def create_then_wait(handler, request: Recorded) -> None:
        run_id = sohar.start_run()
        # The webhook arrives while Create Run's reply is still on its way.
        worker = threading.Thread(target=_process_webhook, args=(run_id, webhook_done))
        worker.start()
        webhook_done.wait(10)
        handler.answer_json(201, {"flowRunId": run_id})

    sohar.plan("POST /v1/flows/", create_then_wait)

    run = integration.run_create(
        template_id="two-looks", input_data={"patient": {"firstName": "Ana"}}
    )

    assert webhook_done.is_set()
    run.refresh_from_db()
    assert (run.template_id, run.version) == (two_looks.template_id, two_looks)
    assert run.input_data == {"patient": {"firstName": "Ana"}}
    item = run.review_items.get()
    assert (item.state_id, item.patient_name) == ("first-look", "Ana")


def _process_webhook(run_id: str, done: threading.Event) -> None:
    from django.db import connection

    try:
        webhook(run_id, "PENDING", "first-look")
    finally:
        connection.close()
        done.set()


@pytest.mark.django_db
def test_registering_the_template_opens_the_runs_waiting_for_it(sohar, tmp_path, clinical_queue):
    """Sohar has no API that hands out templates: a deployment registers each version from its
    file, and the Runs already waiting at its pauses become items."""
    run_id = started_elsewhere(sohar)
    assert selectors.runs_in_triage().count() == 1
    document = tmp_path / "two-looks.yaml"
    document.write_text(TWO_PAUSES)
    out = StringIO()

    call_command("template_register", "two-looks", str(document), stdout=out, stderr=StringIO())

    assert "stored two-looks v1" in out.getvalue()
    run = FlowRun.objects.get(flow_run_id=run_id)
    assert run.version is not None and run.version.number == 1
    assert run.review_items.get().state_id == "first-look"
    assert not selectors.runs_in_triage().exists()


@pytest.mark.django_db
def test_registering_refuses_an_invalid_document_and_stores_nothing(tmp_path):
    document = tmp_path / "broken.yaml"
    document.write_text(TWO_PAUSES.replace("next: second-look", "next: nowhere"))

    with pytest.raises(CommandError, match="no state named 'nowhere'"):
        call_command("template_register", "two-looks", str(document), stdout=StringIO())

    assert not FlowRun.objects.exists()
    assert not TemplateVersion.objects.exists()


@pytest.mark.django_db
def test_a_template_a_route_named_first_takes_its_documents_name(clinical_queue):
    from flows_integration.models import FlowTemplate

    template = FlowTemplate.objects.create(template_id="two-looks")
    Route.objects.create(template=template, queue=clinical_queue)

    integration.version_store(template_id="two-looks", number=1, source=TWO_PAUSES)

    template.refresh_from_db()
    assert str(template) == "Two looks"


@pytest.mark.django_db(transaction=True)
def test_a_run_started_by_curl_on_the_engine_becomes_an_item_by_its_state(
    engine_api, flows_api, receiver_registered, celery_worker, clinical_queue
):
    """Over real HTTP, with the real worker: nothing of Flowdesk's starts this Run."""
    integration.templates_import()
    route = Route.objects.create(
        template=FlowTemplate.objects.get(template_id="coverage-check"), queue=clinical_queue
    )
    response = engine_api.post(
        "/v1/flows/coverage-check/runs",
        json={
            "inputData": {
                "patient": {
                    "firstName": "Maria",
                    "lastName": "Notfound",
                    "dateOfBirth": "1980-02-29",
                }
            }
        },
    )
    assert response.status_code == 201, response.text
    run_id = response.json()["flowRunId"]

    item = eventually(
        lambda: ReviewItem.objects.filter(run__flow_run_id=run_id).first(),
        what="the Run's pause to open as an item",
    )
    assert (item.state_id, item.status, item.queue) == (
        "collect-member-id",
        ItemStatus.OPEN,
        route.queue,
    )
    assert item.version.template.template_id == "coverage-check"
    assert not selectors.runs_in_triage().exists()
