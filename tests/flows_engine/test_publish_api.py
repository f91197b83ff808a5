"""Publishing a version over the API (ours), over real HTTP against pytest-django's live server.

The call validates exactly as the engine's admin publish page does: both go through
``services.version_publish``.
"""

import httpx
import pytest

from flows_engine.models import Template, TemplateVersion
from tests.documents import SIGN_OFF

pytestmark = pytest.mark.django_db(transaction=True)

NAMES_V2 = SIGN_OFF.replace("metadata: {name: Sign-off}", "metadata: {name: Sign-off, version: 2}")


def publish(api: httpx.Client, source: object, template_id: str = "sign-off") -> httpx.Response:
    return api.post(f"/v1/flows/{template_id}/versions", json={"source": source})


def test_publishing_answers_the_new_number_and_document(engine_api):
    first = publish(engine_api, SIGN_OFF)
    assert first.status_code == 201
    body = first.json()
    assert (body["templateId"], body["name"], body["version"]) == ("sign-off", "Sign-off", 1)
    assert body["document"]["states"]["sign-off"]["type"] == "callback"
    assert body["callbackStates"][0]["stateId"] == "sign-off"

    second = publish(engine_api, NAMES_V2)
    assert second.status_code == 201 and second.json()["version"] == 2
    stored = TemplateVersion.objects.get(template__template_id="sign-off", number=2)
    assert stored.source == NAMES_V2  # the text as sent, comments and all

    # What was published is what Get Template and Create Run use from now on.
    assert engine_api.get("/v1/flows/sign-off").json()["version"] == 2
    run = engine_api.post("/v1/flows/sign-off/runs", json={"inputData": {}})
    assert run.status_code == 201


def test_a_document_naming_another_number_is_refused_and_says_which(engine_api):
    claims_v2 = NAMES_V2
    response = publish(engine_api, claims_v2)
    assert response.status_code == 400
    body = response.json()
    assert (body["error"], body["param"]) == ("invalid_request_error", "source")
    assert body["errors"] == [
        {
            "location": "metadata.version",
            "message": "The document says version 2, but it would be published as sign-off "
            "v1. Change metadata.version to 1, or remove it.",
        }
    ]
    assert not Template.objects.exists()
    # So a document that names its version cannot be published twice by a repeated call.
    assert publish(engine_api, claims_v2.replace("version: 2", "version: 1")).status_code == 201
    assert publish(engine_api, claims_v2.replace("version: 2", "version: 1")).status_code == 400
    assert TemplateVersion.objects.count() == 1


def test_every_problem_is_listed_with_where_it_is(engine_api):
    broken = SIGN_OFF.replace("end: true", "next: nowhere").replace(
        "startsAt: sign-off", "startsAt: x"
    )
    body = publish(engine_api, broken).json()
    locations = [error["location"] for error in body["errors"]]
    assert "startsAt" in locations and "states.sign-off.next" in locations
    assert "states.sign-off.next: " in body["message"]

    unreadable = publish(engine_api, "metadata: {name: Sign-off\nstates: [").json()
    assert unreadable["param"] == "source"
    [error] = unreadable["errors"]
    assert error["location"] == "document" and error["message"].startswith("line ")
    assert not TemplateVersion.objects.exists()


@pytest.mark.parametrize("source", [None, "", "   ", 7, ["a"]])
def test_a_missing_source_is_refused(engine_api, source):
    response = publish(engine_api, source)
    assert response.status_code == 400
    assert response.json()["param"] == "source"


def test_a_template_id_longer_than_stored_is_refused(engine_api):
    response = publish(engine_api, SIGN_OFF, template_id="x" * 101)
    assert response.status_code == 400
    assert response.json()["param"] == "templateId"


def test_deep_nesting_is_bad_input_not_a_server_error(engine_api):
    response = publish(engine_api, "[" * 50_000)
    assert response.status_code == 400
    assert response.json()["param"] == "source"


def test_publishing_needs_a_token_and_post(engine_api, live_server):
    anonymous = httpx.post(
        f"{live_server.url}/flows-api/v1/flows/sign-off/versions", json={"source": SIGN_OFF}
    )
    assert anonymous.status_code == 403
    assert engine_api.get("/v1/flows/sign-off/versions").status_code == 405
    assert not TemplateVersion.objects.exists()
