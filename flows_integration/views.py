import logging

import structlog
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from flows_integration import receiver, services

logger = logging.getLogger(__name__)


@csrf_exempt  # signed by Svix instead; the only view without CSRF
@require_POST
def webhook(request: HttpRequest) -> HttpResponse:
    """Verify, store once, answer fast; the refresh happens in a task."""
    try:
        payload = receiver.verify(settings.FLOWS_WEBHOOK_SECRET, request.body, request.headers)
    except receiver.WebhookRejected as exc:
        logger.info("webhook rejected: %s", exc.reason)
        return _refused(exc.reason, status=exc.status, final=exc.final)
    if payload.get("event") not in settings.FLOWS_WEBHOOK_EVENT_TYPES:
        return JsonResponse({"status": "ignored"})
    svix_id = request.headers.get("svix-id") or request.headers.get("webhook-id") or ""
    try:
        event = services.event_receive(svix_id=svix_id, payload=payload)
    except ValueError as exc:
        # Signed, so Sohar sent it, and it would send these same bytes again: stop it.
        return _refused(str(exc), status=400, final=True)
    except DatabaseError:
        # 5xx so that Svix retries once the database is back.
        logger.exception("webhook %s could not be stored", svix_id)
        return JsonResponse({"error": "temporarily unavailable"}, status=503)
    # The request's own line then names the Run (event_receive has checked its id is a UUID):
    # its events are drained in tasks that carry many webhooks and no one request's id.
    structlog.contextvars.bind_contextvars(
        webhook_id=svix_id, flow_run_id=str(payload.get("flowRunId"))
    )
    return JsonResponse({"status": "duplicate" if event is None else "accepted"})


def _refused(reason: str, *, status: int, final: bool) -> JsonResponse:
    response = JsonResponse({"error": reason}, status=status)
    if final:
        # Svix retries a 4xx like a 5xx; only this header ends the message's retries.
        response["webhook-delivery"] = "abort-message"
    return response
