"""Hostile bodies at the engine's API: each a clean 4xx in Sohar's error shape, nothing stored.

And each API client's Runs are its own: another client's Run is a 404, as an unknown id is.
"""

import json
import uuid

import pytest

from flows_engine import services
from flows_engine.models import AccessToken, Run, RunStatus, Template
from tests.documents import WAIT_FIRST

DEEP_LIST = b"[" * 10_000 + b"]" * 10_000
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000
HUGE_INTEGER = b"9" * 5_000


def _within(key: str, raw: bytes) -> bytes:
    return b'{"' + key.encode() + b'": ' + raw + b"}"


def _input(raw: bytes, key: str) -> bytes:
    return _within(key, _within("x", raw))


# Each bad value, placed inside what would otherwise be a valid body.
BAD_VALUES = {
    "nested 10,000 deep (lists)": DEEP_LIST,
    "nested 10,000 deep (objects)": DEEP_OBJECT,
    "nested 40 deep": b"[" * 40 + b"]" * 40,
    "NaN": b"NaN",
    "Infinity": b"Infinity",
    "-Infinity": b"-Infinity",
    "an integer of 5,000 digits": HUGE_INTEGER,
    # PostgreSQL's jsonb refuses both: a 500 from the database if let through.
    "a NUL": b'"a\\u0000b"',
    "a lone surrogate": b'"a\\ud800b"',
}


@pytest.fixture
def wait_first(db):
    return services.version_publish(template_id="wait-first", source=WAIT_FIRST)


@pytest.fixture
def bearer(engine_clients) -> dict[str, str]:
    token, _row = AccessToken.issue(engine_clients["sandbox"], 60)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def pending_run(engine_clients, wait_first) -> Run:
    run = services.run_create(
        client=engine_clients["sandbox"], template_id="wait-first", input_data={}
    )
    services.run_advance(run.pk)
    run.refresh_from_db()
    assert run.status == RunStatus.PENDING
    return run


def _refused(response, status: int = 400) -> dict:
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert body["error"] == "invalid_request_error"
    assert body["param"] == "body"
    return body


@pytest.mark.django_db
@pytest.mark.parametrize("raw", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_token_refuses_hostile_json_unauthenticated(client, engine_clients, raw):
    for body in (raw, _within("client_id", raw)):
        response = client.post("/flows-api/oauth/token", body, content_type="application/json")
        _refused(response)
    assert not AccessToken.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("raw", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_create_run_refuses_hostile_json(client, bearer, wait_first, raw):
    url = "/flows-api/v1/flows/wait-first/runs"
    for body in (raw, _input(raw, "inputData")):
        response = client.post(url, body, content_type="application/json", **bearer)
        _refused(response)
    assert not Run.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("raw", BAD_VALUES.values(), ids=BAD_VALUES.keys())
def test_update_run_refuses_hostile_json(client, bearer, pending_run, raw):
    url = f"/flows-api/v1/flow-runs/{pending_run.pk}"
    for body in (raw, _input(raw, "input")):
        response = client.put(url, body, content_type="application/json", **bearer)
        _refused(response)
    pending_run.refresh_from_db()
    assert pending_run.status == RunStatus.PENDING
    assert pending_run.state_outputs == {}


@pytest.mark.django_db
def test_nesting_up_to_the_limit_is_accepted(client, bearer, wait_first):
    from flows_engine.views import JSON_DEPTH_MAX

    # The body and inputData are two levels of objects; the lists under `x` fill the rest.
    lists = JSON_DEPTH_MAX - 2
    body = _input(b"[" * lists + b"]" * lists, "inputData")
    url = "/flows-api/v1/flows/wait-first/runs"
    response = client.post(url, body, content_type="application/json", **bearer)
    assert response.status_code == 201
    deeper = _input(b"[" * (lists + 1) + b"]" * (lists + 1), "inputData")
    response = client.post(url, deeper, content_type="application/json", **bearer)
    assert "nested more than 32 levels" in _refused(response)["message"]
    assert Run.objects.count() == 1


@pytest.mark.django_db
def test_a_body_over_the_upload_limit_is_413_in_sohars_shape(client, bearer, wait_first, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = json.dumps({"inputData": {"note": "x" * 2_000}})
    url = "/flows-api/v1/flows/wait-first/runs"
    response = client.post(url, body, content_type="application/json", **bearer)
    assert "larger than 1,000 bytes" in _refused(response, 413)["message"]
    assert not Run.objects.exists()


def test_the_upload_limits_are_set(settings):
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE == 1024 * 1024
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS == 1_000


# --- Each client's Runs are its own ------------------------------------------------------------


@pytest.fixture
def other_sandbox_client(engine_clients):
    """A second client in the same environment as ``engine_clients["sandbox"]``."""
    return services.client_ensure(
        client_id="other-sandbox", secret="other-secret", environment="sandbox", name="Other"
    )


@pytest.mark.django_db
def test_another_clients_run_is_a_404_on_get_and_update(
    client, bearer, pending_run, other_sandbox_client
):
    url = f"/flows-api/v1/flow-runs/{pending_run.pk}"
    assert client.get(url, **bearer).status_code == 200

    token, _row = AccessToken.issue(other_sandbox_client, 60)
    other = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    response = client.get(url, **other)
    assert response.status_code == 404
    unknown = client.get(f"/flows-api/v1/flow-runs/{uuid.uuid4()}", **other)
    assert response.json() == unknown.json()  # nothing tells "someone else's" from "no such"

    body = json.dumps({"input": {"ok": True}})
    response = client.put(url, body, content_type="application/json", **other)
    assert response.status_code == 404
    pending_run.refresh_from_db()
    assert pending_run.status == RunStatus.PENDING
    assert pending_run.state_outputs == {}

    # Its owner still can.
    response = client.put(url, body, content_type="application/json", **bearer)
    assert response.status_code == 200


@pytest.mark.django_db
def test_publishing_a_billion_laughs_is_a_400_that_names_the_problem(client, bearer):
    from tests.flowspec.test_bad_input import laughs

    body = json.dumps({"source": laughs(9)})
    url = "/flows-api/v1/flows/laughs/versions"
    response = client.post(url, body, content_type="application/json", **bearer)
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert error["location"] == "document"
    assert "YAML aliases" in error["message"]
    assert not Template.objects.exists()
