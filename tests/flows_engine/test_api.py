"""The engine's HTTP API, over real HTTP against pytest-django's live server."""

import json
import time
import uuid
from datetime import timedelta
from decimal import Decimal

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


def test_wrong_secrets_lock_the_client_id_out_of_the_token_call(client, engine_clients, settings):
    url, wrong = "/flows-api/oauth/token", {"client_id": "test-sandbox", "client_secret": "x"}
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert client.post(url, wrong, content_type="application/json").status_code == 403
    # The failure that reaches the limit already answers as the lock does.
    assert client.post(url, wrong, content_type="application/json").status_code == 429
    right = {"client_id": "test-sandbox", "client_secret": "sandbox-secret"}

    response = client.post(url, right, content_type="application/json")

    assert response.status_code == 429
    assert response.json()["error"] == "rate_limited"
    assert int(response["Retry-After"]) > 0
    # Another client, from another address, is not held up by it.
    other = {"client_id": "test-production", "client_secret": "production-secret"}
    response = client.post(url, other, content_type="application/json", REMOTE_ADDR="10.2.2.2")
    assert response.status_code == 200


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
    # v1's document again, naming the number it gets (a document names its own version).
    v3_source = v1_source.replace("\n  version: 1\n", "\n  version: 3\n")
    newest = services.version_publish(template_id="coverage-check", source=v3_source)
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


# --- Exact numbers: amounts in cents are checked in decimal and kept as sent -----------------

CENTS_TEMPLATE = """
metadata: {name: Cents}
input:
  type: object
  required: [balance]
  properties:
    balance: {type: number, multipleOf: 0.01}
startsAt: adjust
states:
  adjust:
    type: callback
    title: Adjust the balance
    input:
      type: object
      required: [amounts]
      properties:
        amounts: {type: array, items: {type: number, multipleOf: 0.01, minimum: 0}}
    end: true
"""
# The amounts binary floating point gets wrong (1234.57 / 0.01 = 123456.99999999999), the
# edges, and every 97th cent up to 2,000.00.
KNOWN_BAD = ["1234.57", "19.99", "0.07", "0.29", "4.35", "1.10", "1999.99", "8.20"]
SAMPLE = [
    *KNOWN_BAD,
    "0.00",
    "2000.00",
    *(f"{c // 100}.{c % 100:02d}" for c in range(0, 200_001, 97)),
]


@pytest.fixture
def cents_run(engine_api):
    """A Run of the cents template, created with a balance of 1234.57 and paused at adjust."""
    services.version_publish(template_id="cents", source=CENTS_TEMPLATE)
    created = engine_api.post("/v1/flows/cents/runs", json={"inputData": {"balance": 1234.57}})
    assert created.status_code == 201, created.text
    run_id = created.json()["flowRunId"]
    services.run_advance(run_id)
    assert engine_api.get(f"/v1/flow-runs/{run_id}").json()["status"] == "PENDING"
    return run_id


def test_amounts_in_cents_are_accepted_and_kept_exactly_as_sent(engine_api, cents_run):
    # Written by hand, so that the numbers are sent exactly as typed (`1.10`, `0.00`).
    body = '{"input": {"amounts": [' + ", ".join(SAMPLE) + "]}}"
    response = engine_api.put(
        f"/v1/flow-runs/{cents_run}",
        content=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200, response.text

    # Get Run gives back the very numbers that were sent, as JSON numbers, digit for digit.
    run = json.loads(engine_api.get(f"/v1/flow-runs/{cents_run}").text, parse_float=Decimal)
    assert run["inputData"] == {"balance": Decimal("1234.57")}
    assert run["states"]["adjust"]["amounts"] == [Decimal(text) for text in SAMPLE]


def test_an_amount_that_is_not_in_cents_is_refused_with_its_param(engine_api, cents_run):
    response = engine_api.put(
        f"/v1/flow-runs/{cents_run}", json={"input": {"amounts": [19.99, 1234.575]}}
    )
    assert response.status_code == 400
    assert response.json()["param"] == "amounts[1]"
    assert response.json()["message"] == "1234.575 is not a multiple of 0.01"


@pytest.mark.parametrize(
    "number",
    ["NaN", "Infinity", "-Infinity", "1e999", "1234.5700000000000000001", "9" * 5000],
)
def test_a_number_that_cannot_be_kept_exactly_is_a_400_not_a_rounded_copy(
    engine_api, demo_templates, number
):
    # A valid input but for one extra number (the schema allows more properties).
    body = json.dumps({"inputData": {**COVERAGE_INPUT, "note": "N"}}).replace('"N"', number)
    response = engine_api.post(
        "/v1/flows/coverage-check/runs",
        content=body.encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["param"] == "body"
    assert not Run.objects.exists()
