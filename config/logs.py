"""Logs: one line per event, JSON in production, and a request id that follows the work.

Every line, ours through structlog and every library's through the standard ``logging`` module,
goes through one ``structlog.stdlib.ProcessorFormatter`` (``logging_config()``): JSON objects in
production (``LOG_FORMAT=json``), ``key=value`` text for a person at a terminal otherwise.

The request id: ``config.middleware.request_id`` takes a sane ``X-Request-ID`` from the proxy or
makes one, binds it to the log context of the request (structlog's contextvars, so the standard
library's lines carry it too) and returns it as a response header. A task sent while it is bound
(on commit, by the request) carries it in its message headers (``before_task_publish``); the
worker binds it again for the task's lines (``task_prerun``), and so on to the tasks that task
sends. Nothing here logs what a request or task carries: ids, names and numbers only.
"""

import logging
import re
import uuid
from typing import Any

import structlog
from celery import signals

# The message header that carries the request id from the publisher to the worker.
TASK_HEADER = "flowdesk_request_id"
# What a proxy's id looks like: a UUID, nginx's $request_id (32 hex digits), Envoy's, Heroku's.
# Hex digits and dashes only, so that a header a client made up can carry neither a name nor
# a phrase into every log line of its request (tests/test_no_phi_in_logs.py).
_SANE_REQUEST_ID = re.compile(r"[0-9A-Fa-f][0-9A-Fa-f-]{15,63}")

# Added to every line, structlog's and the standard library's alike (``foreign_pre_chain``).
_SHARED: list[Any] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
]


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str | None:
    """``value`` when it looks like an id a proxy made, else None (a new one is made)."""
    if value and _SANE_REQUEST_ID.fullmatch(value):
        return value
    return None


def bound_request_id() -> str | None:
    """The request id of the request or task this thread is working for, if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None


def formatter(log_format: str = "console") -> structlog.stdlib.ProcessorFormatter:
    """The one formatter of every handler (named in ``LOGGING`` by its dotted path, so that the
    setting stays plain data): JSON objects, or ``key=value`` text for a person."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_SHARED,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )


def logging_config(*, log_format: str, level: str) -> dict[str, Any]:
    """``settings.LOGGING``: every handler renders through ``formatter()``.

    The loggers pinned at INFO or WARNING write data they handle at lower levels (SQL with its
    parameters, a page's whole context): ``LOG_LEVEL=DEBUG`` must not reach them
    (tests/test_no_phi_in_logs.py).
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"structured": {"()": "config.logs.formatter", "log_format": log_format}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "structured"}},
        "root": {"handlers": ["console"], "level": level},
        # httpx logs every URL at INFO; the URLs carry run ids, which are noise in production logs.
        # axes logs every failed sign-in with the username at INFO: the audit trail has them.
        # django.db.backends (with DEBUG on) and django.template log at DEBUG what they handle:
        # SQL with its parameters, a page's whole context for each variable it leaves unset.
        # Django's own handlers on "django" go: its plain console copy of each line, and
        # mail_admins, whose reports would carry a request's POST data and local variables.
        "loggers": {
            "django": {"handlers": [], "level": "INFO"},
            "django.db.backends": {"level": "INFO"},
            "django.template": {"level": "INFO"},
            "httpx": {"level": "WARNING"},
            "axes": {"level": "WARNING"},
        },
    }


def configure_structlog() -> None:
    """structlog's own loggers hand their events to the standard library, whose handlers render
    them with the formatter above (one format, one destination for every line)."""
    structlog.configure(
        processors=[
            *_SHARED,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


# --- The request id across Celery ------------------------------------------------------------


@signals.before_task_publish.connect(dispatch_uid="flowdesk.request_id.publish")
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    request_id = bound_request_id()
    if request_id and headers is not None:
        headers[TASK_HEADER] = request_id


@signals.task_prerun.connect(dispatch_uid="flowdesk.request_id.prerun")
def _bind_task_context(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    # A worker thread serves one task after another: start each from an empty context.
    structlog.contextvars.clear_contextvars()
    context: dict[str, Any] = {"task_id": task_id, "task": getattr(task, "name", None)}
    request = getattr(task, "request", None)
    request_id = sane_request_id(request.get(TASK_HEADER)) if request is not None else None
    if request_id:
        context["request_id"] = request_id
    structlog.contextvars.bind_contextvars(**context)


@signals.task_postrun.connect(dispatch_uid="flowdesk.request_id.postrun")
def _unbind_task_context(**_: Any) -> None:
    structlog.contextvars.clear_contextvars()


@signals.setup_logging.connect(dispatch_uid="flowdesk.logging")
def _keep_django_logging(**_: Any) -> None:
    """A receiver here stops Celery (worker and beat) from replacing the root logger's handlers
    with its own plain-text ones; Django's ``LOGGING`` applies, as in the web processes. Its
    ``--loglevel`` is then ignored: ``LOG_LEVEL`` decides. Applied only when Django has not
    configured logging yet, so that a worker started inside another process (the tests') leaves
    that process's handlers alone."""
    root = logging.getLogger()
    if any(isinstance(h.formatter, structlog.stdlib.ProcessorFormatter) for h in root.handlers):
        return
    from logging.config import dictConfig

    from django.conf import settings

    dictConfig(settings.LOGGING)
