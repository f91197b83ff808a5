"""The executor called directly: every state type, retries, catch, errors, sweeps and timeouts.

`services.run_advance` runs a Run synchronously in the test, so no worker is needed. What a step
enqueues is checked the way it really leaves: the on-commit callbacks are captured, and where it
matters which task and countdown they send, they are executed against the tests' real broker and
the queue is read back. Every status change writes a webhook message (a sandbox endpoint is
registered for that), which gives each test the Run's full history of transitions.
"""

import threading
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

import flowspec
from config.celery import app as celery_app
from flows_engine import services, webhooks
from flows_engine.models import (
    RUN_TRANSITIONS,
    Environment,
    Run,
    RunStatus,
    Template,
    TemplateVersion,
    WebhookMessage,
)
from tests.documents import WAIT_FIRST

PATIENT = {"firstName": "Maria", "lastName": "Smith", "dateOfBirth": "1980-02-29"}

REVIEW_APPROVE = {
    "decision": "approve",
    "diagnosisCodes": [{"code": "M17.11", "primary": True}],
    "criteria": {"guideline": "interqual", "met": True},
    "authorization": {"validFrom": "2026-03-02", "validThrough": "2026-06-01"},
    "reviewer": {"name": "Dana Whitfield", "credential": "RN"},
}

# Branches on a value from the input with no default, so a Run can find no matching branch.
NO_DEFAULT_CHOICE = """
metadata: {name: Route by colour}
input:
  type: object
  required: [colour]
  properties:
    colour: {type: string}
startsAt: route
states:
  route:
    type: choice
    choices:
      - when: {path: $input.colour, equals: red}
        next: stop
  stop:
    type: callback
    title: Stop
    input: {type: object, properties: {ok: {type: boolean}}}
    end: true
"""


@pytest.fixture
def sandbox(engine_clients):
    return engine_clients["sandbox"]


@pytest.fixture
def endpoint(db):
    """A sandbox endpoint, so every transition leaves a webhook message behind."""
    return webhooks.endpoint_register(
        url="http://127.0.0.1:9/webhooks", environment=Environment.SANDBOX
    )


def broker_purge() -> None:
    celery_app.control.purge()


def broker_drain() -> list[tuple[str, list, str | None]]:
    """(task name, args, eta) of every message waiting in the tests' broker, removing them."""
    found = []
    with celery_app.connection_for_read() as conn:
        channel = conn.default_channel
        while (message := channel.basic_get(queue="celery", no_ack=True)) is not None:
            args = message.decode()[0]
            found.append((message.headers["task"], list(args), message.headers.get("eta")))
    return found


def history(run: Run) -> list[tuple[str, str]]:
    """(status, stateId) of every webhook message of the Run, in the order they were written."""
    return [
        (m.payload["status"], m.payload["stateId"])
        for m in WebhookMessage.objects.filter(run=run).order_by("pk")
    ]


def assert_transitions_allowed(run: Run) -> None:
    statuses = [RunStatus.CREATED, *(status for status, _ in history(run))]
    for before, after in zip(statuses, statuses[1:], strict=False):
        assert after in RUN_TRANSITIONS[before], f"{before} -> {after} in {history(run)}"


def start(client, template_id: str, input_data: dict, version: int | None = None) -> Run:
    return services.run_create(
        client=client, template_id=template_id, input_data=input_data, version=version
    )


def advance(run: Run) -> Run:
    services.run_advance(run.pk)
    run.refresh_from_db()
    return run


def update(client, run: Run, data: dict) -> Run:
    services.run_update(client=client, run_id=run.pk, input=data)
    return advance(run)


def wake_now(run: Run) -> None:
    """Move a scheduled retry or a callback's deadline into the past instead of sleeping."""
    Run.objects.filter(pk=run.pk).update(wake_at=timezone.now() - timedelta(seconds=1))


# --- Every state type ------------------------------------------------------------------------


def test_found_and_active_goes_request_choice_request_to_complete(
    sandbox, endpoint, demo_templates
):
    run = advance(start(sandbox, "coverage-check", {"patient": PATIENT, "payerId": "60054"}, 1))

    assert run.status == RunStatus.COMPLETE
    assert history(run) == [
        ("IN_PROGRESS", "discover"),
        ("IN_PROGRESS", "coverage-found"),
        ("IN_PROGRESS", "verify-discovered"),
        ("COMPLETE", "verify-discovered"),
    ]
    assert run.output["eligibility"]["active"] is True
    assert run.output["discovered"]["found"] is True
    assert run.errors == []
    assert run.step == 4
    assert_transitions_allowed(run)


def test_not_found_pauses_at_a_callback_and_resumes_with_the_input(
    sandbox, endpoint, demo_templates
):
    patient = {**PATIENT, "lastName": "Notfound"}
    run = advance(start(sandbox, "coverage-check", {"patient": patient, "payerId": "60054"}, 1))
    assert (run.status, run.state_id) == (RunStatus.PENDING, "collect-member-id")
    assert run.wake_at is not None  # the callback's 24-hour timeout

    run = update(sandbox, run, {"memberId": "00000000"})

    assert run.status == RunStatus.COMPLETE
    assert run.wake_at is None
    assert run.state_outputs["collect-member-id"] == {"memberId": "00000000"}
    assert run.output["enteredMemberId"] == "00000000"
    assert run.output["eligibilityFromEnteredId"]["active"] is True
    assert history(run) == [
        ("IN_PROGRESS", "discover"),
        ("IN_PROGRESS", "coverage-found"),
        ("PENDING", "collect-member-id"),
        ("IN_PROGRESS", "collect-member-id"),
        ("IN_PROGRESS", "verify-entered"),
        ("COMPLETE", "verify-entered"),
    ]
    assert_transitions_allowed(run)


def test_a_callback_state_with_end_completes_the_run(sandbox, endpoint, demo_templates):
    patient = {**PATIENT, "lastName": "Lapsed"}
    run = advance(start(sandbox, "coverage-check", {"patient": patient, "payerId": "60054"}, 1))
    assert (run.status, run.state_id) == (RunStatus.PENDING, "coverage-inactive")

    run = update(sandbox, run, {"nextStep": "self-pay"})

    assert (run.status, run.state_id) == (RunStatus.COMPLETE, "coverage-inactive")
    assert run.output["inactiveFollowUp"] == {"nextStep": "self-pay"}
    assert history(run)[-2:] == [
        ("IN_PROGRESS", "coverage-inactive"),
        ("COMPLETE", "coverage-inactive"),
    ]
    assert_transitions_allowed(run)


def test_a_run_starting_at_a_callback_goes_straight_to_pending(sandbox, endpoint):
    services.version_publish(template_id="wait-first", source=WAIT_FIRST)
    run = advance(start(sandbox, "wait-first", {}))
    assert (run.status, run.state_id) == (RunStatus.PENDING, "wait")
    assert history(run) == [("PENDING", "wait")]

    run = update(sandbox, run, {"ok": True})

    assert (run.status, run.state_id) == (RunStatus.COMPLETE, "wait")
    assert run.output == {}
    assert_transitions_allowed(run)


def test_create_enqueues_one_advance_task_on_commit(
    sandbox, demo_templates, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        run = start(sandbox, "coverage-check", {"patient": PATIENT, "payerId": "60054"})
    assert len(callbacks) == 1
    assert Run.objects.get(pk=run.pk).status == RunStatus.CREATED

    broker_purge()
    callbacks[0]()
    assert broker_drain() == [("flows_engine.tasks.advance_run", [str(run.pk)], None)]


# --- Retries ---------------------------------------------------------------------------------


def prior_auth_input(member_id: str = "W1234567", code: str = "99213") -> dict:
    return {
        "patient": {**PATIENT, "memberId": member_id},
        "payerId": "60054",
        "provider": {"npi": "1234567890", "name": "Dr. Rivera"},
        "procedureCodes": [code],
        "serviceDate": "2026-03-02",
    }


@pytest.fixture
def still_clock():
    """The clock stands still: a retry's wait is measured exactly, and "too early" stays too
    early however long a loaded machine takes between the steps."""
    with time_machine.travel(timezone.now(), tick=False) as traveller:
        yield traveller


def test_a_transient_failure_schedules_a_retry_with_backoff(
    sandbox, endpoint, demo_templates, django_capture_on_commit_callbacks, still_clock
):
    # verify-coverage retries 4 times, 2 s apart at first; FLAKY fails the first attempt only.
    run = start(sandbox, "prior-authorization", prior_auth_input(member_id="FLAKY"))
    with django_capture_on_commit_callbacks() as callbacks:
        run = advance(run)

    assert (run.status, run.state_id) == (RunStatus.IN_PROGRESS, "verify-coverage")
    assert run.attempt == 1
    assert timedelta(seconds=1) < run.wake_at - timezone.now() <= timedelta(seconds=2)
    assert history(run) == [("IN_PROGRESS", "verify-coverage")]  # a retry is no transition
    broker_purge()
    for callback in callbacks:
        callback()
    tasks = [task for task in broker_drain() if task[0] == "flows_engine.tasks.advance_run"]
    assert len(tasks) == 1
    assert tasks[0][1] == [str(run.pk)]
    assert tasks[0][2] is not None  # sent with a countdown: the retry's ETA

    step = run.step
    run = advance(run)  # too early: nothing happens
    assert (run.step, run.attempt) == (step, 1)

    wake_now(run)
    run = advance(run)
    # The second attempt succeeded; estimate-cost then met FLAKY's first failure in turn, and
    # its own counter started again from one.
    assert run.state_outputs["verify-coverage"]["active"] is True
    assert (run.state_id, run.attempt) == ("estimate-cost", 1)
    assert run.wake_at > timezone.now()

    wake_now(run)
    run = advance(run)
    assert (run.status, run.state_id) == (RunStatus.PENDING, "clinical-review")
    assert run.attempt == 0
    assert_transitions_allowed(run)


def test_retries_that_run_out_follow_the_catch_and_record_the_error(
    sandbox, endpoint, demo_templates
):
    patient = {**PATIENT, "lastName": "Down"}
    run = advance(start(sandbox, "coverage-check", {"patient": patient, "payerId": "60054"}, 1))
    for attempt in (1, 2):
        assert (run.state_id, run.attempt) == ("discover", attempt)
        wake_now(run)
        run = advance(run)

    assert (run.status, run.state_id) == (RunStatus.PENDING, "collect-member-id")
    assert run.state_outputs["discover"] == {
        "error": {"error": "ProductUnavailable", "param": None, "status": 503}
    }
    assert history(run) == [("IN_PROGRESS", "discover"), ("PENDING", "collect-member-id")]
    assert_transitions_allowed(run)


def test_a_product_error_is_caught_without_retrying(sandbox, endpoint, demo_templates):
    patient = {**PATIENT, "lastName": "Error"}
    run = advance(start(sandbox, "coverage-check", {"patient": patient, "payerId": "60054"}, 1))
    assert (run.status, run.state_id) == (RunStatus.PENDING, "collect-member-id")
    assert run.state_outputs["discover"]["error"]["error"] == "ProductError"
    assert run.state_outputs["discover"]["error"]["status"] == 500


# --- Errors ----------------------------------------------------------------------------------


def test_an_uncaught_product_error_ends_the_run_in_error(sandbox, endpoint, demo_templates):
    # verify-coverage catches InvalidRequest and ProductUnavailable, not ProductError.
    run = advance(start(sandbox, "prior-authorization", prior_auth_input(member_id="ERROR")))

    assert (run.status, run.state_id) == (RunStatus.ERROR, "verify-coverage")
    assert run.errors == [
        {"status": 500, "param": None, "error": "api_error", "state": "verify-coverage"}
    ]
    assert run.output == {}
    assert history(run)[-1] == ("ERROR", "verify-coverage")
    assert_transitions_allowed(run)


def test_an_invalid_request_names_the_param_in_the_errors(sandbox, endpoint, demo_templates):
    # The input schema only checks the date's format; Discovery refuses a birth in the future.
    patient = {**PATIENT, "dateOfBirth": "2999-01-01"}
    run = advance(start(sandbox, "coverage-check", {"patient": patient, "payerId": "60054"}, 1))

    assert run.status == RunStatus.ERROR
    assert run.errors == [
        {
            "status": 400,
            "param": "dateOfBirth",
            "error": "invalid_request_error",
            "state": "discover",
        }
    ]
    assert_transitions_allowed(run)


def test_a_choice_without_a_match_or_default_ends_in_error(sandbox, endpoint):
    services.version_publish(template_id="colours", source=NO_DEFAULT_CHOICE)

    run = advance(start(sandbox, "colours", {"colour": "blue"}))

    assert (run.status, run.state_id) == (RunStatus.ERROR, "route")
    assert run.errors == [
        {"status": 400, "param": None, "error": "no_choice_matched", "state": "route"}
    ]
    assert_transitions_allowed(run)

    matched = advance(start(sandbox, "colours", {"colour": "red"}))
    assert (matched.status, matched.state_id) == (RunStatus.PENDING, "stop")


# --- A step applied once ---------------------------------------------------------------------


def test_advancing_a_run_again_changes_nothing(sandbox, endpoint, demo_templates):
    patient = {**PATIENT, "lastName": "Notfound"}
    run = advance(start(sandbox, "coverage-check", {"patient": patient, "payerId": "60054"}, 1))
    before = (run.status, run.state_id, run.step, run.updated_at, history(run))

    run = advance(advance(run))

    assert (run.status, run.state_id, run.step, run.updated_at, history(run)) == before


@pytest.mark.django_db(transaction=True)
def test_two_workers_advancing_one_run_apply_each_state_once(
    sandbox, endpoint, demo_templates, settings
):
    # Both workers call the slow product for the same step; only the first answer is applied,
    # the other is thrown away because the step moved on.
    settings.FLOWS_ENGINE_PRODUCT_LATENCY_MS = 300
    patient = {**PATIENT, "lastName": "Notfound"}
    run = start(sandbox, "coverage-check", {"patient": patient, "payerId": "60054"}, 1)
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def worker() -> None:
        try:
            barrier.wait(timeout=5)
            services.run_advance(run.pk)
        except BaseException as exc:  # reported in the test's thread
            failures.append(exc)
        finally:
            connection.close()

    try:
        threads = [threading.Thread(target=worker) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        assert not failures
        assert not any(thread.is_alive() for thread in threads)
    finally:
        broker_purge()  # the advance and delivery tasks that commits sent, with no worker

    run.refresh_from_db()
    assert (run.status, run.state_id, run.step) == (RunStatus.PENDING, "collect-member-id", 3)
    assert history(run) == [
        ("IN_PROGRESS", "discover"),
        ("IN_PROGRESS", "coverage-found"),
        ("PENDING", "collect-member-id"),
    ]


# --- The sweep and callback timeouts ---------------------------------------------------------


def backdate(run: Run, minutes: int = 10) -> None:
    Run.objects.filter(pk=run.pk).update(updated_at=timezone.now() - timedelta(minutes=minutes))


def test_the_sweep_re_enqueues_stale_runs_whose_retry_is_due(
    sandbox, endpoint, demo_templates, django_capture_on_commit_callbacks
):
    created = start(sandbox, "coverage-check", {"patient": PATIENT, "payerId": "60054"})
    backdate(created)
    flaky = prior_auth_input(member_id="FLAKY")
    retry_due = advance(start(sandbox, "prior-authorization", flaky))
    wake_now(retry_due)
    backdate(retry_due)
    retry_later = advance(start(sandbox, "prior-authorization", flaky))
    backdate(retry_later)  # its wake_at is still 2 s ahead: its own task comes back then
    fresh = advance(start(sandbox, "prior-authorization", flaky))
    wake_now(fresh)  # due, but touched just now: its worker may still be on it
    pending = advance(
        start(sandbox, "coverage-check", {"patient": {**PATIENT, "lastName": "Notfound"}}, 2)
    )
    backdate(pending)
    lost = WebhookMessage.objects.filter(run=retry_due)
    lost.update(next_attempt_at=timezone.now() - timedelta(minutes=10))

    broker_purge()
    with django_capture_on_commit_callbacks(execute=True):
        counts = services.sweep()

    assert counts == {"stuck_runs": 2, "timed_out": 0, "webhooks": 1}
    sent = broker_drain()
    advanced = sorted(args[0] for task, args, _ in sent if task.endswith("advance_run"))
    assert advanced == sorted([str(created.pk), str(retry_due.pk)])
    delivered = [args[0] for task, args, _ in sent if task.endswith("deliver_webhook")]
    assert delivered == [lost.get().pk]


def test_a_callback_timeout_applies_the_timeout_input_once(
    sandbox, endpoint, demo_templates, django_capture_on_commit_callbacks
):
    patient = {**PATIENT, "lastName": "Notfound"}
    run = advance(start(sandbox, "coverage-check", {"patient": patient, "payerId": "60054"}, 1))
    assert timedelta(hours=23) < run.wake_at - timezone.now() <= timedelta(hours=24)
    assert services.run_time_out(run.pk) == 0
    assert services.sweep()["timed_out"] == 0

    wake_now(run)
    with django_capture_on_commit_callbacks() as callbacks:
        assert services.sweep()["timed_out"] == 1
    assert len(callbacks) == 2  # the advance task and the webhook for IN_PROGRESS
    assert services.run_time_out(run.pk) == 0
    run.refresh_from_db()
    assert (run.status, run.state_id, run.wake_at) == (
        RunStatus.IN_PROGRESS,
        "collect-member-id",
        None,
    )
    assert run.state_outputs["collect-member-id"] == {"memberId": "UNKNOWN"}

    run = advance(run)
    assert run.status == RunStatus.COMPLETE
    assert run.output["eligibilityFromEnteredId"]["status"] == "not_found"
    assert history(run).count(("IN_PROGRESS", "collect-member-id")) == 1
    assert_transitions_allowed(run)


# --- Versions --------------------------------------------------------------------------------


def test_publishing_numbers_versions_from_one(db):
    numbers = [
        services.version_publish(template_id="wait-first", source=WAIT_FIRST).number
        for _ in range(3)
    ]
    assert numbers == [1, 2, 3]
    assert services.version_get(template_id="wait-first").number == 3
    assert services.version_get(template_id="wait-first", number=2).number == 2


@pytest.mark.parametrize(
    "source",
    [
        WAIT_FIRST.replace("startsAt: wait", "startsAt: nowhere"),
        WAIT_FIRST.replace("end: true", "next: gone"),
        WAIT_FIRST.replace("type: callback", "type: request"),
        "metadata: [not, a, mapping",
    ],
)
def test_an_invalid_template_writes_nothing(db, source):
    services.version_publish(template_id="wait-first", source=WAIT_FIRST)

    for template_id in ("wait-first", "brand-new"):
        with pytest.raises(flowspec.TemplateInvalid):
            services.version_publish(template_id=template_id, source=source)

    assert list(Template.objects.values_list("template_id", flat=True)) == ["wait-first"]
    assert TemplateVersion.objects.count() == 1


# --- Prior authorization ---------------------------------------------------------------------


def test_a_high_cost_approval_goes_to_supervisor_sign_off(sandbox, endpoint, demo_templates):
    run = advance(start(sandbox, "prior-authorization", prior_auth_input(code="29881")))
    assert (run.status, run.state_id) == (RunStatus.PENDING, "clinical-review")
    assert run.state_outputs["estimate-cost"]["estimatedCost"] > 5000

    run = update(sandbox, run, REVIEW_APPROVE)
    assert (run.status, run.state_id) == (RunStatus.PENDING, "supervisor-signoff")

    signoff = {"signoff": "upheld", "signedBy": "Dr. Alan Cho", "signedOn": "2026-02-20"}
    run = update(sandbox, run, signoff)
    assert (run.status, run.state_id) == (RunStatus.COMPLETE, "supervisor-signoff")
    assert run.output["signoff"] == signoff
    assert run.output["decision"] == "approve"
    assert "network" not in run.output
    assert_transitions_allowed(run)


def test_a_low_cost_approval_checks_the_network_and_completes(sandbox, endpoint, demo_templates):
    run = advance(start(sandbox, "prior-authorization", prior_auth_input(code="99213")))
    run = update(sandbox, run, REVIEW_APPROVE)

    assert (run.status, run.state_id) == (RunStatus.COMPLETE, "confirm-network")
    assert run.output["network"] == {"inNetwork": True, "tier": "preferred"}
    assert [state for status, state in history(run) if status == "PENDING"] == ["clinical-review"]
    assert_transitions_allowed(run)
