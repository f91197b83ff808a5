"""Celery tasks of the review queue: thin, idempotent, each calling one service."""

from celery import shared_task
from django.core.management import call_command

from reviewqueue import services


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


@shared_task
def clear_expired_sessions() -> None:
    """Expired sessions, and the searches they kept, leave the database (Django's own
    ``clearsessions``, whatever the session engine)."""
    call_command("clearsessions")
