"""Celery tasks that exist for the benchmarks only.

The benchmark worker loads this module with ``-I bench.tasks``; no production process does.
"""

import redis
from celery import shared_task
from django.conf import settings

_redis: redis.Redis | None = None


def _client() -> redis.Redis:
    global _redis
    if _redis is None:
        # The broker is Redis in every benchmark world; the counter lives next to the queue.
        _redis = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    return _redis


@shared_task(acks_late=True, time_limit=30)
def noop(counter: str) -> None:
    """The baseline task: nothing but one ``INCR``, so the harness can see it has run.

    ``acks_late`` like the engine's ``advance_run``, so both pay the same broker round trips.
    """
    _client().incr(counter)
