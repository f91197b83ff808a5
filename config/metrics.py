"""Prometheus metrics (docs/operations.md lists each one and the alerts to set on them).

Two kinds, read two ways:

- What lives in the database (queue depth and age, triage, the webhook inbox, the outbox, the
  last reconcile pass) is read when Prometheus scrapes, by ``config.scrape``: a handful of
  grouped, indexed queries, right whichever process answers, never summed across processes.
- What happens in a process (Flows API calls, reconcile passes, expired leases, deliveries,
  failed sign-ins) is counted where it happens, in counters and histograms below. Production
  runs several gunicorn processes and Celery workers: with ``PROMETHEUS_MULTIPROC_DIR`` set
  (before prometheus-client is imported, so in the environment), each process writes its values
  to files there and ``/metrics`` sums the files of every process (prometheus-client's
  multiprocess mode). Without it (development, tests) each process counts in memory.

Labels are bounded: endpoints are path templates (``GET /v1/flow-runs/{flowRunId}``), never
URLs with ids; queues are the admin's queues; nothing names a patient.
"""

import secrets
from typing import Any

import structlog
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from prometheus_client import (
    Counter,
    Histogram,
)

logger = structlog.get_logger(__name__)

# --- Counted in processes ---------------------------------------------------------------------

FLOWS_API_REQUESTS = Counter(
    "flowdesk_flows_api_requests",
    "Calls to the Flows API, every attempt, by endpoint and status class (none: no answer).",
    ["endpoint", "code"],
)
FLOWS_API_ERRORS = Counter(
    "flowdesk_flows_api_errors",
    "Flows API attempts that failed: timeout, connection, http_5xx, http_429.",
    ["endpoint", "reason"],
)
FLOWS_API_DURATION = Histogram(
    "flowdesk_flows_api_request_duration_seconds",
    "How long each Flows API attempt took, answered or not.",
    ["endpoint"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0),
)
RECONCILE_DURATION = Histogram(
    "flowdesk_reconcile_duration_seconds",
    "How long each reconcile pass took (skipped passes included).",
    buckets=(0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0),
)
RECONCILE_RUNS = Counter(
    "flowdesk_reconcile_runs",
    "Runs reconcile checked, found changed, and failed to refresh.",
    ["result"],
)
LEASES_EXPIRED = Counter(
    "flowdesk_leases_expired", "Claims whose lease ran out and went back to the queue."
)
LOGINS_FAILED = Counter(
    "flowdesk_logins_failed", "Sign-ins refused: a wrong password, a locked-out name or address."
)
SUBMISSION_DELIVERIES = Counter(
    "flowdesk_submission_deliveries",
    "Delivery attempts of submissions, by outcome (delivered, rejected, refused, retry, failed, "
    "busy).",
    ["outcome"],
)


def flows_api_attempt(
    endpoint: str, *, seconds: float, status: int | None, error: str | None = None
) -> None:
    """One attempt of the Flows client: ``status`` when an answer came, ``error`` (timeout,
    connection, closed) when none did."""
    FLOWS_API_DURATION.labels(endpoint).observe(seconds)
    FLOWS_API_REQUESTS.labels(endpoint, f"{status // 100}xx" if status else "none").inc()
    if status is None:
        FLOWS_API_ERRORS.labels(endpoint, error or "connection").inc()
    elif status == 429:
        FLOWS_API_ERRORS.labels(endpoint, "http_429").inc()
    elif status >= 500:
        FLOWS_API_ERRORS.labels(endpoint, "http_5xx").inc()


def _login_failed(**_: Any) -> None:
    # ``credentials`` holds the username: counted, never logged or labelled.
    LOGINS_FAILED.inc()


user_login_failed.connect(_login_failed, dispatch_uid="flowdesk.metrics.login_failed")


def authorized(authorization: str | None, *, local: bool) -> bool | None:
    """Whether a scrape may read the metrics: True, False (ask for the token), or None (the
    endpoint is off: no token set, and not a development server asked from this machine)."""
    token = settings.METRICS_TOKEN
    if not token:
        return True if local and not settings.PRODUCTION else None
    scheme, _, given = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(
        given.strip().encode(), token.encode()
    )
