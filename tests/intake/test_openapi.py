"""The intake API's OpenAPI document: served, a valid OpenAPI 3.1 document, and true to what the
API answers."""

import pytest
import schemathesis
import yaml
from jsonschema import Draft202012Validator

from intake.api import OPENAPI_PATH
from tests.intake.conftest import COVERAGE_INPUT


def component(document: dict, name: str) -> Draft202012Validator:
    schema = {**document["components"]["schemas"][name], "$defs": {}}
    return Draft202012Validator(schema)


@pytest.mark.django_db
def test_the_document_is_served_and_valid(client):
    served = client.get("/api/v1/openapi.json")
    assert served.status_code == 200
    document = served.json()
    committed = yaml.safe_load(OPENAPI_PATH.read_text())
    assert document["paths"] == committed["paths"]
    assert document["openapi"].startswith("3.1")
    # schemathesis refuses a document that is not valid OpenAPI.
    schema = schemathesis.openapi.from_dict(document)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert [(op.method.upper(), op.path) for op in operations] == [("POST", "/api/v1/runs")]


@pytest.mark.django_db(transaction=True)
def test_answers_match_the_document(client, live_templates, api_token):
    document = yaml.safe_load(OPENAPI_PATH.read_text())
    headers = {"Authorization": f"Bearer {api_token}"}
    body = {"templateId": "coverage-check", "inputData": COVERAGE_INPUT, "externalId": "doc-1"}
    for expected in (201, 200):
        answer = client.post("/api/v1/runs", body, content_type="application/json", headers=headers)
        assert answer.status_code == expected
        component(document, "Run").validate(answer.json())
    bad = client.post(
        "/api/v1/runs",
        {"templateId": "coverage-check", "inputData": {}},
        content_type="application/json",
        headers=headers,
    )
    component(document, "Error").validate(bad.json())
    unauthorised = client.post("/api/v1/runs", body, content_type="application/json")
    component(document, "Error").validate(unauthorised.json())
    responses = document["paths"]["/api/v1/runs"]["post"]["responses"]
    assert {"200", "201", "400", "401", "409", "502", "503"} <= set(responses)
