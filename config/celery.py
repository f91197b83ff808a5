"""The Celery app shared by the engine's executor and Flowdesk's own tasks.

Importing ``config.logs`` connects the signals that carry a request id from the publisher into
each task's log lines, and that keep Celery from replacing Django's logging (JSON in production).
"""

import os
from typing import Any

from celery import Celery, signals

from config import logs  # noqa: F401 - connects the request id and logging signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("flowdesk")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect(dispatch_uid="flowdesk.metrics.worker")
def _serve_worker_metrics(**_: Any) -> None:
    """With ``METRICS_WORKER_PORT``, the worker's main process serves what its pool counts (a
    worker in its own container has no gunicorn to serve it; docs/operations.md)."""
    from django.conf import settings

    if settings.METRICS_WORKER_PORT:
        from config import scrape

        scrape.worker_serve(settings.METRICS_WORKER_PORT, settings.METRICS_WORKER_ADDRESS)
