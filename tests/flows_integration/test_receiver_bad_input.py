"""Hostile but signed bodies at POST /flows/webhooks/: each a final answer, never a 500 or a 503.

Svix retries every answer but a 2xx, 4xx included; a refusal that can never turn into success
carries ``webhook-delivery: abort-message``, the one thing that stops it. Run on PostgreSQL too
(DATABASE_URL=postgres://…): its jsonb holds neither a NUL nor a lone surrogate.
"""

import json
import uuid

import pytest

from flows_integration.models import WebhookEvent
from tests.flows_integration.test_receiver import event_body, post, signed, webhook_secret

__all__ = ["webhook_secret"]  # the autouse fixture that sets the secret the bodies are signed with

ABORT = "abort-message"


def _with(extra: bytes) -> bytes:
    """A valid event body with one more key whose value is ``extra``, as raw JSON text."""
    return event_body()[:-1] + b', "extra": ' + extra + b"}"


HOSTILE = {
    "nested 10,000 deep": _with(b"[" * 10_000 + b"]" * 10_000),
    "objects nested 10,000 deep": _with(b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    "a bare list nested 10,000 deep": b"[" * 10_000 + b"]" * 10_000,
    "nested 40 deep": _with(b"[" * 40 + b"]" * 40),
    "NaN": _with(b"NaN"),
    "Infinity": _with(b"Infinity"),
    "an integer of 5,000 digits": _with(b"9" * 5_000),
    "not JSON": b"{not json",
    "a NUL in flowRunId": event_body(flowRunId="\x00"),
}


@pytest.mark.django_db
@pytest.mark.parametrize("body", HOSTILE.values(), ids=HOSTILE.keys())
def test_a_signed_body_that_can_never_be_taken_is_a_final_400(client, body):
    response = post(client, body, signed(body))
    assert response.status_code == 400
    assert response["webhook-delivery"] == ABORT
    assert "error" in response.json()
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_a_bad_signature_is_refused_without_aborting_the_retries(client):
    # The secret may be mid-rotation: Svix should try again later.
    body = _with(b"NaN")
    headers = signed(body, secret="whsec_" + "QUJD" * 8)
    response = post(client, body, headers)
    assert response.status_code == 401
    assert "webhook-delivery" not in response
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db
def test_an_over_long_field_is_a_final_400(client):
    body = event_body(stateId="s" * 201)
    response = post(client, body, signed(body))
    assert response.status_code == 400
    assert response["webhook-delivery"] == ABORT
    assert not WebhookEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("odd", ["\x00", "\ud800"], ids=["NUL", "lone surrogate"])
def test_a_signed_event_with_a_nul_or_lone_surrogate_is_kept_with_a_replacement_character(
    client, odd
):
    """The event is a genuine notice from Sohar (it is signed): it is kept and the Run is
    refreshed, with the character PostgreSQL cannot store replaced by U+FFFD."""
    run_id = str(uuid.uuid4())
    body = json.dumps(
        {
            "event": "flow.updated",
            "flowRunId": run_id,
            "status": "PENDING",
            "stateId": f"collect{odd}member",
            f"note{odd}": [f"a{odd}b"],
        }
    ).encode()
    assert b"\\u" in body  # json.dumps escapes both, as a sender would

    response = post(client, body, signed(body))

    assert response.status_code == 200
    assert response.json() == {"status": "accepted"}
    event = WebhookEvent.objects.get()
    assert str(event.flow_run_id) == run_id
    assert event.state_id == "collect\ufffdmember"
    assert event.payload["note\ufffd"] == ["a\ufffdb"]
    # Svix's retry of the same message is a duplicate, not a second row or an error.
    assert post(client, body, signed(body, msg_id=event.svix_id)).json() == {"status": "duplicate"}
