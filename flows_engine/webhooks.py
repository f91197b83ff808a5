"""``flow.updated`` webhooks, signed and retried the way Svix does it.

Every status or state change of a Run writes one ``WebhookMessage`` per endpoint of the Run's
environment in the same transaction as the change, and delivery is enqueued on commit: the
database is the outbox, Celery only the delivery truck.
"""

import json
import logging
import time
from datetime import UTC, datetime, timedelta

import httpx
from django.conf import settings
from django.db import transaction
from django.utils import timezone
from standardwebhooks import Webhook

from flows_engine.models import (
    Environment,
    MessageStatus,
    Run,
    WebhookAttempt,
    WebhookEndpoint,
    WebhookMessage,
)

logger = logging.getLogger(__name__)

# Svix's schedule: attempt n starts RETRY_SCHEDULE_SECONDS[n - 1] after attempt n - 1 failed, so
# "immediately" is the first attempt itself and there are eight in all. Svix's own example: a
# message that fails three times, then succeeds, arrives 5 s + 5 min + 30 min after the first try.
RETRY_SCHEDULE_SECONDS = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
MAX_ATTEMPTS = len(RETRY_SCHEDULE_SECONDS)
RESPONSE_BODY_LIMIT = 2000

_http: httpx.Client | None = None


def event_type(environment: str) -> str:
    return "sandbox.flow.updated" if environment == Environment.SANDBOX else "flow.updated"


def run_changed(run: Run) -> list[WebhookMessage]:
    """Queue ``flow.updated`` for every endpoint of the Run's environment (inside the caller's
    transaction, so a rolled-back change sends nothing)."""
    event = event_type(run.environment)
    payload = {
        "event": event,
        "flowRunId": str(run.pk),
        "status": run.status,
        "stateId": run.state_id,
    }
    endpoints = WebhookEndpoint.objects.filter(environment=run.environment, active=True)
    messages = [
        WebhookMessage.objects.create(
            msg_id=WebhookMessage.new_msg_id(),
            endpoint=endpoint,
            run=run,
            event_type=event,
            payload=payload,
        )
        for endpoint in endpoints
    ]
    for message in messages:
        _enqueue_delivery(message.pk)
    return messages


def endpoint_register(
    *, url: str, environment: str, secret: str | None = None, description: str = ""
) -> WebhookEndpoint:
    """Register (or update) the endpoint for ``url`` in ``environment``; idempotent."""
    endpoint, created = WebhookEndpoint.objects.get_or_create(
        url=url,
        environment=environment,
        defaults={
            "secret": secret or WebhookEndpoint.generate_secret(),
            "description": description,
        },
    )
    if not created and ((secret and endpoint.secret != secret) or not endpoint.active):
        endpoint.secret = secret or endpoint.secret
        endpoint.active = True
        endpoint.save(update_fields=["secret", "active"])
    return endpoint


def sign(*, secret: str, msg_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three ``svix-*`` headers for one attempt."""
    # standardwebhooks signs ``timestamp.replace(tzinfo=UTC)``, which names another instant than
    # the header for a datetime in any other zone: convert first, so both name the same second.
    timestamp = timestamp.astimezone(UTC)
    signature = Webhook(secret).sign(msg_id, timestamp, body)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(timestamp.timestamp())),
        "svix-signature": signature,
    }


def retry_delay(attempts_made: int) -> float | None:
    """Seconds to wait after ``attempts_made`` failed attempts, or None when out of retries."""
    if attempts_made >= MAX_ATTEMPTS:
        return None
    return RETRY_SCHEDULE_SECONDS[attempts_made] * settings.FLOWS_ENGINE_WEBHOOK_RETRY_SCALE


def message_deliver(message_id: int) -> WebhookAttempt | None:
    """Make one delivery attempt if the message is due and nobody else is sending it."""
    now = timezone.now()
    timeout = settings.FLOWS_ENGINE_WEBHOOK_TIMEOUT
    # The claim is a conditional UPDATE that must touch one row: two workers handed the same
    # message (a retried task, the sweep) never both send it.
    claimed = (
        WebhookMessage.objects.filter(
            pk=message_id, status=MessageStatus.PENDING, next_attempt_at__lte=now
        )
        .exclude(claimed_until__gt=now)
        .update(claimed_until=now + timedelta(seconds=timeout + 5))
    )
    if claimed != 1:
        return None
    message = WebhookMessage.objects.select_related("endpoint").get(pk=message_id)
    attempt = _post(message)
    _settle(message, attempt)
    return attempt


def _post(message: WebhookMessage) -> WebhookAttempt:
    body = _json(message.payload)
    headers = {
        "content-type": "application/json",
        "user-agent": "Flowdesk-Engine-Webhooks/1.0",
        **sign(
            secret=message.endpoint.secret,
            msg_id=message.msg_id,
            timestamp=timezone.now(),
            body=body,
        ),
    }
    attempt = WebhookAttempt(message=message)
    started = time.monotonic()
    try:
        response = _client().post(
            message.endpoint.url,
            content=body.encode(),
            headers=headers,
            timeout=settings.FLOWS_ENGINE_WEBHOOK_TIMEOUT,
        )
        attempt.response_status = response.status_code
        attempt.response_body = response.text[:RESPONSE_BODY_LIMIT]
        if response.headers.get("webhook-delivery") == "abort-message":
            attempt.error = "receiver asked to abort this message"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # InvalidURL is no HTTPError: uncaught, it would leave the message claimed, unlogged and
        # re-sent by every sweep, never counting an attempt and never failing.
        attempt.error = f"{type(exc).__name__}: {exc}"[:500]
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    return attempt


def _settle(message: WebhookMessage, attempt: WebhookAttempt) -> None:
    message.attempts += 1
    message.claimed_until = None
    delay = None
    if attempt.succeeded:
        message.status = MessageStatus.DELIVERED
    elif attempt.error == "receiver asked to abort this message":
        message.status = MessageStatus.FAILED
    else:
        # A 3xx is a failure too, as with Svix.
        delay = retry_delay(message.attempts)
        if delay is None:
            message.status = MessageStatus.FAILED
        else:
            message.next_attempt_at = timezone.now() + timedelta(seconds=delay)
    with transaction.atomic():
        attempt.save()
        message.save(update_fields=["attempts", "claimed_until", "status", "next_attempt_at"])
        if delay is not None:
            _enqueue_delivery(message.pk, countdown=delay)
    if not attempt.succeeded:
        logger.info(
            "webhook %s attempt %s failed: %s",
            message.msg_id,
            message.attempts,
            attempt.error or attempt.response_status,
        )


def messages_redeliver_due(*, older_than: datetime) -> int:
    """Re-enqueue pending messages whose delivery task seems lost."""
    due = list(
        WebhookMessage.objects.filter(
            status=MessageStatus.PENDING, next_attempt_at__lt=older_than
        ).values_list("pk", flat=True)[:1000]
    )
    for message_id in due:
        _enqueue_delivery(message_id)
    return len(due)


def _enqueue_delivery(message_id: int, countdown: float = 0) -> None:
    from flows_engine import tasks

    # With the broker down the message stays pending and the sweep re-sends it.
    transaction.on_commit(
        lambda: tasks.deliver_webhook.apply_async(
            args=(message_id,), countdown=countdown, retry=False
        ),
        robust=True,
    )


def _json(payload: dict) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _client() -> httpx.Client:
    global _http
    if _http is None:
        _http = httpx.Client(follow_redirects=False)
    return _http
