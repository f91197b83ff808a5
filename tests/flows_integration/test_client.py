"""The Flows client against our engine over real HTTP (pytest-django's live server)."""

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from flows_engine.models import AccessToken
from flows_integration import client
from tests.flows_integration.faulty_server import CountingTransport
from tests.waiting import Clock

pytestmark = pytest.mark.django_db(transaction=True)

PATIENT = {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"}
COVERAGE_INPUT = {"patient": PATIENT, "payerId": "60054"}
TOKEN_ROUTE = "POST /flows-api/oauth/token"


@pytest.fixture
def transport() -> Iterator[CountingTransport]:
    counting = CountingTransport()
    yield counting
    counting.close()


@pytest.fixture
def flows(live_server, engine_clients, transport) -> Iterator[client.FlowsClient]:
    with client.FlowsClient(
        f"{live_server.url}/flows-api",
        "test-sandbox",
        "sandbox-secret",
        connect_timeout=2.0,
        read_timeout=10.0,
        max_retries=1,
        backoff_base=0.05,
        transport=transport,
    ) as flows_client:
        yield flows_client


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The client's clock (token expiry, back-off), moved by the test alone."""
    fake = Clock()
    monkeypatch.setattr(client, "time", fake)
    return fake


def wait_for(flows: client.FlowsClient, run_id: str, *statuses: str) -> client.RunInfo:
    deadline = time.monotonic() + 20
    while True:
        info = flows.get_run(run_id)
        if info.status in statuses:
            return info
        assert time.monotonic() < deadline, f"run stayed {info.status}, wanted {statuses}"
        time.sleep(0.05)


def test_create_run_starts_the_latest_version(flows, demo_templates):
    created = flows.create_run("coverage-check", COVERAGE_INPUT)
    info = flows.get_run(created.flow_run_id)

    assert isinstance(created, client.CreatedRun)
    assert isinstance(info, client.RunInfo)
    assert info.flow_run_id == created.flow_run_id
    assert info.status == "CREATED"
    assert info.output == {} and info.errors == ()
    assert not info.is_terminal
    # Our extensions, read because the engine sends them.
    assert (info.template_id, info.version, info.state_id) == ("coverage-check", 2, None)
    assert isinstance(info.created_at, datetime) and info.created_at.tzinfo is not None
    assert info.updated_at is not None and info.updated_at >= info.created_at


def test_create_run_pins_a_version(flows, demo_templates):
    created = flows.create_run("coverage-check", COVERAGE_INPUT, version=1)
    assert flows.get_run(created.flow_run_id).version == 1


@pytest.mark.parametrize(
    ("template_id", "input_data", "version", "status", "param"),
    [
        ("coverage-check", {**COVERAGE_INPUT, "payerId": "11111"}, None, 400, "payerId"),
        ("coverage-check", {"payerId": "60054"}, None, 400, "patient"),
        ("coverage-check", COVERAGE_INPUT, 99, 404, "version"),
        ("no-such-template", {}, None, 404, "templateId"),
    ],
)
def test_create_run_refusals_are_flows_errors_naming_the_param(
    flows, demo_templates, template_id, input_data, version, status, param
):
    with pytest.raises(client.FlowsError) as caught:
        flows.create_run(template_id, input_data, version=version)
    error = caught.value
    assert type(error) is client.FlowsError
    assert (error.status, error.param) == (status, param)
    assert error.error in {"invalid_request_error", "not_found"}
    assert error.message  # the engine's own words, for staff
    assert not error.retryable and not error.outcome_unknown


def test_update_run_of_a_run_that_is_not_pending_is_409(flows, demo_templates):
    created = flows.create_run("coverage-check", COVERAGE_INPUT)
    with pytest.raises(client.FlowsError) as caught:
        flows.update_run(created.flow_run_id, {"memberId": "00000000"})
    assert (caught.value.status, caught.value.param) == (409, "status")
    assert caught.value.error == "invalid_request_error"
    assert not caught.value.retryable and not caught.value.outcome_unknown
    assert flows.get_run(created.flow_run_id).status == "CREATED"


@pytest.mark.parametrize("run_id", ["4b0a3c9e-0000-4000-8000-000000000000", "not-a-uuid"])
def test_an_unknown_run_is_404(flows, run_id):
    with pytest.raises(client.FlowsError) as get:
        flows.get_run(run_id)
    with pytest.raises(client.FlowsError) as update:
        flows.update_run(run_id, {"memberId": "00000000"})
    for caught in (get, update):
        assert type(caught.value) is client.FlowsError
        assert (caught.value.status, caught.value.param) == (404, "flowRunId")


def test_a_run_pauses_takes_input_and_completes(flows, demo_templates, celery_worker):
    run_id = flows.create_run("coverage-check", COVERAGE_INPUT, version=1).flow_run_id

    pending = wait_for(flows, run_id, "PENDING")
    assert pending.state_id == "collect-member-id"

    with pytest.raises(client.FlowsError) as caught:
        flows.update_run(run_id, {"memberId": "x"})
    assert (caught.value.status, caught.value.param) == (400, "memberId")

    updated = flows.update_run(run_id, {"memberId": "00000000"})
    assert updated == client.UpdatedRun(flow_run_id=run_id, status="IN_PROGRESS")

    done = wait_for(flows, run_id, "COMPLETE", "ERROR")
    assert done.status == "COMPLETE" and done.is_terminal
    assert done.output["enteredMemberId"] == "00000000"
    assert done.output["eligibilityFromEnteredId"]["active"] is True
    assert done.errors == ()


def test_list_and_get_templates(flows, demo_templates):
    summaries = {summary.template_id: summary for summary in flows.list_templates()}
    assert set(summaries) == {"coverage-check", "prior-authorization", "billing-write-off"}
    coverage = summaries["coverage-check"]
    assert isinstance(coverage, client.TemplateSummary)
    assert coverage.version == 2 and coverage.name

    latest = flows.get_template("coverage-check")
    first = flows.get_template("coverage-check", version=1)
    assert isinstance(latest, client.TemplateDocument)
    assert (latest.template_id, latest.version, first.version) == ("coverage-check", 2, 1)
    assert latest.name == coverage.name
    assert first.document["startsAt"] == "discover"
    assert "collect-member-id" in first.document["states"]


@pytest.mark.parametrize(
    ("template_id", "version", "param"),
    [("coverage-check", 9, "version"), ("nope", None, "templateId")],
)
def test_an_unknown_template_is_404_not_unsupported(
    flows, demo_templates, template_id, version, param
):
    with pytest.raises(client.FlowsError) as caught:
        flows.get_template(template_id, version=version)
    assert type(caught.value) is client.FlowsError
    assert (caught.value.status, caught.value.param) == (404, param)


def test_the_token_is_fetched_once_and_reused(flows, demo_templates, transport):
    run_id = flows.create_run("coverage-check", COVERAGE_INPUT).flow_run_id
    flows.get_run(run_id)
    flows.list_templates()
    flows.get_template("coverage-check")
    assert transport.count(TOKEN_ROUTE) == 1
    assert 403 not in transport.statuses


def test_bad_credentials_are_a_permanent_403(live_server, engine_clients, transport):
    with (
        client.FlowsClient(
            f"{live_server.url}/flows-api", "test-sandbox", "wrong", transport=transport
        ) as flows,
        pytest.raises(client.FlowsError) as caught,
    ):
        flows.list_templates()
    assert (caught.value.status, caught.value.error) == (403, "unauthorized")
    assert not caught.value.retryable
    assert transport.attempts == [TOKEN_ROUTE]


def test_a_token_about_to_expire_is_renewed_before_use(
    settings, flows, demo_templates, transport, clock
):
    settings.FLOWS_ENGINE_TOKEN_TTL = 3600  # the client renews a minute before it expires
    flows.list_templates()
    clock.advance(3600 - 60 - 1)
    flows.list_templates()
    assert transport.count(TOKEN_ROUTE) == 1
    clock.advance(2)
    flows.list_templates()
    assert transport.count(TOKEN_ROUTE) == 2
    assert 403 not in transport.statuses


def test_a_token_the_engine_refuses_is_renewed_once(flows, demo_templates, transport, clock):
    flows.list_templates()
    # Expired on the engine's clock, but not on the client's.
    AccessToken.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert len(flows.list_templates()) == 3
    assert transport.count(TOKEN_ROUTE) == 2
    assert transport.statuses.count(403) == 1


def test_the_module_functions_use_settings(settings, live_server, engine_clients, demo_templates):
    settings.FLOWS_API_URL = f"{live_server.url}/flows-api"
    settings.FLOWS_CLIENT_ID = "test-sandbox"
    settings.FLOWS_CLIENT_SECRET = "sandbox-secret"
    client.reset_client()
    try:
        run_id = client.create_run("coverage-check", COVERAGE_INPUT, version=1).flow_run_id
        assert client.get_run(run_id).version == 1
        with pytest.raises(client.FlowsError):
            client.update_run(run_id, {"memberId": "00000000"})
        assert len(client.list_templates()) == 3
        assert client.get_template("coverage-check", version=1).version == 1
        assert client.get_client() is client.get_client()
    finally:
        client.reset_client()
