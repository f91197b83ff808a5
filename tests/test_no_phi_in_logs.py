"""No patient's data in any log line, and none in any URL (the access logs of gunicorn and the
development server write every request line and its Referer).

A Run with sentinel patient values (a distinctive name, member id, date of birth and clinical
note) is started through the Flows client, run by the engine over real HTTP and mirrored by the
Celery task; then a reviewer works it through every page with Django's test client (queue,
search, live refresh, item, claim, form re-render, draft autosave, note, a refused and an
accepted submit), the delivery and refresh tasks run (Celery's own success lines included), and
a supervisor and an admin look at the Runs list, the Run and every admin page; signed and
unsigned webhooks carry the values too. Meanwhile every logger of the process logs at DEBUG into
one handler, and every request the server sees (the test client's and the Flows client's, which
are what an access log writes) is kept with its query string and Referer.
"""

import json
import logging
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.core.signals import request_started
from django.test import Client
from django.urls import NoReverseMatch, reverse
from standardwebhooks import Webhook

from config import health, logs
from flows_engine import services as engine_services
from flows_integration import client as flows_client
from flows_integration import services as integration
from flows_integration import tasks as integration_tasks
from flows_integration.models import FlowTemplate
from reviewqueue import services, tasks
from reviewqueue.models import ReviewItem, Route, Submission
from tests.flows_integration.faulty_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    FaultyServer,
    raw,
    respond,
)
from tests.reviewqueue.conftest import (  # noqa: F401
    CLINICAL_ANSWER,
    CLINICAL_INPUT,
    clinical_form_data,
    clinical_queue,
    pending_run,
    posted,
    prior_auth_version,
    reviewer,
    supervisor,
)

pytestmark = pytest.mark.django_db(transaction=True)

FIRST_NAME = "Zephyrine"
LAST_NAME = "Quillborrow"
MEMBER_ID = "QZW7744119"
BORN = "1931-07-19"
NOTE = "Sentinel tremor of the quillbone"
# Each value, and the other ways a page or a library might write it.
SENTINELS = {
    "first name": [FIRST_NAME],
    "last name": [LAST_NAME],
    "member id": [MEMBER_ID],
    "date of birth": [BORN, "07/19/1931", "19310719", "July 19, 1931", "Jul 19, 1931"],
    "clinical note": [NOTE, NOTE.replace(" ", "+"), NOTE.replace(" ", "%20")],
}
PATIENT_INPUT = {
    **CLINICAL_INPUT,
    "patient": {
        "firstName": FIRST_NAME,
        "lastName": LAST_NAME,
        "dateOfBirth": BORN,
        "memberId": MEMBER_ID,
    },
    "clinicalNotes": NOTE,
}
HX = {"HX-Request": "true"}
BACKGROUND = {"HX-Request": "true", "X-Flowdesk-Background": "1"}


def named(text: str) -> list[str]:
    """The sentinels ``text`` contains, by what they are."""
    lowered = text.lower()
    return [
        what for what, forms in SENTINELS.items() if any(form.lower() in lowered for form in forms)
    ]


def shown(leaks: list[str]) -> str:
    """Each leaking line by its first line and the text around the first sentinel in it."""
    found = []
    for line in leaks:
        lowered = line.lower()
        at = min(
            lowered.find(form.lower())
            for forms in SENTINELS.values()
            for form in forms
            if form.lower() in lowered
        )
        found.append(f"{line.splitlines()[0][:160]}\n    …{line[max(0, at - 200) : at + 60]!r}")
    return "\n".join(found)


# --- What is captured ------------------------------------------------------------------------


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        # The formatted line, its traceback and stack included, and any text the record
        # carries for structured handlers (Celery's ``data``, for one).
        extras = [
            repr(value)
            for name, value in vars(record).items()
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str | dict | list | tuple)
        ]
        self.lines.append(" ".join([self.format(record), *extras]))
        # ...and the line as production writes it: JSON with the bound context (request id,
        # task, run id) that config/logs.py adds.
        self.lines.append(_JSON.format(record))


_JSON = logs.formatter("json")


_RECORD_ATTRIBUTES = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message"}


# Loggers that write the data they handle at DEBUG (SQL with its parameters; a page's whole
# context for each variable it leaves unset): settings.LOGGING keeps them at INFO whatever
# LOG_LEVEL says, and so does this test. Every other logger logs at DEBUG here.
DATA_LOGGERS = ("django.db.backends", "django.template")


def _level_for(name: str) -> int:
    for pinned in DATA_LOGGERS:
        if name == pinned:
            return logging.getLevelName(django_settings.LOGGING["loggers"][pinned]["level"])
        if name.startswith(f"{pinned}."):
            return logging.NOTSET
    return logging.DEBUG


@pytest.fixture
def log_lines() -> Iterator[list[str]]:
    """Every record of every logger at DEBUG (but ``DATA_LOGGERS``): loggers that exist now
    get the handler and the level (some do not propagate: ``django.server``), later ones
    propagate to the root's."""
    capture = _Capture()
    loggers = [logging.getLogger()] + [
        each
        for each in logging.Logger.manager.loggerDict.values()
        if isinstance(each, logging.Logger)
    ]
    for name in ("django.server", "django.request", "django.security", "celery", "httpx"):
        logger = logging.getLogger(name)
        if logger not in loggers:
            loggers.append(logger)
    saved = [(logger, logger.level, logger.disabled) for logger in loggers]
    disabled = logging.root.manager.disable
    logging.disable(logging.NOTSET)
    for logger in loggers:
        logger.setLevel(_level_for(logger.name))
        logger.disabled = False
        logger.addHandler(capture)
    yield capture.lines
    for logger, level, was_disabled in saved:
        logger.removeHandler(capture)
        logger.setLevel(level)
        logger.disabled = was_disabled
    logging.disable(disabled)


@dataclass
class Requests:
    """What an access log writes of each request the server sees: the request line (with its
    query string), the Referer and the User-Agent."""

    lines: list[str] = field(default_factory=list)

    def record(self, sender: Any, environ: dict[str, Any] | None = None, **kwargs: Any) -> None:
        if environ is None:
            return
        query = environ.get("QUERY_STRING", "")
        self.lines.append(
            f'"{environ.get("REQUEST_METHOD")} {environ.get("PATH_INFO")}'
            f'{"?" + query if query else ""}" "{environ.get("HTTP_REFERER", "-")}" '
            f'"{environ.get("HTTP_USER_AGENT", "-")}"'
        )


@pytest.fixture
def access_log() -> Iterator[Requests]:
    requests = Requests()
    request_started.connect(requests.record, weak=False)
    yield requests
    request_started.disconnect(requests.record)


@pytest.fixture
def server_log(monkeypatch) -> None:
    """The live server writes its access log as the development server does (``django.server``,
    the request line with its query string), instead of keeping quiet as it does in tests."""
    from django.core.servers.basehttp import WSGIRequestHandler
    from django.test.testcases import QuietWSGIRequestHandler

    monkeypatch.setattr(QuietWSGIRequestHandler, "log_message", WSGIRequestHandler.log_message)


@pytest.fixture
def enqueued(monkeypatch) -> list[tuple[str, tuple]]:
    """Tasks sent on commit, kept instead of reaching the broker: the test runs them in this
    process with ``apply()``, through Celery's tracer and so with its log lines."""
    sent: list[tuple[str, tuple]] = []

    def recorder(name: str):
        def apply_async(args: tuple = (), **options: Any) -> None:
            sent.append((name, tuple(args)))

        return apply_async

    monkeypatch.setattr(tasks.deliver_submission, "apply_async", recorder("deliver"))
    monkeypatch.setattr(integration_tasks.refresh_run, "apply_async", recorder("refresh"))
    # The receiver hands its events to a timer that publishes them: kept here at the hand-off.
    monkeypatch.setattr(
        integration, "_enqueue_event", lambda event_id: sent.append(("event", (event_id,)))
    )
    return sent


# --- Pages as a browser would request them -----------------------------------------------------


_URL_ATTRIBUTE = re.compile(r'(?:href|src|action|hx-get|hx-post|hx-put|hx-delete)="([^"]*)"')


class Browser:
    """A test client that checks every page it is shown for URLs that name a patient: the
    browser would request them (into the access log) or send them as a Referer."""

    def __init__(self, user: Any) -> None:
        self.client = Client()
        self.client.force_login(user)
        self.urls: list[str] = []

    def get(self, url: str, data: Any = None, **kwargs: Any) -> Any:
        return self._seen(self.client.get(url, data, follow=True, **kwargs))

    def post(self, url: str, data: Any = None, **kwargs: Any) -> Any:
        return self._seen(self.client.post(url, data, follow=True, **kwargs))

    def _seen(self, response: Any) -> Any:
        self.urls += [location for location, _ in response.redirect_chain]
        for header in ("HX-Redirect", "HX-Location", "HX-Push-Url", "Location"):
            if header in response:
                self.urls.append(response[header])
        if "html" in response.get("Content-Type", ""):
            self.urls += _URL_ATTRIBUTE.findall(response.content.decode())
        return response


def _admin_pages(browser: Browser) -> int:
    """Every admin changelist and the change page of each model's first object."""
    seen = 0
    assert browser.get(reverse("admin:index")).status_code == 200
    for model in admin.site._registry:
        opts = model._meta
        try:
            changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        except NoReverseMatch:
            continue
        assert browser.get(changelist).status_code == 200, changelist
        seen += 1
        first = model.objects.order_by("pk").first()
        if first is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[first.pk])
            assert browser.get(change).status_code == 200, change
            seen += 1
    return seen


def _webhook_headers(body: bytes, secret: str) -> dict[str, str]:
    msg_id = f"msg_{uuid.uuid4().hex}"
    when = datetime.now(UTC)
    return {
        "svix-id": msg_id,
        "svix-timestamp": str(int(when.timestamp())),
        "svix-signature": Webhook(secret).sign(msg_id, when, body.decode()),
    }


def test_the_loggers_that_write_data_stay_at_info_even_when_debugging():
    from tests.config.test_settings import settings_of

    loggers = settings_of("LOGGING", LOG_LEVEL="DEBUG")["LOGGING"]["loggers"]
    for name in DATA_LOGGERS:
        assert logging.getLevelName(loggers[name]["level"]) >= logging.INFO, name


# --- The test --------------------------------------------------------------------------------


def test_no_log_line_and_no_url_names_a_patient(
    flows_api,
    clinical_queue,  # noqa: F811
    reviewer,  # noqa: F811
    supervisor,  # noqa: F811
    admin_user,
    enqueued,
    settings,
    log_lines,
    access_log,
    server_log,
    live_server,
):
    # As under `make run`: with DEBUG on, every SQL statement is logged (and must be dropped).
    settings.DEBUG = True
    # The Run: started through the Flows client, run by the engine, mirrored by the task.
    integration.templates_import()
    Route.objects.get_or_create(
        template=FlowTemplate.objects.get(template_id="prior-authorization"),
        defaults={"queue": clinical_queue},
    )
    run = integration.run_create(
        template_id="prior-authorization", input_data=PATIENT_INPUT, version=1
    )
    run_id = str(run.flow_run_id)
    engine_services.run_advance(run_id)
    integration_tasks.refresh_run.apply(args=[run_id])
    item = ReviewItem.objects.get(run__flow_run_id=run.flow_run_id)
    assert item.patient_name == f"{FIRST_NAME} {LAST_NAME}"
    item_url = reverse("reviewqueue:item", args=[item.pk])

    # A reviewer: the queue, a search for the patient, the live refresh, the item.
    alice = Browser(reviewer)
    page = alice.get(reverse("reviewqueue:queue"))
    assert LAST_NAME in page.content.decode()
    found = alice.post(reverse("reviewqueue:queue"), {"q": LAST_NAME, "status": "workable"})
    assert [row.pk for row in found.context["page"].items] == [item.pk]
    searched = found.redirect_chain[-1][0]
    alice.get(searched, headers=BACKGROUND)
    alice.post(reverse("reviewqueue:runs"), {"q": run_id[:8]})
    assert FIRST_NAME in alice.get(item_url).content.decode()
    # Claim, re-render the form, autosave a draft, add a note.
    alice.post(reverse("reviewqueue:item_claim", args=[item.pk]), headers=HX)
    alice.post(reverse("reviewqueue:item_claim", args=[item.pk]))  # taken: a 409 panel
    answer = posted(clinical_form_data())
    answer["rationale"] = [f"{NOTE}; {FIRST_NAME} {LAST_NAME}, born {BORN}, {MEMBER_ID}"]
    answer["diagnosisCodes.0.description"] = [NOTE]
    alice.post(
        reverse("reviewqueue:item_form", args=[item.pk]),
        {**answer, "~action": ["add:diagnosisCodes"]},
    )
    alice.post(
        reverse("reviewqueue:item_form", args=[item.pk]),
        {**answer, "decision": ["deny"], "~part": [""]},
        headers=HX,
    )
    draft = alice.post(reverse("reviewqueue:item_draft", args=[item.pk]), answer, headers=HX)
    assert draft.status_code == 200
    alice.post(reverse("reviewqueue:item_note", args=[item.pk]), {"body": NOTE}, headers=HX)
    alice.post(reverse("reviewqueue:item_note", args=[item.pk]), {"body": NOTE * 200}, headers=HX)
    # A refused submit (a field that fails its schema, holding PHI), then the answer.
    refused = {**answer, "diagnosisCodes.0.code": [MEMBER_ID]}
    assert alice.post(reverse("reviewqueue:item_submit", args=[item.pk]), refused).status_code
    assert not Submission.objects.exists()
    alice.post(reverse("reviewqueue:item_submit", args=[item.pk]), answer, headers=HX)
    submission = Submission.objects.get()
    # Delivery and the refresh after it, as the worker runs them.
    assert ("deliver", (submission.pk,)) in enqueued
    assert tasks.deliver_submission.apply(args=[submission.pk]).get() == "delivered"
    integration_tasks.refresh_run.apply(args=[run_id])
    alice.get(item_url)
    alice.get(item_url, headers=BACKGROUND)
    # Mistakes are logged by django.request with their path: make some.
    assert alice.get(reverse("reviewqueue:item", args=[item.pk + 1000])).status_code == 404
    assert alice.get(reverse("reviewqueue:item_submit", args=[item.pk])).status_code == 405

    # A supervisor: the Runs list, a search on it, the Run's page.
    sam = Browser(supervisor)
    sam.get(reverse("reviewqueue:runs"))
    sam.post(reverse("reviewqueue:runs"), {"q": run_id})
    assert LAST_NAME in sam.get(reverse("reviewqueue:run", args=[run_id])).content.decode()
    sam.get(reverse("reviewqueue:queue"))

    # Webhooks that carry the values: signed (stored and processed), unsigned (refused), and
    # signed but not JSON.
    webhook = "/flows/webhooks/"
    body = json.dumps(
        {
            "event": "flow.updated",
            "flowRunId": run_id,
            "status": "IN_PROGRESS",
            "stateId": "medical-director",
            "input": PATIENT_INPUT,
        }
    ).encode()
    hook = Client()
    signed = _webhook_headers(body, settings.FLOWS_WEBHOOK_SECRET)
    assert (
        hook.post(webhook, body, content_type="application/json", headers=signed).status_code < 300
    )
    for _, args in [sent for sent in enqueued if sent[0] == "event"]:
        integration_tasks.process_events.apply(args=[list(args)])
    hook.post(webhook, body, content_type="application/json")
    broken = f'{{"patient": "{FIRST_NAME} {LAST_NAME}", '.encode()
    hook.post(
        webhook,
        broken,
        content_type="application/json",
        headers=_webhook_headers(broken, settings.FLOWS_WEBHOOK_SECRET),
    )

    # Some of it again over real HTTP through the development server's request handler, with
    # the Referer a browser sends.
    cookie = alice.client.cookies[settings.SESSION_COOKIE_NAME].value
    with httpx.Client(
        base_url=live_server.url, cookies={settings.SESSION_COOKIE_NAME: cookie}, timeout=30
    ) as over_http:
        previous = ""
        for url in [reverse("reviewqueue:queue"), searched, item_url, reverse("reviewqueue:runs")]:
            headers = {"Referer": live_server.url + previous} if previous else {}
            assert over_http.get(url, headers=headers).status_code == 200, url
            previous = url

    # An admin: every admin page.
    ada = Browser(admin_user)
    assert _admin_pages(ada) > 10

    # Request ids a client made up from the patient's data are not taken; the probes and the
    # metrics (with the Run waiting in its queue) name nobody either.
    settings.LOG_REQUESTS = True
    settings.METRICS_TOKEN = "phi-test-metrics-token"
    for made_up in (f"{FIRST_NAME}-{LAST_NAME}", MEMBER_ID, BORN, NOTE):
        answer = alice.client.get(item_url, headers={"X-Request-ID": made_up})
        assert not named(answer["X-Request-ID"])
    for check in health.CACHED.values():
        check.forget()
    probes = [
        Client().get("/healthz"),
        Client().get("/readyz"),
        Client().get("/metrics", headers={"Authorization": "Bearer phi-test-metrics-token"}),
    ]
    assert b"flowdesk_queue_items" in probes[2].content
    assert [named(response.content.decode()) for response in probes] == [[], [], []]
    assert any('"request_id"' in line for line in log_lines), "JSON lines with a request id"
    assert any('"task"' in line for line in log_lines), "the tasks' context"

    # What was logged and requested: plenty, and none of it names the patient.
    assert any("clinical-review" in line or "flows " in line for line in log_lines)
    assert any(line.startswith("celery") for line in log_lines), "Celery's task lines"
    assert any(line.startswith("django.server") and "search=" in line for line in log_lines)
    assert any(line.startswith("django.request") for line in log_lines), "the 404 and 405"
    assert any("/flows-api/" in line for line in access_log.lines), "the Flows client's calls"
    leaks = [line for line in log_lines if named(line)]
    assert leaks == [], shown(leaks)
    requested = [line for line in access_log.lines if named(line)]
    assert requested == [], shown(requested)
    linked = [url for browser in (alice, sam, ada) for url in browser.urls if named(url)]
    assert linked == []


def test_the_flows_clients_failures_log_no_patient(
    pending_run,  # noqa: F811
    reviewer,  # noqa: F811
    enqueued,
    settings,
    log_lines,
):
    """A Flows API that echoes the input in its errors (Sohar's 400s name the bad value), in a
    5xx page, and in a body that is not JSON: the client's lines, the services' and Celery's
    (a task that fails logs its exception and traceback) name no patient."""
    echo = f"{FIRST_NAME} {LAST_NAME}, born {BORN}, member {MEMBER_ID}: {NOTE}"
    items = [pending_run(input_data=PATIENT_INPUT).review_items.get() for _ in range(3)]
    with FaultyServer() as server:
        settings.FLOWS_API_URL = server.url
        settings.FLOWS_CLIENT_ID = CLIENT_ID
        settings.FLOWS_CLIENT_SECRET = CLIENT_SECRET
        settings.FLOWS_READ_TIMEOUT = 2.0
        flows_client.reset_client()
        try:
            server.always(
                "POST /v1/flows/",
                respond(400, {"error": "invalid_input", "param": "patient", "message": echo}),
            )
            with pytest.raises(flows_client.FlowsError):
                integration.run_create(
                    template_id="prior-authorization", input_data=PATIENT_INPUT, version=1
                )
            server.always("GET /v1/flow-runs/", raw(503, echo.encode(), "text/html"))
            integration_tasks.refresh_run.apply(args=[str(items[0].run.flow_run_id)])
            answer = {**CLINICAL_ANSWER, "rationale": echo}
            refused = respond(
                400, {"error": "invalid_input", "param": "input.rationale", "message": echo}
            )
            puts = [refused, raw(502, echo.encode(), "text/plain"), raw(200, echo.encode())]
            outcomes = []
            for item, put in zip(items, puts, strict=True):
                server.plan("PUT /v1/flow-runs/", put)
                services.item_claim(item=item, user=reviewer)
                submission = services.submission_create(
                    item=item, user=reviewer, answer=answer, form_data=clinical_form_data()
                )
                outcomes.append(tasks.deliver_submission.apply(args=[submission.pk]).get())
        finally:
            flows_client.reset_client()
    assert outcomes[0] == "rejected"
    assert len(set(outcomes)) == 3, outcomes  # three ways through the delivery service
    assert any(line.startswith("flows_integration.client") for line in log_lines)
    assert any(line.startswith("celery") and "ERROR" in line for line in log_lines), (
        "the failed refresh task"
    )
    leaks = [line for line in log_lines if named(line)]
    assert leaks == [], shown(leaks)
