"""Celery tasks of the integration: thin, idempotent, each calling one service."""

import time

import structlog
from celery import shared_task

from config import metrics
from flows_integration import client as flows_client
from flows_integration import services


@shared_task(
    acks_late=True,
    time_limit=120,
    autoretry_for=(flows_client.TransientFlowsError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=8,
)
def process_events(event_ids: list[int]) -> None:
    """Drain a batch of the inbox from these events (those a web process stored within a
    moment of each other); retried when one of their runs' Get Run fails in a way that may
    pass."""
    structlog.contextvars.bind_contextvars(events=len(event_ids))
    services.events_process(event_ids)


@shared_task(acks_late=True, time_limit=120)
def process_event(event_id: int) -> None:
    """One event's drain, as published before events were published together: the messages
    still queued when a deploy replaces the web processes."""
    process_events.delay([event_id])


@shared_task(acks_late=True, time_limit=120)
def refresh_run(flow_run_id: str) -> None:
    structlog.contextvars.bind_contextvars(flow_run_id=flow_run_id)
    services.run_refresh(flow_run_id)


@shared_task(time_limit=600, soft_time_limit=580)
def reconcile() -> dict[str, int]:
    started = time.monotonic()
    sync_pass = services.reconcile()
    metrics.RECONCILE_DURATION.observe(time.monotonic() - started)
    metrics.RECONCILE_RUNS.labels("checked").inc(sync_pass.runs_checked)
    metrics.RECONCILE_RUNS.labels("changed").inc(sync_pass.runs_changed)
    metrics.RECONCILE_RUNS.labels("failed").inc(sync_pass.runs_failed)
    return {
        "checked": sync_pass.runs_checked,
        "changed": sync_pass.runs_changed,
        "failed": sync_pass.runs_failed,
        "skipped": int(sync_pass.skipped),
    }


@shared_task(time_limit=60)
def sweep_inbox() -> int:
    return services.events_sweep()
