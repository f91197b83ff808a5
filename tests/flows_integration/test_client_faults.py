"""The Flows client against a deliberately faulty local server: timeouts, resets, 5xx, 429,
malformed answers, expired tokens, a missing extension. No database; small timeouts."""

import logging
import pickle
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
import time_machine

from flows_integration import client
from tests.flows_integration.faulty_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    CountingTransport,
    FaultyServer,
    closed_port,
    drop,
    hang,
    raw,
    reset,
    respond,
    slow,
)
from tests.waiting import Clock

RUN_ID = "7d7f7c56-6a43-4b56-9a1e-6f6f0b0c2d11"
RUN_ROUTE = f"GET /v1/flow-runs/{RUN_ID}"
PUT_ROUTE = f"PUT /v1/flow-runs/{RUN_ID}"
CREATE_ROUTE = "POST /v1/flows/coverage-check/runs"
PHI = {"patient": {"firstName": "Maria", "lastName": "Sensitive-Name"}, "payerId": "60054"}

# Short enough that a hung server costs a test little, long enough that a loaded machine's
# ordinary answer is never taken for a timeout (that would add an attempt to every count).
FAST = {"connect_timeout": 1.0, "read_timeout": 1.0, "backoff_base": 0.01, "backoff_cap": 0.5}


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    with FaultyServer() as running:
        yield running


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """The client's clock: a token expires and a back-off ends only when the test says so, and
    every wait the client asked for is in ``clock.slept``."""
    fake = Clock()
    monkeypatch.setattr(client, "time", fake)
    return fake


def make_client(url: str, **options) -> client.FlowsClient:
    return client.FlowsClient(url, CLIENT_ID, CLIENT_SECRET, **{**FAST, **options})


@pytest.fixture
def flows(server: FaultyServer) -> Iterator[client.FlowsClient]:
    with make_client(server.url, max_retries=2) as flows_client:
        yield flows_client


# --- Happy path against a Sohar-like server ------------------------------------------------


def test_a_sohar_like_server_works_without_our_extensions(server, flows):
    created = flows.create_run("coverage-check", PHI)
    info = flows.get_run(RUN_ID)
    updated = flows.update_run(RUN_ID, {"memberId": "00000000"})

    assert isinstance(created, client.CreatedRun) and created.flow_run_id
    assert info == client.RunInfo(flow_run_id=RUN_ID, status="PENDING", output={})
    assert (info.state_id, info.template_id, info.version, info.created_at) == (None,) * 4
    assert updated == client.UpdatedRun(flow_run_id=RUN_ID, status="IN_PROGRESS")

    token_request = server.requests_to("POST /oauth/token")[0]
    assert token_request.json == {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
    assert server.requests_to(CREATE_ROUTE)[0].json == {"inputData": PHI}
    assert server.requests_to(PUT_ROUTE)[0].json == {"input": {"memberId": "00000000"}}
    for request in server.requests[1:]:
        assert request.headers["authorization"] == f"Bearer {server.tokens_issued[0]}"
    assert server.count("POST /oauth/token") == 1  # cached across the three calls


def test_create_run_sends_the_version_as_a_query_parameter(server, flows):
    flows.create_run("coverage-check", PHI, version=2)
    assert server.requests_to(CREATE_ROUTE)[0].path.endswith("/runs?version=2")


def test_ids_cannot_leave_their_path_segment(server, flows):
    flows.get_run("../../oauth/token")
    assert server.requests[-1].path == "/v1/flow-runs/..%2F..%2Foauth%2Ftoken"


def test_unknown_fields_are_tolerated_and_extensions_read_when_present(server, flows):
    server.run_fields = {
        "status": "ERROR",
        "output": {},
        "errors": [
            {"status": 400, "param": "payerId", "error": "invalid_request_error", "state": "v"},
            {"error": "internal", "somethingNew": True},
        ],
        "somethingNew": {"nested": [1, 2]},
        "stateId": "collect-member-id",
        "templateId": "coverage-check",
        "version": 2,
        "createdAt": "2026-01-02T03:04:05.123456+00:00",
        "updatedAt": "2026-01-02T03:04:06",  # no offset: taken as UTC
    }
    info = flows.get_run(RUN_ID)
    assert info.errors == (
        client.RunError(status=400, param="payerId", error="invalid_request_error", state="v"),
        client.RunError(status=None, param=None, error="internal", state=None),
    )
    assert (info.state_id, info.template_id, info.version) == (
        "collect-member-id",
        "coverage-check",
        2,
    )
    assert info.created_at == datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
    assert info.updated_at == datetime(2026, 1, 2, 3, 4, 6, tzinfo=UTC)
    assert info.is_terminal


def test_extension_fields_of_an_unknown_shape_are_ignored(server, flows):
    server.run_fields = {
        "status": "COMPLETE",
        "output": {"ok": True},
        "stateId": 7,
        "version": "2.0",
        "createdAt": "yesterday",
    }
    info = flows.get_run(RUN_ID)
    assert info.output == {"ok": True}
    assert (info.state_id, info.version, info.created_at) == (None, None, None)


# --- Timeouts --------------------------------------------------------------------------------


def test_get_is_retried_after_a_read_timeout(server, flows, caplog):
    caplog.set_level(logging.WARNING, logger=client.__name__)
    server.plan(RUN_ROUTE, hang(30))  # answers nothing until the server stops
    assert flows.get_run(RUN_ID).status == "PENDING"
    assert server.count(RUN_ROUTE) == 2
    # The first attempt ended by the client's read timeout, not by the server giving up.
    assert "failed (ReadTimeout)" in caplog.text


def test_get_gives_up_after_max_retries_with_a_transient_error(server, flows):
    server.always(RUN_ROUTE, hang(30))
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.get_run(RUN_ID)
    assert server.count(RUN_ROUTE) == 3  # one attempt and max_retries=2 repeats
    assert caught.value.retryable
    assert not caught.value.outcome_unknown  # a GET changes nothing
    assert caught.value.status is None


@pytest.mark.parametrize(
    ("route", "call"),
    [
        (CREATE_ROUTE, lambda flows: flows.create_run("coverage-check", PHI)),
        (PUT_ROUTE, lambda flows: flows.update_run(RUN_ID, {"memberId": "00000000"})),
    ],
    ids=["create", "update"],
)
@pytest.mark.parametrize("fault", [hang(30), reset(), drop()], ids=["timeout", "reset", "drop"])
def test_create_and_update_are_never_repeated_once_sent(server, flows, route, call, fault):
    server.always(route, fault)
    with pytest.raises(client.TransientFlowsError) as caught:
        call(flows)
    assert server.count(route) == 1
    assert caught.value.outcome_unknown
    assert caught.value.retryable


def test_a_token_call_that_times_out_is_retried(server, flows):
    server.plan("POST /oauth/token", hang(30))
    flows.get_run(RUN_ID)
    assert server.count("POST /oauth/token") == 2


# --- Connection errors -----------------------------------------------------------------------


@pytest.mark.parametrize("fault", [reset(), drop()], ids=["reset", "drop"])
def test_get_is_retried_after_a_lost_connection(server, flows, fault):
    server.plan(RUN_ROUTE, fault, fault)
    assert flows.get_run(RUN_ID).status == "PENDING"
    assert server.count(RUN_ROUTE) == 3


def test_nothing_listening_is_transient_and_changed_nothing():
    transport = CountingTransport()
    flows = make_client(f"http://127.0.0.1:{closed_port()}", max_retries=2, transport=transport)
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.get_run(RUN_ID)
    assert transport.count("POST /oauth/token") == 3
    assert not caught.value.outcome_unknown
    assert "was not sent" in str(caught.value)


class RestartAfterRefusals(CountingTransport):
    """The network to a stopped server, which is started again once two PUTs were refused:
    the client meets the outage and the recovery whatever the machine's speed."""

    def __init__(self, port: int, tokens: list[str]) -> None:
        super().__init__()
        self.port, self.tokens = port, tokens
        self.refusals = 0
        self.restarted: FaultyServer | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return super().handle_request(request)
        except httpx.ConnectError:
            self.refusals += 1
            if self.refusals == 2:
                self.restarted = FaultyServer(port=self.port)
                self.restarted.tokens_issued = list(self.tokens)
                self.restarted.start()
            raise


def test_update_run_is_repeated_while_the_connection_is_refused(server, clock):
    """Nothing was sent while the port refused connections, so repeating cannot apply twice."""
    transport = RestartAfterRefusals(server.port, server.tokens_issued)
    flows = make_client(server.url, max_retries=5, transport=transport)
    flows.get_run(RUN_ID)  # holds a token now
    transport.tokens = list(server.tokens_issued)
    clock.slept.clear()  # only the update's back-offs count below
    server.stop()
    try:
        updated = flows.update_run(RUN_ID, {"memberId": "00000000"})
        assert updated.status == "IN_PROGRESS"
        assert transport.count(PUT_ROUTE) == 3  # refused twice, then delivered
        assert transport.restarted is not None
        assert transport.restarted.count(PUT_ROUTE) == 1  # applied exactly once
        assert len(clock.slept) == 2  # a back-off after each refusal
    finally:
        if transport.restarted is not None:
            transport.restarted.stop()
        flows.close()


def test_update_run_refused_every_time_raises_with_the_outcome_known(server):
    transport = CountingTransport()
    flows = make_client(server.url, max_retries=2, transport=transport)
    flows.get_run(RUN_ID)
    server.stop()
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.update_run(RUN_ID, {"memberId": "00000000"})
    assert transport.count("PUT ") == 3
    assert not caught.value.outcome_unknown  # never sent: safe to send again


# --- 5xx ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [502, 503, 504])
def test_get_is_retried_on_gateway_and_unavailable_answers(server, flows, status):
    server.plan(RUN_ROUTE, respond(status), respond(status))
    assert flows.get_run(RUN_ID).status == "PENDING"
    assert server.count(RUN_ROUTE) == 3


def test_get_answered_503_every_time_ends_transient_with_the_status(server, flows):
    server.always(RUN_ROUTE, respond(503, {"error": "unavailable"}))
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.get_run(RUN_ID)
    assert server.count(RUN_ROUTE) == 3
    assert (caught.value.status, caught.value.error) == (503, "unavailable")
    assert not caught.value.outcome_unknown


def test_a_500_is_transient_but_not_repeated(server, flows):
    server.plan(RUN_ROUTE, raw(500, b"<html>Internal Server Error</html>", "text/html"))
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.get_run(RUN_ID)
    assert server.count(RUN_ROUTE) == 1
    assert caught.value.status == 500 and caught.value.error is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_to_update_run_is_not_repeated_and_may_have_applied(server, flows, status):
    server.always(PUT_ROUTE, respond(status))
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.update_run(RUN_ID, {"memberId": "00000000"})
    assert server.count(PUT_ROUTE) == 1
    assert caught.value.outcome_unknown and caught.value.status == status


def test_a_5xx_to_create_run_is_not_repeated_and_may_have_applied(server, flows):
    server.always(CREATE_ROUTE, respond(502))
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.create_run("coverage-check", PHI)
    assert server.count(CREATE_ROUTE) == 1
    assert caught.value.outcome_unknown


# --- 429 and Retry-After ---------------------------------------------------------------------


def test_retry_after_in_seconds_is_honoured(server, clock):
    flows = make_client(server.url, max_retries=2, backoff_cap=2.0)
    server.plan(RUN_ROUTE, respond(429, {"error": "rate_limited"}, {"Retry-After": "1"}))
    assert flows.get_run(RUN_ID).status == "PENDING"
    assert clock.slept == [1.0]  # the server's wait, not the back-off's
    assert server.count(RUN_ROUTE) == 2


def test_retry_after_as_an_http_date_is_honoured(server, clock):
    flows = make_client(server.url, max_retries=2, backoff_cap=3.0)
    now = datetime(2026, 3, 2, 9, 30, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=2), usegmt=True)
    server.plan(RUN_ROUTE, respond(503, None, {"Retry-After": header}))
    with time_machine.travel(now, tick=False):
        flows.get_run(RUN_ID)
    assert clock.slept == [2.0]


def test_a_retry_after_beyond_the_cap_is_left_to_the_caller(server, flows, clock):
    server.always(RUN_ROUTE, respond(429, {"error": "rate_limited"}, {"Retry-After": "120"}))
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.get_run(RUN_ID)
    assert clock.slept == []  # no two-minute nap inside a call
    assert server.count(RUN_ROUTE) == 1
    assert caught.value.status == 429 and caught.value.retry_after == 120


def test_a_429_to_update_run_is_not_repeated_but_known_not_applied(server, flows):
    server.always(PUT_ROUTE, respond(429, None, {"Retry-After": "0"}))
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.update_run(RUN_ID, {"memberId": "00000000"})
    assert server.count(PUT_ROUTE) == 1
    assert not caught.value.outcome_unknown and caught.value.retry_after == 0


# --- Malformed answers -----------------------------------------------------------------------


def test_malformed_json_is_a_permanent_error(server, flows):
    server.plan(RUN_ROUTE, raw(200, b'{"flowRunId": "x", "status": '))
    with pytest.raises(client.FlowsError) as caught:
        flows.get_run(RUN_ID)
    assert not caught.value.retryable and caught.value.status == 200
    assert server.count(RUN_ROUTE) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"flowRunId": RUN_ID, "output": {}},  # no status
        {"status": "PENDING", "output": {}},  # no flowRunId
        {"flowRunId": RUN_ID, "status": "PENDING", "output": []},
        {"flowRunId": RUN_ID, "status": "ERROR", "output": {}, "errors": "boom"},
        [RUN_ID, "PENDING"],
    ],
)
def test_an_answer_of_the_wrong_shape_is_a_flows_error(server, flows, body):
    server.plan(RUN_ROUTE, respond(200, body))
    with pytest.raises(client.FlowsError) as caught:
        flows.get_run(RUN_ID)
    assert not caught.value.retryable


def test_a_created_run_answer_without_its_id_may_still_have_created_it(server, flows):
    server.plan(CREATE_ROUTE, raw(201, b"created!", "text/plain"))
    with pytest.raises(client.FlowsError) as caught:
        flows.create_run("coverage-check", PHI)
    assert caught.value.outcome_unknown and not caught.value.retryable


def test_a_malformed_5xx_is_transient(server, flows):
    server.plan(RUN_ROUTE, raw(500, b"{oops"))
    with pytest.raises(client.TransientFlowsError):
        flows.get_run(RUN_ID)


def test_error_bodies_are_parsed_and_kept_out_of_the_string(server, flows):
    message = "'Sensitive-Name' does not match '^[A-Z]+$'"
    server.plan(
        CREATE_ROUTE,
        respond(
            400, {"error": "invalid_request_error", "param": "patient.lastName", "message": message}
        ),
    )
    with pytest.raises(client.FlowsError) as caught:
        flows.create_run("coverage-check", PHI)
    error = caught.value
    assert type(error) is client.FlowsError and not error.retryable
    assert (error.status, error.error, error.param) == (
        400,
        "invalid_request_error",
        "patient.lastName",
    )
    assert error.message == message
    assert "Sensitive-Name" not in str(error)
    assert "param patient.lastName" in str(error)


def test_errors_survive_pickling(server, flows):
    server.plan(RUN_ROUTE, respond(429, {"error": "rate_limited"}, {"Retry-After": "99"}))
    with pytest.raises(client.TransientFlowsError) as caught:
        flows.get_run(RUN_ID)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is client.TransientFlowsError
    assert (copy.status, copy.error, copy.retry_after, str(copy)) == (
        429,
        "rate_limited",
        99,
        str(caught.value),
    )


# --- Tokens ----------------------------------------------------------------------------------


def test_an_expired_token_is_renewed_once_and_the_call_repeated(server, flows):
    flows.get_run(RUN_ID)
    server.revoke_tokens()  # the server forgot our token before we thought it would expire
    assert flows.get_run(RUN_ID).status == "PENDING"
    assert server.count("POST /oauth/token") == 2
    gets = server.requests_to(RUN_ROUTE)
    assert [g.headers["authorization"].split()[1] for g in gets] == [
        server.tokens_issued[0],
        server.tokens_issued[0],
        server.tokens_issued[1],
    ]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refusal_once_renews_the_token_once(server, flows, status):
    server.plan(PUT_ROUTE, respond(status, {"error": "unauthorized"}))
    assert flows.update_run(RUN_ID, {"memberId": "00000000"}).status == "IN_PROGRESS"
    assert server.count("POST /oauth/token") == 2
    assert server.count(PUT_ROUTE) == 2  # a refused call was not applied: safe to repeat


def test_a_refusal_after_renewal_is_final(server, flows):
    server.always(RUN_ROUTE, respond(403, {"error": "unauthorized", "message": "Unauthorized"}))
    with pytest.raises(client.FlowsError) as caught:
        flows.get_run(RUN_ID)
    assert caught.value.status == 403 and not caught.value.retryable
    assert server.count("POST /oauth/token") == 2
    assert server.count(RUN_ROUTE) == 2


def test_bad_credentials_are_a_permanent_error(server):
    flows = client.FlowsClient(server.url, CLIENT_ID, "wrong", **FAST)
    with pytest.raises(client.FlowsError) as caught:
        flows.get_run(RUN_ID)
    assert (caught.value.status, caught.value.error) == (403, "unauthorized")
    assert not caught.value.retryable
    assert server.count("POST /oauth/token") == 1
    assert server.count("GET ") == 0


def test_a_token_answer_without_a_token_is_a_flows_error(server, flows):
    server.plan("POST /oauth/token", respond(200, {"token_type": "Bearer", "expires_in": 3600}))
    with pytest.raises(client.FlowsError):
        flows.get_run(RUN_ID)
    assert server.count(RUN_ROUTE) == 0


@pytest.mark.parametrize(
    ("lifetime", "renewed_after"), [(3600, 3540), (60, 30)], ids=["a-minute-early", "at-half"]
)
def test_the_token_is_renewed_shortly_before_it_expires(
    server, flows, clock, lifetime, renewed_after
):
    server.token_lifetime = lifetime
    flows.get_run(RUN_ID)
    clock.advance(renewed_after - 1)
    flows.get_run(RUN_ID)
    assert server.count("POST /oauth/token") == 1
    clock.advance(1)
    flows.get_run(RUN_ID)
    assert server.count("POST /oauth/token") == 2
    assert server.count(RUN_ROUTE) == 3  # renewed before the call, never refused


def test_concurrent_calls_share_one_token_and_one_renewal(server, flows):
    def burst() -> list[str]:
        statuses: list[str] = []
        threads = [
            threading.Thread(target=lambda: statuses.append(flows.get_run(RUN_ID).status))
            for _ in range(8)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return statuses

    server.plan("POST /oauth/token", slow(0.2))  # let every thread pile up on the first token
    assert burst() == ["PENDING"] * 8
    assert server.count("POST /oauth/token") == 1

    before = server.count(RUN_ROUTE)
    server.revoke_tokens()
    assert burst() == ["PENDING"] * 8
    assert server.count("POST /oauth/token") == 2
    # Each thread is refused at most once (a late one may start with the renewed token).
    assert 8 < server.count(RUN_ROUTE) - before <= 16


# --- Our extension endpoints -----------------------------------------------------------------


def test_a_server_without_our_template_endpoints_is_not_supported(server, flows):
    with pytest.raises(client.NotSupported) as listing:
        flows.list_templates()
    with pytest.raises(client.NotSupported):
        flows.get_template("coverage-check", version=1)
    assert listing.value.status == 404 and not listing.value.retryable
    assert isinstance(listing.value, client.FlowsError)


def test_a_405_on_the_template_endpoint_is_not_supported(server, flows):
    server.plan("GET /v1/flows/coverage-check", respond(405))
    with pytest.raises(client.NotSupported):
        flows.get_template("coverage-check")


def test_our_engines_404_for_a_template_is_a_plain_not_found(server, flows):
    server.plan(
        "GET /v1/flows/nope",
        respond(404, {"error": "not_found", "param": "templateId", "message": "no template"}),
    )
    with pytest.raises(client.FlowsError) as caught:
        flows.get_template("nope")
    assert type(caught.value) is client.FlowsError
    assert caught.value.param == "templateId"


def test_template_answers_tolerate_unknown_fields(server, flows):
    server.plan(
        "GET /v1/flows",
        respond(
            200,
            {
                "data": [{"templateId": "t", "name": "T", "version": 3, "new": 1}],
                "nextPage": None,
            },
        ),
    )
    assert flows.list_templates() == [
        client.TemplateSummary(template_id="t", name="T", description=None, version=3)
    ]


# --- Logging ---------------------------------------------------------------------------------


def test_logs_carry_no_bodies_ids_or_input(server, flows, caplog):
    caplog.set_level(logging.DEBUG, logger="flows_integration.client")
    server.plan(CREATE_ROUTE, respond(503))
    server.plan(RUN_ROUTE, reset(), respond(400, {"message": "Sensitive-Name is wrong"}))
    with pytest.raises(client.FlowsError):
        flows.create_run("coverage-check", PHI)
    with pytest.raises(client.FlowsError):
        flows.get_run(RUN_ID)
    flows.update_run(RUN_ID, {"memberId": "00000000"})

    # httpx's own logger prints URLs (ids, never bodies); settings keep it at WARNING.
    logged = "\n".join(
        record.getMessage() for record in caplog.records if record.name == client.__name__
    )
    assert "POST /v1/flows/{templateId}/runs -> 503" in logged
    assert "GET /v1/flow-runs/{flowRunId} failed" in logged
    for secret in ("Sensitive-Name", "00000000", RUN_ID, CLIENT_SECRET, "coverage-check", "tok-"):
        assert secret not in logged


# --- The module's default client -------------------------------------------------------------


@pytest.fixture
def default_settings(settings, server):
    settings.FLOWS_API_URL = server.url
    settings.FLOWS_CLIENT_ID = CLIENT_ID
    settings.FLOWS_CLIENT_SECRET = CLIENT_SECRET
    settings.FLOWS_CONNECT_TIMEOUT = 0.5
    settings.FLOWS_READ_TIMEOUT = 0.5
    client.reset_client()
    yield settings
    client.reset_client()


def test_the_default_client_is_built_once_from_settings(default_settings, server):
    built: list[client.FlowsClient] = []
    threads = [threading.Thread(target=lambda: built.append(client.get_client())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({id(c) for c in built}) == 1

    assert client.get_run(RUN_ID).status == "PENDING"
    assert client.create_run("coverage-check", PHI, version=1).flow_run_id
    assert client.update_run(RUN_ID, {"memberId": "00000000"}).status == "IN_PROGRESS"
    with pytest.raises(client.NotSupported):
        client.list_templates()
    with pytest.raises(client.NotSupported):
        client.get_template("coverage-check")
    assert server.count("POST /oauth/token") == 1
    timeout = built[0]._http.timeout
    assert (timeout.connect, timeout.read) == (0.5, 0.5)


def test_reset_client_reads_settings_again(default_settings):
    first = client.get_client()
    first.get_run(RUN_ID)
    default_settings.FLOWS_API_URL = "http://127.0.0.1:1"
    client.reset_client()
    second = client.get_client()
    assert second is not first
    assert str(second._http.base_url).startswith("http://127.0.0.1:1")
    # A thread still holding the old client gets an error that says "try again".
    with pytest.raises(client.TransientFlowsError) as caught:
        first.get_run(RUN_ID)
    assert not caught.value.outcome_unknown


def test_a_custom_transport_is_used(server):
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth/token":
            return httpx.Response(200, json={"access_token": "t", "expires_in": 60})
        return httpx.Response(200, json={"flowRunId": RUN_ID, "status": "CREATED", "output": {}})

    with make_client("http://flows.invalid", transport=httpx.MockTransport(handler)) as flows:
        assert flows.get_run(RUN_ID).status == "CREATED"
