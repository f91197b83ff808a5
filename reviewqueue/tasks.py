"""Celery tasks of the review queue: thin, idempotent, each calling one service."""

import structlog
from celery import shared_task
from django.core.management import call_command

from config import metrics
from reviewqueue import escalation, notifications, services
from reviewqueue.models import Submission

logger = structlog.get_logger(__name__)


@shared_task(acks_late=True, time_limit=180)
def deliver_submission(submission_id: int) -> str:
    # Safe to run twice: the submission's own lease and ``maybe_sent`` settle a rerun.
    # The Run's id joins the log context: with the request id of the submit (carried in the
    # task's headers, config/logs.py) it ties the request, the delivery and the Run together.
    run = Submission.objects.filter(pk=submission_id).values_list("item__run_ref", flat=True)
    structlog.contextvars.bind_contextvars(submission_id=submission_id, flow_run_id=run.first())
    outcome = services.submission_deliver(submission_id).outcome
    metrics.SUBMISSION_DELIVERIES.labels(outcome).inc()
    logger.info("submission delivery", outcome=outcome)
    return outcome


@shared_task(time_limit=60)
def expire_leases() -> int:
    expired = services.leases_expire()
    metrics.LEASES_EXPIRED.inc(expired)
    return expired


@shared_task(time_limit=60)
def sweep_outbox() -> int:
    return services.outbox_sweep()


@shared_task(time_limit=60)
def escalate_items() -> int:
    # Safe to overlap or rerun: each step is taken by a conditional UPDATE, once per item.
    return escalation.items_escalate()


@shared_task
def clear_expired_sessions() -> None:
    """Expired sessions, and the searches they kept, leave the database (Django's own
    ``clearsessions``, whatever the session engine)."""
    call_command("clearsessions")


@shared_task(acks_late=True, time_limit=60)
def email_notification(notification_id: int) -> bool:
    # Safe to run twice: the notification is claimed (``emailed_at``) before it is sent.
    return notifications.notification_email(notification_id)


@shared_task(time_limit=60)
def sweep_notification_emails() -> int:
    return notifications.notifications_email_sweep()
