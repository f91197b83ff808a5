"""Celery tasks of the engine: thin, idempotent, each calling one service."""

from celery import shared_task

from flows_engine import services, webhooks


@shared_task(acks_late=True, time_limit=300, soft_time_limit=280)
def advance_run(run_id: str) -> None:
    services.run_advance(run_id)


@shared_task(acks_late=True, time_limit=60)
def deliver_webhook(message_id: int) -> None:
    webhooks.message_deliver(message_id)


@shared_task(time_limit=120)
def sweep() -> dict[str, int]:
    return services.sweep()
