"""Celery tasks of the engine: thin, idempotent, each calling one service."""

from celery import shared_task

from flows_engine import services, webhooks


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def advance_run(run_id: str) -> None:
    services.run_advance(run_id)


# The soft limit is explicit: a global CELERY_TASK_SOFT_TIME_LIMIT above this task's time limit
# makes Celery refuse to send the task at all (ValueError in apply_async, after the commit).
@shared_task(acks_late=True, time_limit=60, soft_time_limit=50)
def deliver_webhook(message_id: int) -> None:
    webhooks.message_deliver(message_id)


@shared_task(time_limit=120)
def sweep() -> dict[str, int]:
    return services.sweep()
