"""``flow.updated`` webhooks as a receiver sees them: bodies, Svix signatures, retries, the log.

A real HTTP receiver (a ThreadingHTTPServer on a free loopback port) answers each attempt as the
test scripts it: an error, a redirect, a hang past the timeout, an abort header. Runs are driven
by a real Celery worker, with Svix's schedule compressed by FLOWS_ENGINE_WEBHOOK_RETRY_SCALE.
"""

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
import standardwebhooks
from django.db import connection
from svix.webhooks import Webhook as SvixWebhook
from svix.webhooks import WebhookVerificationError

from flows_engine import services, webhooks
from flows_engine.models import (
    Environment,
    MessageStatus,
    Run,
    RunStatus,
    WebhookAttempt,
    WebhookMessage,
)
from tests.documents import WAIT_FIRST
from tests.waiting import eventually

PATIENT = {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"}

# One callback state: a Run of it sends exactly one webhook (CREATED -> PENDING at `wait`).

SANDBOX_SECRET = "whsec_" + base64.b64encode(b"sandbox-endpoint-secret-0123").decode()
PRODUCTION_SECRET = "whsec_" + base64.b64encode(b"production-endpoint-secret-45").decode()


# --- A scripted receiver ---------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # Answer only once the test sets this event: a reply that hangs for exactly as long as the
    # test needs, however slow the machine.
    hold: threading.Event | None = None


@dataclass(frozen=True)
class Delivery:
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes
    at: float  # time.monotonic() on arrival
    wall: float  # time.time() on arrival

    @property
    def msg_id(self) -> str:
        return self.headers["svix-id"]

    @property
    def payload(self) -> dict:
        return json.loads(self.body)


class Receiver:
    """Records every request and answers with ``script(delivery, attempt_number_of_its_id)``."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.script: Callable[[Delivery, int], Reply] = lambda delivery, attempt: Reply()
        self._changed = threading.Condition()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/webhooks") -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def attempts(self, msg_id: str) -> list[Delivery]:
        with self._changed:
            return [d for d in self.deliveries if d.msg_id == msg_id]

    def wait_for(
        self, done: Callable[[list[Delivery]], bool], timeout: float = 45
    ) -> list[Delivery]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not done(self.deliveries):
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"receiver got {len(self.deliveries)} requests"
                self._changed.wait(remaining)
            return list(self.deliveries)

    def _record(self, delivery: Delivery) -> Reply:
        with self._changed:
            self.deliveries.append(delivery)
            attempt = sum(d.msg_id == delivery.msg_id for d in self.deliveries)
            self._changed.notify_all()
        return self.script(delivery, attempt)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = receiver._record(
                    Delivery(self.path, headers, body, time.monotonic(), time.time())
                )
                if reply.hold is not None:
                    reply.hold.wait(60)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the engine gave up waiting and closed the connection

            def log_message(self, format: str, *args: object) -> None:
                pass

        return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def fast_retries(settings):
    """Svix's schedule compressed 20,000 times: the whole of it takes about 5 s."""
    settings.FLOWS_ENGINE_WEBHOOK_RETRY_SCALE = 0.00005
    return settings.FLOWS_ENGINE_WEBHOOK_RETRY_SCALE


@pytest.fixture
def countdowns(monkeypatch) -> list[float]:
    """The countdown of every delivery the engine enqueues (0 for a first attempt), recorded
    as the worker's threads enqueue them: the schedule itself, whatever the machine's load."""
    recorded: list[float] = []
    enqueue = webhooks._enqueue_delivery

    def record(message_id: int, countdown: float = 0) -> None:
        recorded.append(countdown)
        enqueue(message_id, countdown)

    monkeypatch.setattr(webhooks, "_enqueue_delivery", record)
    return recorded


def scheduled(*attempts_made: int) -> list[float]:
    """The countdowns Svix's schedule gives after these many failed attempts."""
    return [pytest.approx(webhooks.retry_delay(n)) for n in attempts_made]


@pytest.fixture
def sandbox_endpoint(receiver, db):
    return webhooks.endpoint_register(
        url=receiver.url("/sandbox"), environment=Environment.SANDBOX, secret=SANDBOX_SECRET
    )


@pytest.fixture
def wait_first(db):
    return services.version_publish(template_id="wait-first", source=WAIT_FIRST)


def wait_first_run(engine_clients, environment: str = "sandbox") -> Run:
    """A Run that sends exactly one webhook: PENDING at its only state."""
    return services.run_create(
        client=engine_clients[environment], template_id="wait-first", input_data={}
    )


def signed_headers_valid(delivery: Delivery, secret: str) -> dict:
    """Check the signature three ways; return the body as standardwebhooks parsed it."""
    # svix reads the svix-* headers as they come; its verify() returns None in 2.x.
    assert SvixWebhook(secret).verify(delivery.body, delivery.headers) is None
    # standardwebhooks reads only webhook-* headers.
    aliased = {
        "webhook-id": delivery.headers["svix-id"],
        "webhook-timestamp": delivery.headers["svix-timestamp"],
        "webhook-signature": delivery.headers["svix-signature"],
    }
    parsed = standardwebhooks.Webhook(secret).verify(delivery.body, aliased)
    # And by hand, from flows-api.md: HMAC-SHA256 over "{id}.{timestamp}.{raw body}".
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{delivery.msg_id}.{delivery.headers['svix-timestamp']}.".encode() + delivery.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert f"v1,{expected}" in delivery.headers["svix-signature"].split(" ")
    # Signed when sent, not when the message was written: measured against the arrival, so
    # a slow test cannot push it out of the window.
    assert 0 <= delivery.wall - int(delivery.headers["svix-timestamp"]) < 60
    return parsed


def wait_for_message(msg_id: str, *statuses: str) -> WebhookMessage:
    return eventually(
        lambda: WebhookMessage.objects.filter(msg_id=msg_id, status__in=statuses).first(),
        what=f"the message to be {' or '.join(statuses)}",
    )


def logged_statuses(message: WebhookMessage) -> list[int | None]:
    return list(message.delivery_attempts.order_by("pk").values_list("response_status", flat=True))


# --- Signing and the schedule, without a worker ----------------------------------------------


@pytest.mark.parametrize(
    "zone", [UTC, ZoneInfo("America/New_York"), timezone(timedelta(hours=5, minutes=30))]
)
def test_sign_matches_the_known_good_svix_vector(zone):
    timestamp = datetime.fromtimestamp(1614265330, tz=UTC).astimezone(zone)

    headers = webhooks.sign(
        secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        msg_id="msg_p5jXN8AQM9LWM0D4loKWxJek",
        timestamp=timestamp,
        body='{"test": 2432232314}',
    )

    assert headers == {
        "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "svix-timestamp": "1614265330",
        "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_retry_delay_follows_the_svix_schedule(settings):
    settings.FLOWS_ENGINE_WEBHOOK_RETRY_SCALE = 1.0
    # The delay after n failed attempts; the first attempt itself is Svix's "immediately".
    assert [webhooks.retry_delay(n) for n in range(1, 8)] == [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
        36000,
    ]
    assert webhooks.MAX_ATTEMPTS == 8
    assert webhooks.retry_delay(8) is None
    # Svix: "an attempt that fails three times before eventually succeeding will be delivered
    # roughly 35 minutes and 5 seconds following the first attempt".
    assert sum(webhooks.retry_delay(n) for n in (1, 2, 3)) == 35 * 60 + 5

    settings.FLOWS_ENGINE_WEBHOOK_RETRY_SCALE = 0.01
    assert webhooks.retry_delay(2) == pytest.approx(3.0)


# --- Delivered by a real worker --------------------------------------------------------------


@pytest.mark.worker
def test_bodies_are_thin_and_signed_with_the_environments_event_name(
    receiver, engine_clients, wait_first, celery_worker
):
    webhooks.endpoint_register(
        url=receiver.url("/sandbox"), environment=Environment.SANDBOX, secret=SANDBOX_SECRET
    )
    webhooks.endpoint_register(
        url=receiver.url("/production"),
        environment=Environment.PRODUCTION,
        secret=PRODUCTION_SECRET,
    )
    runs = {env: wait_first_run(engine_clients, env) for env in ("sandbox", "production")}

    received = receiver.wait_for(lambda deliveries: len(deliveries) >= 2)

    by_path = {delivery.path: delivery for delivery in received}
    assert set(by_path) == {"/sandbox", "/production"}
    for path, secret, event, run in [
        ("/sandbox", SANDBOX_SECRET, "sandbox.flow.updated", runs["sandbox"]),
        ("/production", PRODUCTION_SECRET, "flow.updated", runs["production"]),
    ]:
        delivery = by_path[path]
        expected = {
            "event": event,
            "flowRunId": str(run.pk),
            "status": "PENDING",
            "stateId": "wait",
        }
        assert delivery.payload == expected  # exactly these four keys, nothing else
        assert signed_headers_valid(delivery, secret) == expected
        assert delivery.headers["content-type"] == "application/json"
    with pytest.raises(WebhookVerificationError):
        SvixWebhook(PRODUCTION_SECRET).verify(by_path["/sandbox"].body, by_path["/sandbox"].headers)
    for delivery in received:
        assert wait_for_message(delivery.msg_id, MessageStatus.DELIVERED).attempts == 1


@pytest.mark.worker
def test_a_failing_receiver_gets_the_same_message_again_until_it_answers_2xx(
    receiver, engine_clients, wait_first, sandbox_endpoint, fast_retries, countdowns, celery_worker
):
    receiver.script = lambda delivery, attempt: Reply(500 if attempt < 3 else 200)
    wait_first_run(engine_clients)

    attempts = receiver.wait_for(lambda deliveries: len(deliveries) >= 3)

    assert len({delivery.msg_id for delivery in attempts}) == 1  # svix-id is the dedupe key
    for delivery in attempts:
        assert signed_headers_valid(delivery, SANDBOX_SECRET)["status"] == "PENDING"
    message = wait_for_message(attempts[0].msg_id, MessageStatus.DELIVERED)
    assert message.attempts == 3
    assert logged_statuses(message) == [500, 500, 200]
    assert countdowns == [0, *scheduled(1, 2)]
    assert attempts[2].at - attempts[1].at >= webhooks.RETRY_SCHEDULE_SECONDS[2] * fast_retries
    # Delivered is final (a stray task for it sends nothing), so these three are all there are.
    assert webhooks.message_deliver(message.pk) is None
    assert len(receiver.deliveries) == 3


@pytest.mark.worker
def test_a_redirect_is_a_failure_and_is_not_followed(
    receiver, engine_clients, wait_first, sandbox_endpoint, fast_retries, celery_worker
):
    moved = {"Location": receiver.url("/elsewhere")}
    receiver.script = lambda delivery, attempt: Reply(302, moved) if attempt == 1 else Reply()
    wait_first_run(engine_clients)

    attempts = receiver.wait_for(lambda deliveries: len(deliveries) >= 2)

    message = wait_for_message(attempts[0].msg_id, MessageStatus.DELIVERED)
    assert logged_statuses(message) == [302, 200]
    assert [delivery.path for delivery in attempts] == ["/sandbox", "/sandbox"]


@pytest.mark.worker
def test_a_receiver_slower_than_the_timeout_is_a_failure(
    receiver, engine_clients, wait_first, sandbox_endpoint, fast_retries, settings, celery_worker
):
    settings.FLOWS_ENGINE_WEBHOOK_TIMEOUT = 0.5
    hung = threading.Event()
    receiver.script = lambda delivery, attempt: Reply(hold=hung) if attempt == 1 else Reply()
    wait_first_run(engine_clients)

    # The first reply is held until the second attempt has arrived: had the engine waited for
    # the hung reply, there would be no second attempt to wait for.
    try:
        attempts = receiver.wait_for(lambda deliveries: len(deliveries) >= 2)
    finally:
        hung.set()

    message = wait_for_message(attempts[0].msg_id, MessageStatus.DELIVERED)
    first, second = message.delivery_attempts.order_by("pk")
    assert first.response_status is None
    assert "Timeout" in first.error
    assert first.duration_ms >= 400
    assert second.succeeded
    assert attempts[0].msg_id == attempts[1].msg_id


@pytest.mark.worker
def test_abort_message_stops_the_retries(
    receiver, engine_clients, wait_first, sandbox_endpoint, fast_retries, countdowns, celery_worker
):
    receiver.script = lambda delivery, attempt: Reply(500, {"webhook-delivery": "abort-message"})
    wait_first_run(engine_clients)

    (first,) = receiver.wait_for(lambda deliveries: len(deliveries) >= 1)

    message = wait_for_message(first.msg_id, MessageStatus.FAILED)
    assert message.attempts == 1
    assert logged_statuses(message) == [500]
    assert countdowns == [0]  # no retry was scheduled
    assert webhooks.message_deliver(message.pk) is None  # and a stray task would send nothing
    assert len(receiver.deliveries) == 1


@pytest.mark.worker
def test_a_receiver_that_never_succeeds_gets_the_whole_schedule_then_failed(
    receiver, engine_clients, wait_first, sandbox_endpoint, fast_retries, countdowns, celery_worker
):
    receiver.script = lambda delivery, attempt: Reply(503)
    wait_first_run(engine_clients)

    attempts = receiver.wait_for(
        lambda deliveries: len(deliveries) >= webhooks.MAX_ATTEMPTS, timeout=30
    )

    message = wait_for_message(attempts[0].msg_id, MessageStatus.FAILED)
    assert message.attempts == webhooks.MAX_ATTEMPTS
    assert logged_statuses(message) == [503] * webhooks.MAX_ATTEMPTS
    assert len({delivery.msg_id for delivery in attempts}) == 1
    # The schedule as enqueued, exactly; the receiver's clock can only show that no attempt
    # came early (a loaded machine makes any of them late).
    assert countdowns == [0, *scheduled(*range(1, webhooks.MAX_ATTEMPTS))]
    gaps = [later.at - earlier.at for earlier, later in zip(attempts, attempts[1:], strict=False)]
    for gap, seconds in zip(gaps, webhooks.RETRY_SCHEDULE_SECONDS[1:], strict=True):
        assert gap >= seconds * fast_retries - 0.02, gaps
    assert webhooks.message_deliver(message.pk) is None  # failed is final
    assert len(receiver.deliveries) == webhooks.MAX_ATTEMPTS


@pytest.mark.worker
def test_a_coverage_check_reports_every_status_and_state_it_passes(
    receiver, engine_clients, demo_templates, sandbox_endpoint, celery_worker
):
    run = services.run_create(
        client=engine_clients["sandbox"],
        template_id="coverage-check",
        input_data={"patient": PATIENT, "payerId": "60054"},
        version=1,
    )

    def seen(deliveries: list[Delivery]) -> set[tuple[str, str]]:
        return {(d.payload["status"], d.payload["stateId"]) for d in deliveries}

    receiver.wait_for(lambda deliveries: ("PENDING", "collect-member-id") in seen(deliveries))
    services.run_update(
        client=engine_clients["sandbox"], run_id=run.pk, input={"memberId": "00000000"}
    )
    receiver.wait_for(lambda deliveries: ("COMPLETE", "verify-entered") in seen(deliveries))
    # Deliveries overtake one another, so COMPLETE may arrive before an earlier change: wait
    # until the engine has settled every message of the Run. A delivered message is never
    # sent again and a complete Run writes no more, so the receiver now holds all it will get.
    eventually(
        lambda: (
            not WebhookMessage.objects.filter(run=run)
            .exclude(status=MessageStatus.DELIVERED)
            .exists()
        ),
        what="every message of the run to be delivered",
    )
    received = list(receiver.deliveries)

    # Delivery order is not guaranteed, so compare what arrived, not in which order.
    assert sorted(
        (d.payload["status"], d.payload["stateId"]) for d in receiver.deliveries
    ) == sorted(
        [
            ("IN_PROGRESS", "discover"),
            ("IN_PROGRESS", "coverage-found"),
            ("PENDING", "collect-member-id"),
            ("IN_PROGRESS", "collect-member-id"),
            ("IN_PROGRESS", "verify-entered"),
            ("COMPLETE", "verify-entered"),
        ]
    )
    assert len({delivery.msg_id for delivery in received}) == 6
    assert WebhookAttempt.objects.filter(message__run=run).count() == 6  # none sent twice
    for delivery in receiver.deliveries:
        assert signed_headers_valid(delivery, SANDBOX_SECRET)["flowRunId"] == str(run.pk)
    assert Run.objects.get(pk=run.pk).status == RunStatus.COMPLETE


# --- Two deliveries of one message at once ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_deliveries_of_one_message_send_it_once(
    receiver, engine_clients, wait_first, sandbox_endpoint
):
    run = Run.objects.create(
        version=wait_first, client=engine_clients["sandbox"], environment=Environment.SANDBOX
    )
    message = WebhookMessage.objects.create(
        msg_id=WebhookMessage.new_msg_id(),
        endpoint=sandbox_endpoint,
        run=run,
        event_type="sandbox.flow.updated",
        payload={
            "event": "sandbox.flow.updated",
            "flowRunId": str(run.pk),
            "status": "CREATED",
            "stateId": "",
        },
    )
    # The receiver holds the winner's request until the loser has given up, so the two
    # deliveries overlap whatever the scheduling.
    release = threading.Event()
    receiver.script = lambda delivery, attempt: Reply(hold=release)
    barrier = threading.Barrier(2)
    results: list[WebhookAttempt | None | BaseException] = []

    def deliver() -> None:
        try:
            barrier.wait(timeout=5)
            results.append(webhooks.message_deliver(message.pk))
        except BaseException as exc:  # reported in the test's thread
            results.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        assert eventually(lambda: list(results), what="one delivery to give up") == [None]
    finally:
        release.set()
    for thread in threads:
        thread.join(timeout=30)

    assert not any(isinstance(result, BaseException) for result in results), results
    assert sorted(result is None for result in results) == [False, True]
    assert len(receiver.deliveries) == 1
    message.refresh_from_db()
    assert (message.status, message.attempts) == (MessageStatus.DELIVERED, 1)
    assert WebhookAttempt.objects.filter(message=message).count() == 1
    assert webhooks.message_deliver(message.pk) is None  # delivered: never sent again
    assert len(receiver.deliveries) == 1


def test_an_endpoint_url_httpx_cannot_parse_is_a_logged_failed_attempt(
    engine_clients, wait_first, settings
):
    settings.FLOWS_ENGINE_WEBHOOK_RETRY_SCALE = 1.0
    endpoint = webhooks.endpoint_register(
        url="http://[::1/webhooks", environment=Environment.SANDBOX
    )
    run = Run.objects.create(
        version=wait_first, client=engine_clients["sandbox"], environment=Environment.SANDBOX
    )
    (message,) = webhooks.run_changed(run)

    attempt = webhooks.message_deliver(message.pk)

    assert attempt is not None
    assert attempt.error.startswith("InvalidURL")
    message.refresh_from_db()
    assert (message.status, message.attempts, message.claimed_until) == (
        MessageStatus.PENDING,
        1,
        None,
    )
    assert logged_statuses(message) == [None]
    assert endpoint.messages.count() == 1
