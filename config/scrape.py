"""What ``/metrics`` (and a worker's own endpoint) answer: the process metrics of
``config.metrics``, every process's summed in multiprocess mode, and, for the web, gauges read
from the database at scrape time (docs/operations.md).

Apart from ``config.metrics`` because it reads the review queue's models: the Flows client counts
its calls there, and the integration must not import the review queue, even through config.
"""

import threading
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import structlog
from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from config.metrics import authorized

__all__ = ["CONTENT_TYPE_LATEST", "exposition", "worker_serve"]

logger = structlog.get_logger(__name__)


# --- Read from the database at scrape time ----------------------------------------------------


class DatabaseCollector(Collector):
    """Gauges read from the database when scraped. A database that does not answer gives
    ``flowdesk_database_up 0`` and none of the rest, rather than a failed scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily(
            "flowdesk_database_up", "Whether the database answered this scrape's queries."
        )
        try:
            families = list(_database_families(timezone.now()))
        except DatabaseError as exc:
            logger.warning("metrics: database did not answer", error=type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def describe(self) -> list[Any]:
        # Nothing at registration time: describing would query the database.
        return []


def _age(now: datetime, then: datetime | None) -> float:
    return max(0.0, (now - then).total_seconds()) if then else 0.0


def _database_families(now: datetime) -> Iterator[GaugeMetricFamily]:
    # Imported here: this module is loaded with the middleware, before the apps may be.
    from flows_integration.models import SyncPass, WebhookEvent
    from reviewqueue.models import (
        ACTIVE_STATUSES,
        WORKABLE_STATUSES,
        Queue,
        ReviewItem,
        Submission,
        SubmissionStatus,
    )
    from reviewqueue.selectors import runs_in_triage

    queues = dict(Queue.objects.values_list("pk", "name"))
    items = GaugeMetricFamily(
        "flowdesk_queue_items",
        "Items that stand for a Run's current pause, per queue and status.",
        labels=["queue", "status"],
    )
    oldest = GaugeMetricFamily(
        "flowdesk_queue_oldest_item_age_seconds",
        "Age of the oldest item a reviewer can work on (open or claimed), per queue; 0 if none.",
        labels=["queue"],
    )
    counts = {(name, status): 0 for name in queues.values() for status in sorted(ACTIVE_STATUSES)}
    opened: dict[str, datetime] = {}
    rows = (
        ReviewItem.objects.filter(status__in=sorted(ACTIVE_STATUSES))
        .values_list("queue_id", "status")
        .annotate(n=Count("pk"), first=Min("opened_at"))
        .order_by()
    )
    for queue_id, status, n, first in rows:
        name = queues.get(queue_id, str(queue_id))
        counts[(name, status)] = n
        if status in WORKABLE_STATUSES and (name not in opened or first < opened[name]):
            opened[name] = first
    for (name, status), n in sorted(counts.items()):
        items.add_metric([name, status], n)
    for name in sorted(queues.values()):
        oldest.add_metric([name], _age(now, opened.get(name)))
    yield items
    yield oldest

    yield GaugeMetricFamily(
        "flowdesk_triage_runs",
        "Runs waiting for input that no item stands for (no known template or pause).",
        value=runs_in_triage().order_by().count(),
    )

    inbox = WebhookEvent.objects.filter(processed_at__isnull=True).aggregate(
        n=Count("pk"), first=Min("received_at")
    )
    yield GaugeMetricFamily(
        "flowdesk_webhook_inbox_unprocessed",
        "Webhooks stored and not yet processed.",
        value=inbox["n"],
    )
    yield GaugeMetricFamily(
        "flowdesk_webhook_inbox_lag_seconds",
        "Age of the oldest webhook not yet processed; 0 if none.",
        value=_age(now, inbox["first"]),
    )

    outbox = Submission.objects.filter(status=SubmissionStatus.PENDING).aggregate(
        n=Count("pk"), first=Min("created_at")
    )
    yield GaugeMetricFamily(
        "flowdesk_outbox_pending",
        "Submissions waiting to be delivered with Update Run.",
        value=outbox["n"],
    )
    yield GaugeMetricFamily(
        "flowdesk_outbox_oldest_pending_age_seconds",
        "Age of the oldest submission waiting to be delivered; 0 if none.",
        value=_age(now, outbox["first"]),
    )
    yield GaugeMetricFamily(
        "flowdesk_outbox_failed",
        "Submissions that failed after their retries and wait for a supervisor.",
        value=Submission.objects.filter(status=SubmissionStatus.FAILED).count(),
    )

    last = (
        SyncPass.objects.filter(finished_at__isnull=False, skipped=False)
        .order_by("-started_at")
        .values_list("finished_at", flat=True)
        .first()
    )
    yield GaugeMetricFamily(
        "flowdesk_reconcile_last_finished_timestamp_seconds",
        "When the last reconcile pass finished (Unix time); 0 if none ever did.",
        value=last.timestamp() if last else 0,
    )


# --- Exposition -------------------------------------------------------------------------------


def exposition(*, with_database: bool = True) -> bytes:
    """The text Prometheus scrapes: this host's process metrics (every process's, summed, in
    multiprocess mode) and, for the web, the database's gauges."""
    registry: Any
    if settings.PROMETHEUS_MULTIPROC_DIR:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=settings.PROMETHEUS_MULTIPROC_DIR)
    else:
        registry = REGISTRY
    if not with_database:
        return generate_latest(registry)
    scrape = CollectorRegistry()
    scrape.register(_Everything(registry))
    scrape.register(DatabaseCollector())
    return generate_latest(scrape)


class _Everything(Collector):
    def __init__(self, registry: Any) -> None:
        self._registry = registry

    def collect(self) -> Iterator[Any]:
        return self._registry.collect()

    def describe(self) -> list[Any]:
        return []


# --- A worker's own endpoint ------------------------------------------------------------------


def _worker_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    if environ.get("PATH_INFO") != "/metrics":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found\n"]
    if not authorized(environ.get("HTTP_AUTHORIZATION"), local=False):
        start_response(
            "401 Unauthorized", [("Content-Type", "text/plain"), ("WWW-Authenticate", "Bearer")]
        )
        return [b"unauthorized\n"]
    body = exposition(with_database=False)
    start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
    return [body]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


def worker_serve(port: int, address: str) -> Any:
    """Serve this worker's process metrics (its pool's, in multiprocess mode) on ``port`` in a
    daemon thread, under ``METRICS_TOKEN``; the database's gauges are the web's to serve."""
    server = make_server(address, port, _worker_app, handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name="metrics", daemon=True)
    thread.start()
    logger.info("metrics served", port=server.server_port)
    return server
