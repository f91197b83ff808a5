"""The engine against its own OpenAPI document, fuzzed with schemathesis over real HTTP.

Each test loads the document from where clients find it (`/flows-api/openapi.json` on the live
server), generates requests for one operation with a real bearer token, and requires every
response to be no server error and to match the document: status code, content type, headers
and body schema. A schema-valid request may still be refused: `inputData` is checked against the
template's own `input` schema and `input` against the callback state's, which a document for
every template cannot spell out, so `positive_data_acceptance` is left out.

schemathesis' lazy `from_fixture` loader breaks on pytest 9 (it writes `Function._nodeid`), so the
operations are listed from the document beside the views and each test draws its cases with
`APIOperation.as_strategy()` under `hypothesis.given`.
"""

import httpx
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import positive_data_acceptance

from config.celery import app as celery_app
from flows_engine import services
from flows_engine.views import OPENAPI_PATH
from tests.conftest import api_session

pytestmark = pytest.mark.django_db(transaction=True)

OPERATIONS = [
    (path, method.upper())
    for path, item in yaml.safe_load(OPENAPI_PATH.read_text())["paths"].items()
    for method in item
    if method in {"get", "put", "post", "patch", "delete"}
]


@pytest.fixture
def engine_token(live_server, engine_clients, demo_templates) -> str:
    http = api_session(f"{live_server.url}/flows-api", "test-sandbox", "sandbox-secret")
    http.close()
    return http.headers["Authorization"]


@pytest.fixture
def served_schema(live_server):
    return schemathesis.openapi.from_url(f"{live_server.url}/flows-api/openapi.json")


@pytest.fixture
def known_ids(engine_clients, demo_templates) -> dict[str, list[str]]:
    """Ids that exist, so that generated requests also reach past the 404s: a Run waiting in
    PENDING, one COMPLETE and one in ERROR (advanced here, without a worker)."""
    patient = {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"}
    runs = []
    for last_name, birth in [
        ("Notfound", "1980-02-29"),
        ("Smith", "1980-02-29"),
        ("X", "2999-01-01"),
    ]:
        run = services.run_create(
            client=engine_clients["sandbox"],
            template_id="coverage-check",
            input_data={"patient": {**patient, "lastName": last_name, "dateOfBirth": birth}},
        )
        services.run_advance(run.pk)
        runs.append(str(run.pk))
    celery_app.control.purge()  # what the commits sent, with no worker to take it
    return {"templateId": ["coverage-check", "prior-authorization"], "flowRunId": runs}


def cases(operation, known: dict[str, list[str]] | None):
    """Cases with every parameter generated, or with path parameters drawn from `known`."""
    names = [p.name for p in operation.path_parameters] if known else []
    if not names:
        return operation.as_strategy()
    fixed = st.fixed_dictionaries({name: st.sampled_from(known[name]) for name in names})
    return fixed.flatmap(lambda values: operation.as_strategy(path_parameters=values))


# Every operation with generated ids, and those with ids in their path once more with known ones.
PARAMETERS = [(path, method, False) for path, method in OPERATIONS] + [
    (path, method, True) for path, method in OPERATIONS if "{" in path
]


@pytest.mark.parametrize(
    ("path", "method", "known"),
    PARAMETERS,
    ids=[f"{m} {p}{' known ids' if k else ''}" for p, m, k in PARAMETERS],
)
def test_every_operation_answers_as_documented(
    served_schema, engine_token, known_ids, path, method, known
):
    operation = served_schema[path][method]

    @given(case=cases(operation, known_ids if known else None))
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
    def answers_as_documented(case):
        case.call_and_validate(
            headers={"Authorization": engine_token}, excluded_checks=[positive_data_acceptance]
        )

    answers_as_documented()


def test_the_served_document_is_the_one_beside_the_views(live_server):
    served = httpx.get(f"{live_server.url}/flows-api/openapi.json").json()
    assert served["servers"] == [{"url": f"{live_server.url}/flows-api"}]
    del served["servers"]
    assert served == yaml.safe_load(OPENAPI_PATH.read_text())
    operations = {
        served["paths"][path][method.lower()]["operationId"] for path, method in OPERATIONS
    }
    assert operations == {
        "getToken",
        "listTemplates",
        "publishVersion",
        "getTemplate",
        "createRun",
        "getRun",
        "updateRun",
    }
