"""POST /flows/webhooks/: verify, store once, answer fast, enqueue on commit."""

import json
import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from standardwebhooks import Webhook

from flows_integration import receiver, services
from flows_integration.models import WebhookEvent

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
URL = "/flows/webhooks/"


@pytest.fixture(autouse=True)
def webhook_secret(settings):
    settings.FLOWS_WEBHOOK_SECRET = SECRET


def event_body(**overrides):
    body = {
        "event": "flow.updated",
        "flowRunId": str(uuid.uuid4()),
        "status": "PENDING",
        "stateId": "collect-member-id",
    }
    return json.dumps({**body, **overrides}).encode()


def signed(body: bytes, *, msg_id=None, when=None, secret=SECRET, prefix="svix"):
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    when = when or datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, when, body.decode())
    return {
        f"{prefix}-id": msg_id,
        f"{prefix}-timestamp": str(int(when.timestamp())),
        f"{prefix}-signature": signature,
    }


def post(client, body, headers):
    django_headers = {f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}
    return client.post(URL, body, content_type="application/json", **django_headers)


def test_sohar_known_good_vector_verifies_with_a_frozen_clock():
    headers = {
        "svix-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "svix-timestamp": "1614265330",
        "svix-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    with time_machine.travel(datetime.fromtimestamp(1614265330 + 10, UTC), tick=False):
        assert receiver.verify(SECRET, body, headers) == {"test": 2432232314}
    with time_machine.travel(datetime.fromtimestamp(1614265330 + 301, UTC), tick=False):
        with pytest.raises(receiver.WebhookRejected) as rejected:
            receiver.verify(SECRET, body, headers)
        assert rejected.value.status == 401


@pytest.mark.django_db
def test_a_signed_event_is_stored_and_its_refresh_enqueued_on_commit(
    client, django_capture_on_commit_callbacks
):
    body = event_body()
    headers = signed(body)
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, headers)
    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    event = WebhookEvent.objects.get()
    assert event.svix_id == headers["svix-id"]
    assert event.status == "PENDING"
    assert event.state_id == "collect-member-id"
    assert event.processed_at is None
    assert len(callbacks) == 1


@pytest.mark.django_db(transaction=True)
def test_an_event_is_one_statement_in_autocommit_and_a_duplicate_is_not_enqueued(
    client, monkeypatch
):
    enqueued: list[int] = []
    monkeypatch.setattr(services, "_enqueue_event", enqueued.append)
    body = event_body()
    headers = signed(body)
    with CaptureQueriesContext(connection) as queries:
        assert post(client, body, headers).json() == {"status": "accepted"}
        assert post(client, body, headers).json() == {"status": "duplicate"}
    sqls = [query["sql"] for query in queries.captured_queries]
    assert [sql.split()[0] for sql in sqls if "webhookevent" in sql] == ["INSERT", "INSERT"]
    assert not any(sql.startswith(("BEGIN", "SAVEPOINT", "COMMIT")) for sql in sqls)
    # Outside a transaction the enqueue runs at once, the row being committed already.
    assert enqueued == [WebhookEvent.objects.get().pk]


@pytest.mark.django_db
def test_the_request_line_of_a_stored_event_names_its_run(client, settings, caplog):
    settings.LOG_REQUESTS = True
    body = event_body()
    headers = signed(body)
    with caplog.at_level(logging.INFO, logger="flowdesk.request"):
        post(client, body, headers)
    (line,) = [record.msg for record in caplog.records if record.name == "flowdesk.request"]
    assert line["route"] == URL
    assert line["flow_run_id"] == json.loads(body)["flowRunId"]
    assert line["webhook_id"] == headers["svix-id"]
    assert line["request_id"]


@pytest.mark.django_db
def test_webhook_star_headers_are_accepted_too(client):
    body = event_body()
    assert post(client, body, signed(body, prefix="webhook")).status_code == 200
    assert WebhookEvent.objects.count() == 1


@pytest.mark.django_db
def test_several_signatures_in_one_header_any_valid_one_is_enough(client):
    body = event_body()
    headers = signed(body)
    wrong = signed(body, msg_id=headers["svix-id"], secret="whsec_" + "QUJD" * 8)
    headers["svix-signature"] = f"{wrong['svix-signature']} {headers['svix-signature']}"
    assert post(client, body, headers).status_code == 200


def _tamper_body(body, headers):
    return body.replace(b"PENDING", b"COMPLETE"), headers


def _wrong_secret(body, headers):
    return body, signed(body, msg_id=headers["svix-id"], secret="whsec_" + "QUJD" * 8)


def _stale(body, headers):
    return body, signed(body, when=datetime.now(UTC) - timedelta(minutes=6))


def _future(body, headers):
    return body, signed(body, when=datetime.now(UTC) + timedelta(minutes=6))


def _missing(name):
    def change(body, headers):
        return body, {k: v for k, v in headers.items() if k != name}

    return change


def _malformed_signature(body, headers):
    return body, {**headers, "svix-signature": "v1g0hM9SsE-no-comma"}


def _garbage_timestamp(body, headers):
    return body, {**headers, "svix-timestamp": "yesterday"}


def _not_base64(body, headers):
    return body, {**headers, "svix-signature": "v1,***"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "spoil",
    [
        _tamper_body,
        _wrong_secret,
        _stale,
        _future,
        _missing("svix-id"),
        _missing("svix-timestamp"),
        _missing("svix-signature"),
        _malformed_signature,
        _garbage_timestamp,
        _not_base64,
    ],
)
def test_bad_signatures_are_rejected_with_4xx_and_write_nothing(client, spoil):
    body = event_body()
    body, headers = spoil(body, signed(body))
    response = post(client, body, headers)
    assert 400 <= response.status_code < 500
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_a_signed_body_that_is_not_an_event_is_refused(client):
    for body in [b"[1, 2]", b"not json", event_body(flowRunId="not-a-uuid")]:
        assert post(client, body, signed(body)).status_code == 400
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_over_long_values_are_refused_with_400_not_retried_as_503(client):
    body = event_body(stateId="s" * 201)
    assert post(client, body, signed(body)).status_code == 400
    body = event_body()
    assert post(client, body, signed(body, msg_id="m" * 101)).status_code == 400
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_other_event_types_are_ignored_with_2xx(client):
    body = event_body(event="invoice.paid")
    response = post(client, body, signed(body))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_only_configured_event_types_are_accepted(client, settings):
    settings.FLOWS_WEBHOOK_EVENT_TYPES = ["flow.updated"]
    body = event_body(event="sandbox.flow.updated")
    assert post(client, body, signed(body)).json() == {"status": "ignored"}


@pytest.mark.django_db
def test_a_duplicate_svix_id_answers_2xx_and_does_nothing(
    client, django_capture_on_commit_callbacks
):
    body = event_body()
    headers = signed(body)
    assert post(client, body, headers).status_code == 200
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, body, headers)
    assert response.status_code == 200
    assert response.json() == {"status": "duplicate"}
    assert WebhookEvent.objects.count() == 1
    assert callbacks == []


def test_the_receiver_is_exempt_from_csrf_and_only_takes_post(client):
    assert reverse("flows_integration:webhook") == URL
    assert client.get(URL).status_code == 405


@pytest.mark.django_db(transaction=True)
def test_the_same_svix_id_ten_times_concurrently_gives_one_row(live_server):
    body = event_body()
    headers = {**signed(body), "content-type": "application/json"}
    statuses: list[int] = []
    barrier = threading.Barrier(10)

    def deliver():
        barrier.wait()
        statuses.append(
            httpx.post(live_server.url + URL, content=body, headers=headers).status_code
        )

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(statuses) == [200] * 10
    assert WebhookEvent.objects.count() == 1


@pytest.fixture
def database_down():
    """Point the default connection at a database that cannot be reached, then restore it."""
    from django.db import connection

    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-folder/flowdesk.sqlite3"
    else:
        connection.settings_dict["PORT"] = "1"  # nothing listens there
    yield
    connection.close()
    connection.settings_dict.clear()
    connection.settings_dict.update(saved)


@pytest.mark.django_db(transaction=True)
def test_with_the_database_down_the_receiver_answers_5xx_so_svix_retries(client, database_down):
    body = event_body()
    response = post(client, body, signed(body))
    assert response.status_code == 503
