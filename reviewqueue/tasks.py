"""Celery tasks of the review queue: thin, idempotent, each calling one service."""

from celery import shared_task
from django.core.management import call_command

from reviewqueue import escalation, notifications, services


@shared_task(acks_late=True, time_limit=180)
def deliver_submission(submission_id: int) -> str:
    # Safe to run twice: the submission's own lease and ``maybe_sent`` settle a rerun.
    return services.submission_deliver(submission_id).outcome


@shared_task(time_limit=60)
def expire_leases() -> int:
    return services.leases_expire()


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
