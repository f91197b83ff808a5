"""The mirror: run_create, run_refresh, reconcile and their races, against the real engine."""

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from flows_integration import client, services
from flows_integration.models import ApiHealth, FlowRun, SyncPass, TemplateVersion, WebhookEvent
from tests.documents import SIGN_OFF
from tests.flows_integration import faulty_server

pytestmark = pytest.mark.django_db(transaction=True)

COVERAGE_INPUT = {
    "patient": {"firstName": "Maria", "lastName": "Notfound", "dateOfBirth": "1980-02-29"},
    "payerId": "60054",
}


def wait_until_engine(flows_api, run_id: str, status: str, timeout: float = 20) -> client.RunInfo:
    deadline = time.monotonic() + timeout
    while (info := flows_api.get_run(run_id)).status != status:
        assert time.monotonic() < deadline, f"run stayed {info.status}"
        time.sleep(0.05)
    return info


def writes_to_mirror(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if "flows_integration_flowrun" in q["sql"]
        and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
    ]


def test_run_create_makes_the_run_and_its_mirror(flows_api):
    run = services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT, version=1)
    assert run.status == "CREATED"
    assert run.input_data == COVERAGE_INPUT
    assert flows_api.get_run(str(run.flow_run_id)).status in {"CREATED", "IN_PROGRESS", "PENDING"}


def test_a_run_created_without_a_version_is_pinned_to_the_latest_stored_one(flows_api):
    # Sohar's Get Run never names the version: without this the Run's pauses would have no form.
    services.templates_import()
    run = services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT)
    assert run.version is not None
    assert (
        run.version.number
        == TemplateVersion.objects.filter(template__template_id="coverage-check")
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )


def test_refresh_mirrors_get_run_imports_the_version_and_signals_once(
    flows_api, celery_worker, status_changes
):
    run = services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT, version=1)
    run_id = str(run.flow_run_id)
    wait_until_engine(flows_api, run_id, "PENDING")

    refreshed = services.run_refresh(run_id)

    assert refreshed.changed
    mirror = FlowRun.objects.get(flow_run_id=run_id)
    assert mirror.status == "PENDING"
    assert mirror.state_id == "collect-member-id"
    assert mirror.version.number == 1
    assert mirror.template.template_id == "coverage-check"
    assert mirror.remote_updated_at is not None
    assert TemplateVersion.objects.get(template__template_id="coverage-check", number=1)
    assert status_changes == [(run_id, "CREATED", "PENDING", "collect-member-id")]


def test_a_refresh_that_finds_nothing_new_writes_nothing(flows_api, celery_worker, status_changes):
    run = services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT, version=1)
    run_id = str(run.flow_run_id)
    wait_until_engine(flows_api, run_id, "PENDING")
    services.run_refresh(run_id)
    synced_at = FlowRun.objects.get(flow_run_id=run_id).synced_at

    with CaptureQueriesContext(connection) as queries:
        again = services.run_refresh(run_id)

    assert not again.changed
    assert writes_to_mirror(queries.captured_queries) == []
    assert FlowRun.objects.get(flow_run_id=run_id).synced_at == synced_at
    assert len(status_changes) == 1


def test_reconcile_finds_runs_whose_webhooks_were_lost_and_a_second_pass_writes_nothing(
    flows_api, celery_worker
):
    # No webhook endpoint is registered with the engine: every event is "lost".
    runs = [
        services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT, version=1)
        for _ in range(3)
    ]
    for run in runs:
        wait_until_engine(flows_api, str(run.flow_run_id), "PENDING")

    first = services.reconcile()
    assert (first.runs_checked, first.runs_changed, first.runs_failed) == (3, 3, 0)
    assert set(FlowRun.objects.values_list("status", flat=True)) == {"PENDING"}

    with CaptureQueriesContext(connection) as queries:
        second = services.reconcile()
    assert (second.runs_checked, second.runs_changed) == (3, 0)
    assert writes_to_mirror(queries.captured_queries) == []
    assert SyncPass.objects.count() == 2


def test_reconcile_skips_terminal_runs(flows_api):
    FlowRun.objects.create(flow_run_id=uuid.uuid4(), status="COMPLETE")
    assert services.reconcile().runs_checked == 0


def test_sync_and_webhooks_racing_on_one_run_give_one_row_and_one_signal(
    flows_api, celery_worker, status_changes
):
    run = services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT, version=1)
    run_id = str(run.flow_run_id)
    FlowRun.objects.filter(flow_run_id=run_id).delete()  # as if another system had created it
    wait_until_engine(flows_api, run_id, "PENDING")
    barrier = threading.Barrier(8)
    failures: list[BaseException] = []

    def refresh():
        try:
            barrier.wait()
            services.run_refresh(run_id, hint_state_id="collect-member-id")
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=refresh) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    assert FlowRun.objects.filter(flow_run_id=run_id).count() == 1
    assert status_changes == [(run_id, "", "PENDING", "collect-member-id")]


def use_faulty_server(settings, faulty):
    settings.FLOWS_API_URL = faulty.url
    settings.FLOWS_CLIENT_ID = faulty_server.CLIENT_ID
    settings.FLOWS_CLIENT_SECRET = faulty_server.CLIENT_SECRET
    client.reset_client()


def test_a_failing_api_is_recorded_for_the_banner_and_clears_on_success(
    flows_api, settings, live_server
):
    with faulty_server.FaultyServer() as faulty:
        faulty.always("GET", faulty_server.respond(503, {"error": "api_error"}))
        use_faulty_server(settings, faulty)
        with pytest.raises(client.TransientFlowsError):
            services.run_refresh(str(uuid.uuid4()))
    health = ApiHealth.objects.get()
    assert health.is_failing
    assert health.consecutive_failures == 1
    assert "503" in health.last_error

    settings.FLOWS_API_URL = f"{live_server.url}/flows-api"
    settings.FLOWS_CLIENT_ID, settings.FLOWS_CLIENT_SECRET = "test-sandbox", "sandbox-secret"
    client.reset_client()
    services.templates_import()
    run = services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT)
    services.run_refresh(str(run.flow_run_id))
    assert not ApiHealth.objects.get().is_failing


def test_reconcile_backs_off_on_429(flows_api, settings):
    for _ in range(3):
        FlowRun.objects.create(flow_run_id=uuid.uuid4(), status="PENDING")
    with faulty_server.FaultyServer() as faulty:
        faulty.always(
            "GET", faulty_server.respond(429, {"error": "rate_limited"}, {"Retry-After": "0"})
        )
        use_faulty_server(settings, faulty)
        sync_pass = services.reconcile(concurrency=1)
    assert sync_pass.throttled
    assert sync_pass.runs_failed >= 1
    assert sync_pass.runs_changed == 0


def test_templates_import_brings_every_version(flows_api):
    imported = services.templates_import()
    assert sorted(str(v) for v in imported) == [
        "billing-write-off v1",
        "coverage-check v1",
        "coverage-check v2",
        "prior-authorization v1",
    ]
    assert services.templates_import() == []


# --- The waiting state, and order independence -----------------------------------------------


def info(run_id, status, *, state_id=None, updated_at=None, **extra):
    return client.RunInfo(
        flow_run_id=run_id, status=status, state_id=state_id, updated_at=updated_at, **extra
    )


def test_a_pending_run_without_state_id_uses_the_webhook_hint(db):
    run_id = str(uuid.uuid4())
    services.mirror_apply(info(run_id, "PENDING"), hint_state_id="clinical-review")
    mirror = FlowRun.objects.get(flow_run_id=run_id)
    assert (mirror.state_id, mirror.state_unresolved) == ("clinical-review", False)


def test_a_pending_run_nothing_decides_is_flagged_not_guessed(db):
    run_id = str(uuid.uuid4())
    services.mirror_apply(info(run_id, "PENDING"))
    mirror = FlowRun.objects.get(flow_run_id=run_id)
    assert (mirror.state_id, mirror.state_unresolved) == ("", True)


def test_a_sync_without_state_id_keeps_the_state_a_webhook_told(db):
    run_id = str(uuid.uuid4())
    services.mirror_apply(info(run_id, "PENDING"), hint_state_id="clinical-review")
    services.mirror_apply(info(run_id, "PENDING", output={"note": "changed"}))  # Sohar's reconcile
    mirror = FlowRun.objects.get(flow_run_id=run_id)
    assert (mirror.state_id, mirror.state_unresolved) == ("clinical-review", False)


def test_the_runs_context_is_mirrored_when_the_server_shares_it(db):
    run_id = str(uuid.uuid4())
    services.mirror_apply(
        info(run_id, "IN_PROGRESS", input_data={"a": 1}, states={"discover": {"found": False}})
    )
    services.mirror_apply(info(run_id, "PENDING", state_id="collect", input_data={"a": 2}))
    mirror = FlowRun.objects.get(flow_run_id=run_id)
    # The input is written once; results are kept when an answer does not carry them.
    assert mirror.input_data == {"a": 1}
    assert mirror.state_results == {"discover": {"found": False}}


def test_a_version_with_one_callback_state_decides_it(db):
    single = services.version_store(template_id="sign-off", number=1, source=SIGN_OFF)
    run = FlowRun.objects.create(flow_run_id=uuid.uuid4(), status="IN_PROGRESS", version=single)
    services.mirror_apply(info(str(run.flow_run_id), "PENDING"))
    run.refresh_from_db()
    assert (run.state_id, run.state_unresolved) == ("sign-off", False)


T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
SNAPSHOTS = [
    ("IN_PROGRESS", "discover"),
    ("IN_PROGRESS", "coverage-found"),
    ("PENDING", "collect-member-id"),
    ("IN_PROGRESS", "collect-member-id"),
    ("IN_PROGRESS", "verify-entered"),
    ("COMPLETE", "verify-entered"),
]


@pytest.mark.django_db(transaction=False)
@hypothesis_settings(max_examples=40, deadline=None)
@given(order=st.permutations(range(len(SNAPSHOTS))), with_timestamps=st.booleans())
def test_any_order_of_a_runs_answers_ends_in_the_latest_state(order, with_timestamps):
    run_id = str(uuid.uuid4())
    answers = [
        info(
            run_id,
            status,
            state_id=state_id,
            updated_at=T0 + timedelta(seconds=i) if with_timestamps else None,
        )
        for i, (status, state_id) in enumerate(SNAPSHOTS)
    ]
    for index in order:
        services.mirror_apply(answers[index])
    # Get Run's answer after the last event, as event_process would fetch it, settles the rest.
    services.mirror_apply(answers[-1])
    mirror = FlowRun.objects.get(flow_run_id=run_id)
    assert (mirror.status, mirror.state_id) == SNAPSHOTS[-1]


def test_manage_sync_runs_reports_its_pass(flows_api, celery_worker):
    from io import StringIO

    from django.core.management import call_command

    run = services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT, version=1)
    wait_until_engine(flows_api, str(run.flow_run_id), "PENDING")
    out = StringIO()
    call_command("sync_runs", stdout=out)
    assert out.getvalue().startswith("checked 1, changed 1, failed 0")
    assert FlowRun.objects.get().status == "PENDING"


def test_one_refresh_answers_every_event_of_the_run_received_before_it(flows_api, celery_worker):
    run = services.run_create(template_id="coverage-check", input_data=COVERAGE_INPUT, version=1)
    run_id = str(run.flow_run_id)
    wait_until_engine(flows_api, run_id, "PENDING")
    # Stored directly, not through event_receive: the worker must not race this test for them.
    events = [
        WebhookEvent.objects.create(
            svix_id=f"msg_{i}",
            event_type="flow.updated",
            flow_run_id=run_id,
            status=status,
            payload={"event": "flow.updated", "flowRunId": run_id, "status": status},
        )
        for i, status in enumerate(["IN_PROGRESS", "IN_PROGRESS", "PENDING"])
    ]
    assert services.events_process([events[0].pk]) is not None
    assert all(
        processed for processed in WebhookEvent.objects.values_list("processed_at", flat=True)
    )
    # The other events' own tasks have nothing left to ask.
    assert services.events_process([events[1].pk]) is None
    assert services.events_process([events[2].pk]) is None
