"""Request ids: taken from the proxy when sane, else made; returned; carried into Celery tasks;
and every line, the standard library's too, as JSON in production."""

import json
import logging
import uuid

import pytest
import structlog
from django.http import HttpResponse
from django.test import Client, RequestFactory

from config import logs
from config.celery import app as celery_app
from config.middleware import request_id
from tests.config.test_settings import settings_of
from tests.waiting import eventually

SEEN: list[dict] = []


@celery_app.task(name="tests.config.test_logging.remember_context")
def remember_context() -> None:
    SEEN.append(dict(structlog.contextvars.get_contextvars()))
    logging.getLogger("tests.task").info("in the task")


def test_a_sane_incoming_id_is_kept_and_returned(db):
    given = str(uuid.uuid4())
    response = Client().get("/ping", headers={"X-Request-ID": given})
    assert response["X-Request-ID"] == given


@pytest.mark.parametrize(
    "given", ["Zephyrine Quillborrow", "short", "x" * 300, "<script>", "1931-07-19"]
)
def test_an_id_that_could_carry_words_is_replaced(db, given):
    response = Client().get("/ping", headers={"X-Request-ID": given})
    assert response["X-Request-ID"] != given
    assert logs.sane_request_id(response["X-Request-ID"])


def test_every_response_has_an_id_even_a_probe(db):
    assert len(Client().get("/healthz")["X-Request-ID"]) == 32


def test_lines_are_json_with_the_request_id():
    formatter = logs.formatter("json")
    record = logging.LogRecord(
        "django.request", logging.WARNING, "", 0, "Not Found: %s", ("/x",), None
    )
    structlog.contextvars.bind_contextvars(request_id="abc123")
    try:
        line = json.loads(formatter.format(record))
    finally:
        structlog.contextvars.clear_contextvars()
    assert line["event"] == "Not Found: /x"
    assert line["request_id"] == "abc123"
    assert line["level"] == "warning"
    assert line["logger"] == "django.request"
    assert "timestamp" in line


def test_django_lines_go_only_through_our_handler_and_never_by_mail():
    """Django attaches its own console copy and mail_admins to "django": a report by mail
    would carry a request's POST data (PHI) and its local variables."""
    django_logger = logging.getLogger("django")
    assert django_logger.handlers == []
    assert django_logger.propagate
    # pytest adds its capturing handlers beside ours.
    formatters = [handler.formatter for handler in logging.getLogger().handlers]
    assert any(isinstance(f, structlog.stdlib.ProcessorFormatter) for f in formatters)


def test_production_logs_json_and_development_text():
    assert settings_of("LOG_FORMAT", FLOWDESK_MODE="development")["LOG_FORMAT"] == "console"
    logging_setting = settings_of("LOGGING", LOG_FORMAT="json")["LOGGING"]
    assert logging_setting["formatters"]["structured"]["log_format"] == "json"


@pytest.mark.worker
def test_the_request_id_reaches_a_task_on_a_real_worker(celery_worker):
    SEEN.clear()
    given = uuid.uuid4().hex

    def view(request):
        remember_context.delay()
        return HttpResponse("queued")

    response = request_id(view)(RequestFactory().get("/", HTTP_X_REQUEST_ID=given))
    assert response["X-Request-ID"] == given
    context = eventually(lambda: SEEN and SEEN[0], what="the task to run")
    assert context["request_id"] == given
    assert context["task"] == "tests.config.test_logging.remember_context"
    # The publishing thread's context ends with its request.
    assert logs.bound_request_id() is None


def test_a_request_line_names_the_route_never_the_path(db, settings, caplog):
    """A password-reset link carries its token in the path: the request line must not."""
    settings.LOG_REQUESTS = True
    token_path = "/accounts/password/reset/MQ/set-password-token-0123456789/"
    with caplog.at_level(logging.INFO, logger="flowdesk.request"):
        Client().get(token_path)
        Client().get("/no/such/page/")
    lines = [record.msg for record in caplog.records if record.name == "flowdesk.request"]
    assert [line["route"] for line in lines] == [
        "/accounts/password/reset/<uidb64>/<token>/",
        "(unmatched)",
    ]
    assert "set-password-token" not in caplog.text
