"""The engine's HTTP API, over real HTTP against pytest-django's live server."""

import time
import uuid
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from flows_engine import services
from flows_engine.models import AccessToken, Run, RunStatus
from tests.conftest import api_session

pytestmark = pytest.mark.django_db(transaction=True)

PATIENT = {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"}
COVERAGE_INPUT = {"patient": PATIENT, "payerId": "60054"}


def wait_for_status(api: httpx.Client, run_id: str, *statuses: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        body = api.get(f"/v1/flow-runs/{run_id}").json()
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"run stayed {body['status']}, wanted {statuses}"
        time.sleep(0.05)


def test_token_gives_a_bearer_token(live_server, engine_clients):
    response = httpx.post(
        f"{live_server.url}/flows-api/oauth/token",
        json={"client_id": "test-sandbox", "client_secret": "sandbox-secret"},
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert len(body["access_token"]) > 30


@pytest.mark.parametrize(
    "body",
    [
        {"client_id": "test-sandbox", "client_secret": "wrong"},
        {"client_id": "nobody", "client_secret": "sandbox-secret"},
        {"client_id": "test-sandbox"},
        {},
    ],
)
def test_token_refuses_bad_credentials_with_403(live_server, engine_clients, body):
    response = httpx.post(f"{live_server.url}/flows-api/oauth/token", json=body)
    assert response.status_code == 403
    assert response.json()["error"] == "unauthorized"


def test_token_refuses_get(live_server):
    assert httpx.get(f"{live_server.url}/flows-api/oauth/token").status_code == 405


@pytest.mark.parametrize("authorization", [None, "Bearer nonsense", "Basic abc", "Bearer"])
def test_calls_without_a_valid_token_get_403(live_server, engine_clients, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    base = f"{live_server.url}/flows-api"
    for method, path in [
        ("GET", "/v1/flows"),
        ("POST", "/v1/flows/coverage-check/runs"),
        ("GET", f"/v1/flow-runs/{uuid.uuid4()}"),
        ("PUT", f"/v1/flow-runs/{uuid.uuid4()}"),
    ]:
        response = httpx.request(method, base + path, headers=headers, json={})
        assert response.status_code == 403, (method, path)
        assert response.json()["error"] == "unauthorized"


def test_an_expired_token_gets_403(engine_api):
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert engine_api.get("/v1/flows").status_code == 403


def test_create_run_answers_201_with_the_run_id(engine_api, demo_templates):
    response = engine_api.post("/v1/flows/coverage-check/runs", json={"inputData": COVERAGE_INPUT})
    assert response.status_code == 201
    run = Run.objects.get(pk=response.json()["flowRunId"])
    assert run.version.number == 2  # the latest version
    assert run.environment == "sandbox"


@pytest.mark.parametrize(
    ("body", "status", "param"),
    [
        ({}, 400, "inputData"),
        ({"inputData": []}, 400, "inputData"),
        ({"inputData": {"payerId": "60054"}}, 400, "patient"),
        ({"inputData": {**COVERAGE_INPUT, "payerId": "11111"}}, 400, "payerId"),
        (
            {"inputData": {**COVERAGE_INPUT, "patient": {**PATIENT, "dateOfBirth": "1980-02-30"}}},
            400,
            "patient.dateOfBirth",
        ),
        ({"inputData": COVERAGE_INPUT, "version": 99}, 404, "version"),
        ({"inputData": COVERAGE_INPUT, "version": "two"}, 400, "version"),
    ],
)
def test_create_run_refusals_name_the_param(engine_api, demo_templates, body, status, param):
    response = engine_api.post("/v1/flows/coverage-check/runs", json=body)
    assert response.status_code == status
    assert response.json()["param"] == param
    assert response.json()["error"] in {"invalid_request_error", "not_found"}
    assert not Run.objects.exists()


def test_create_run_for_an_unknown_template_is_404(engine_api, demo_templates):
    response = engine_api.post("/v1/flows/no-such-template/runs", json={"inputData": {}})
    assert response.status_code == 404
    assert response.json()["param"] == "templateId"


def test_create_run_refuses_a_body_that_is_not_json(engine_api, demo_templates):
    response = engine_api.post(
        "/v1/flows/coverage-check/runs",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["param"] == "body"


@pytest.mark.parametrize("run_id", [str(uuid.uuid4()), "not-a-uuid"])
def test_get_run_of_an_unknown_id_is_404(engine_api, run_id):
    response = engine_api.get(f"/v1/flow-runs/{run_id}")
    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "param": "flowRunId",
        "message": "no such flow run",
    }


def test_runs_of_another_environment_are_invisible(live_server, engine_api, demo_templates):
    run_id = engine_api.post(
        "/v1/flows/coverage-check/runs", json={"inputData": COVERAGE_INPUT}
    ).json()["flowRunId"]
    production = api_session(f"{live_server.url}/flows-api", "test-production", "production-secret")
    assert production.get(f"/v1/flow-runs/{run_id}").status_code == 404
    assert production.put(f"/v1/flow-runs/{run_id}", json={"input": {}}).status_code == 404


def test_get_run_shows_sohar_fields_and_our_extensions(engine_api, demo_templates):
    run_id = engine_api.post(
        "/v1/flows/coverage-check/runs", json={"inputData": COVERAGE_INPUT, "version": 1}
    ).json()["flowRunId"]
    body = engine_api.get(f"/v1/flow-runs/{run_id}").json()
    assert body["flowRunId"] == run_id
    assert body["status"] == "CREATED"
    assert body["output"] == {}
    assert "errors" not in body
    assert body["templateId"] == "coverage-check"
    assert body["version"] == 1
    assert body["stateId"] is None
    assert body["createdAt"] and body["updatedAt"]


def test_update_run_that_is_not_pending_is_409_and_changes_nothing(engine_api, demo_templates):
    run_id = engine_api.post(
        "/v1/flows/coverage-check/runs", json={"inputData": COVERAGE_INPUT}
    ).json()["flowRunId"]
    response = engine_api.put(f"/v1/flow-runs/{run_id}", json={"input": {"memberId": "W1234567"}})
    assert response.status_code == 409
    assert response.json()["param"] == "status"
    assert Run.objects.get(pk=run_id).status == RunStatus.CREATED


def test_update_run_requires_an_input_object(engine_api, demo_templates):
    run_id = engine_api.post(
        "/v1/flows/coverage-check/runs", json={"inputData": COVERAGE_INPUT}
    ).json()["flowRunId"]
    response = engine_api.put(f"/v1/flow-runs/{run_id}", json={"notInput": 1})
    assert response.status_code == 400
    assert response.json()["param"] == "input"


def test_a_run_goes_to_pending_then_complete(engine_api, demo_templates, celery_worker):
    run_id = engine_api.post(
        "/v1/flows/coverage-check/runs", json={"inputData": COVERAGE_INPUT, "version": 1}
    ).json()["flowRunId"]

    pending = wait_for_status(engine_api, run_id, "PENDING")
    assert pending["stateId"] == "collect-member-id"

    bad = engine_api.put(f"/v1/flow-runs/{run_id}", json={"input": {"memberId": "x"}})
    assert bad.status_code == 400
    assert bad.json()["param"] == "memberId"
    missing = engine_api.put(f"/v1/flow-runs/{run_id}", json={"input": {}})
    assert missing.json()["param"] == "memberId"

    accepted = engine_api.put(f"/v1/flow-runs/{run_id}", json={"input": {"memberId": "00000000"}})
    assert accepted.status_code == 200
    assert accepted.json() == {"flowRunId": run_id, "status": "IN_PROGRESS"}
    again = engine_api.put(f"/v1/flow-runs/{run_id}", json={"input": {"memberId": "00000000"}})
    assert again.status_code in {409, 200}  # 200 only if the run already paused again

    done = wait_for_status(engine_api, run_id, "COMPLETE", "ERROR")
    assert done["status"] == "COMPLETE"
    assert done["output"]["enteredMemberId"] == "00000000"
    assert done["output"]["eligibilityFromEnteredId"]["active"] is True


def test_a_run_keeps_its_version_when_a_new_one_is_published(
    engine_api, demo_templates, celery_worker
):
    run_id = engine_api.post(
        "/v1/flows/coverage-check/runs", json={"inputData": COVERAGE_INPUT, "version": 1}
    ).json()["flowRunId"]
    wait_for_status(engine_api, run_id, "PENDING")
    v1_source = Run.objects.get(pk=run_id).version.source
    newest = services.version_publish(template_id="coverage-check", source=v1_source)
    assert newest.number == 3

    assert engine_api.get(f"/v1/flow-runs/{run_id}").json()["version"] == 1
    # v1's schema (memberId only) is the one Update Run checks, not v2's.
    accepted = engine_api.put(f"/v1/flow-runs/{run_id}", json={"input": {"memberId": "00000000"}})
    assert accepted.status_code == 200


def test_list_and_get_templates(engine_api, demo_templates):
    listing = engine_api.get("/v1/flows").json()["data"]
    by_id = {t["templateId"]: t for t in listing}
    assert set(by_id) == {"coverage-check", "prior-authorization", "billing-write-off"}
    assert by_id["coverage-check"]["version"] == 2

    v1 = engine_api.get("/v1/flows/coverage-check", params={"version": 1}).json()
    latest = engine_api.get("/v1/flows/coverage-check").json()
    assert v1["version"] == 1 and latest["version"] == 2
    v1_states = {s["stateId"]: s["input"] for s in v1["callbackStates"]}
    v2_states = {s["stateId"]: s["input"] for s in latest["callbackStates"]}
    assert v1_states["collect-member-id"] != v2_states["collect-member-id"]
    assert v1["document"]["startsAt"] == "discover"

    assert engine_api.get("/v1/flows/coverage-check", params={"version": 9}).status_code == 404
    assert engine_api.get("/v1/flows/nope").status_code == 404
    assert engine_api.get("/v1/flows/coverage-check", params={"version": "x"}).status_code == 400


def test_openapi_document_is_served(live_server):
    document = httpx.get(f"{live_server.url}/flows-api/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert "/v1/flow-runs/{flowRunId}" in document["paths"]
    assert document["paths"]["/v1/flows"]["get"]["x-flowdesk-extension"] is True


@pytest.mark.parametrize(
    "path", ["/oauth/token", "/v1/flows/coverage-check/runs"], ids=["token", "create-run"]
)
def test_a_nul_character_anywhere_in_a_body_is_a_400_not_a_database_error(
    engine_api, demo_templates, path
):
    body = {"client_id": "a\x00b", "client_secret": "x", "inputData": {"patient": {"a\x00": 1}}}
    response = engine_api.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["param"] == "body"
