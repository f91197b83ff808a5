"""POST /api/v1/runs: a per-system token, input checked before Flows is called, and one Run per
externalId however often (and however concurrently) it is sent."""

import threading
import uuid

import httpx
import pytest
from django.db import connection
from django.test import Client

from audit.models import AuditEvent
from flows_integration import client as flows_client
from flows_integration.models import FlowRun
from intake import services
from intake.models import StartedRun
from tests.intake.conftest import COVERAGE_INPUT

URL = "/api/v1/runs"


def post(client: Client, body, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.post(URL, body, content_type="application/json", headers=headers)


# --- Against the engine over real HTTP -------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_starts_once_and_a_repeat_answers_the_same_run(live_templates, api_token, client):
    body = {"templateId": "coverage-check", "inputData": COVERAGE_INPUT, "externalId": "enc-1"}

    first = post(client, body, api_token)
    assert first.status_code == 201, first.content
    run = first.json()
    assert run["templateId"] == "coverage-check"
    assert run["version"] == 2  # the latest stored, pinned
    assert run["externalId"] == "enc-1"
    assert run["status"] in {"CREATED", "IN_PROGRESS", "PENDING"}

    again = post(client, body, api_token)
    assert again.status_code == 200
    assert again.json()["flowRunId"] == run["flowRunId"]

    mirror = FlowRun.objects.get()
    assert str(mirror.flow_run_id) == run["flowRunId"]
    # Known with its template and input from the start: its pauses need no triage.
    assert mirror.template.template_id == "coverage-check"
    assert mirror.version.number == 2
    assert mirror.input_data == COVERAGE_INPUT
    from flows_engine.models import Run as EngineRun

    assert EngineRun.objects.count() == 1
    event = AuditEvent.objects.get(action="run.started")
    assert str(event.flow_run_id) == run["flowRunId"]
    assert "Notfound" not in str(event.detail)  # ids only, never the input


@pytest.mark.django_db(transaction=True)
def test_a_pinned_version_runs_and_another_client_may_reuse_an_external_id(
    live_templates, api_token, client
):
    body = {
        "templateId": "coverage-check",
        "version": 1,
        "inputData": COVERAGE_INPUT,
        "externalId": "shared-id",
    }
    mine = post(client, body, api_token)
    assert mine.status_code == 201
    assert mine.json()["version"] == 1
    _, other_token = services.client_create(name="Scheduler")
    theirs = post(client, body, other_token)
    assert theirs.status_code == 201
    assert theirs.json()["flowRunId"] != mine.json()["flowRunId"]


@pytest.mark.django_db(transaction=True)
def test_without_an_external_id_every_request_starts_a_run(live_templates, api_token, client):
    body = {"templateId": "coverage-check", "inputData": COVERAGE_INPUT}
    first, second = post(client, body, api_token), post(client, body, api_token)
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["externalId"] is None
    assert first.json()["flowRunId"] != second.json()["flowRunId"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="concurrent writers need PostgreSQL")
def test_concurrent_repeats_start_one_run(live_server, live_templates, api_token):
    body = {"templateId": "coverage-check", "inputData": COVERAGE_INPUT, "externalId": "burst"}
    answers: list[httpx.Response] = []
    gate = threading.Barrier(6)

    def send() -> None:
        with httpx.Client(base_url=live_server.url, timeout=60) as http:
            gate.wait()
            answers.append(
                http.post(URL, json=body, headers={"Authorization": f"Bearer {api_token}"})
            )

    threads = [threading.Thread(target=send) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    codes = sorted(answer.status_code for answer in answers)
    assert codes == [200] * 5 + [201], [answer.text for answer in answers]
    assert len({answer.json()["flowRunId"] for answer in answers}) == 1
    assert FlowRun.objects.count() == 1
    assert StartedRun.objects.count() == 1
    from flows_engine.models import Run as EngineRun

    assert EngineRun.objects.count() == 1


# --- Authentication --------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("token", [None, "", "fdk_unknown", "not-a-token"])
def test_a_missing_or_unknown_token_is_401(client, stored_coverage, no_flows_call, token):
    response = post(client, {"templateId": "coverage-check", "inputData": {}}, token)
    assert response.status_code == 401
    assert response.json()["error"] == "authentication_error"
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_a_revoked_token_is_401(client, stored_coverage, no_flows_call):
    api_client, token = services.client_create(name="Old EHR")
    services.client_revoke(api_client=api_client)
    response = post(client, {"templateId": "coverage-check", "inputData": COVERAGE_INPUT}, token)
    assert response.status_code == 401


@pytest.mark.django_db
def test_the_token_is_stored_hashed(api_token):
    from intake.models import ApiClient

    stored = ApiClient.objects.get()
    assert api_token not in (stored.token_hash, stored.token_hint)
    assert len(api_token) > 40 and api_token.startswith(stored.token_hint)
    assert services.client_authenticate(api_token) == stored


@pytest.mark.django_db
def test_no_csrf_token_is_needed_and_other_methods_are_405(api_token, stored_coverage):
    strict = Client(enforce_csrf_checks=True)
    response = strict.post(
        URL,
        {"templateId": "coverage-check", "inputData": {}},
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert response.status_code == 400  # judged on its input, not refused for CSRF
    assert strict.get(URL).status_code == 405


# --- Validation before Flows is called -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"templateId": "coverage-check", "inputData": {"patient": {}}}, "patient.firstName"),
        (
            {
                "templateId": "coverage-check",
                "inputData": {
                    **COVERAGE_INPUT,
                    "patient": {**COVERAGE_INPUT["patient"], "dateOfBirth": "29/02/1980"},
                },
            },
            "patient.dateOfBirth",
        ),
        (
            {"templateId": "coverage-check", "inputData": {**COVERAGE_INPUT, "payerId": "1"}},
            "payerId",
        ),
        ({"templateId": "coverage-check", "inputData": ["not", "an", "object"]}, "inputData"),
        ({"templateId": "coverage-check"}, "inputData"),
        ({"templateId": "no-such-template", "inputData": COVERAGE_INPUT}, "templateId"),
        ({"templateId": "coverage-check", "version": 9, "inputData": COVERAGE_INPUT}, "version"),
        ({"templateId": "coverage-check", "version": "2", "inputData": COVERAGE_INPUT}, "version"),
        ({"templateId": 7, "inputData": COVERAGE_INPUT}, "templateId"),
        (
            {"templateId": "coverage-check", "inputData": COVERAGE_INPUT, "externalId": 5},
            "externalId",
        ),
        (
            {"templateId": "coverage-check", "inputData": COVERAGE_INPUT, "externalId": ""},
            "externalId",
        ),
        (["a list"], "body"),
    ],
)
def test_bad_requests_are_400_naming_the_field_and_flows_is_never_called(
    client, stored_coverage, api_token, no_flows_call, body, param
):
    response = post(client, body, api_token)
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["error"] == "invalid_request_error"
    assert answer["param"] == param
    assert answer["errors"][0]["param"] == param
    assert not StartedRun.objects.exists()


@pytest.mark.django_db
def test_a_body_that_is_not_json_is_400(client, api_token, no_flows_call):
    response = client.post(
        URL,
        "{nope",
        content_type="application/json",
        headers={"Authorization": f"Bearer {api_token}"},
    )
    assert response.status_code == 400
    assert response.json()["param"] == "body"


@pytest.mark.django_db
def test_every_problem_is_listed(client, stored_coverage, api_token, no_flows_call):
    patient = {"firstName": "", "dateOfBirth": "someday"}
    body = {"templateId": "coverage-check", "inputData": {"patient": patient}}
    params = [error["param"] for error in post(client, body, api_token).json()["errors"]]
    assert {"patient.firstName", "patient.lastName", "patient.dateOfBirth"} <= set(params)


# --- Flows failing, and repeats that find no confirmed Run -----------------------------------


@pytest.mark.django_db
def test_a_flows_outage_is_503_and_the_same_external_id_may_try_again(
    client, stored_coverage, api_token, flows_down
):
    body = {"templateId": "coverage-check", "inputData": COVERAGE_INPUT, "externalId": "enc-9"}
    response = post(client, body, api_token)
    assert response.status_code == 503
    assert response.json()["error"] == "flows_unavailable"
    assert response["Retry-After"]
    assert not StartedRun.objects.exists()  # nothing holds the key: a retry may start it


@pytest.mark.django_db
def test_an_unconfirmed_start_is_never_repeated(client, stored_coverage, api_token, monkeypatch):
    calls = []

    def lost(*args, **kwargs):
        calls.append(args)
        raise flows_client.TransientFlowsError("timed out", outcome_unknown=True)

    monkeypatch.setattr(flows_client, "create_run", lost)
    body = {"templateId": "coverage-check", "inputData": COVERAGE_INPUT, "externalId": "enc-7"}
    first = post(client, body, api_token)
    assert first.status_code == 502
    assert first.json()["error"] == "outcome_unknown"
    again = post(client, body, api_token)
    assert again.status_code == 409
    assert again.json()["error"] == "outcome_unknown"
    assert len(calls) == 1


@pytest.mark.django_db
def test_a_repeat_while_the_first_is_starting_says_in_progress(
    client, stored_coverage, api_token, monkeypatch, no_flows_call
):
    from datetime import timedelta

    from intake.models import ApiClient

    monkeypatch.setattr(services, "REPEAT_WAIT", timedelta(0))
    StartedRun.objects.create(
        source="api",
        client=ApiClient.objects.get(),
        external_id="enc-3",
        template_id="coverage-check",
        version=2,
    )
    body = {"templateId": "coverage-check", "inputData": COVERAGE_INPUT, "externalId": "enc-3"}
    response = post(client, body, api_token)
    assert response.status_code == 409
    assert response.json()["error"] == "in_progress"
    assert response["Retry-After"] == "1"


@pytest.mark.django_db
def test_an_external_id_used_for_another_template_is_409(
    client, stored_coverage, api_token, no_flows_call
):
    from flows_integration import services as integration
    from intake.models import ApiClient
    from tests.reviewqueue.conftest import PRIOR_AUTH

    integration.version_store(
        template_id="prior-authorization", number=1, source=PRIOR_AUTH.read_text()
    )
    run = FlowRun.objects.create(flow_run_id=uuid.uuid4(), status="CREATED")
    StartedRun.objects.create(
        source="api",
        client=ApiClient.objects.get(),
        external_id="enc-4",
        template_id="prior-authorization",
        version=1,
        flow_run=run,
    )
    body = {"templateId": "coverage-check", "inputData": COVERAGE_INPUT, "externalId": "enc-4"}
    response = post(client, body, api_token)
    assert response.status_code == 409
    assert response.json()["param"] == "externalId"
