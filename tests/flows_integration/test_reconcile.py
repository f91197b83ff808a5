"""Reconcile writes a chunk of answers set-wise, and two passes never overlap.

``mirror_apply_many`` must follow exactly ``mirror_apply``'s rules (stale answers never roll
back, terminal runs stay, ``synced_at`` moves only with a change, one signal per real change,
sent inside the transaction), with a number of statements that does not grow with the chunk.
Get Run is replaced by answers held in a dict: what is tested here is the database side.
"""

import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from flows_integration import client, services
from flows_integration.models import FlowRun, SyncLease, SyncPass
from flows_integration.signals import run_status_changed, runs_status_changed
from tests.documents import SIGN_OFF

pytestmark = pytest.mark.django_db(transaction=True)

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


def answer(run, status, *, state_id=None, updated_at=None, **extra):
    return client.RunInfo(
        flow_run_id=str(run.flow_run_id if isinstance(run, FlowRun) else run),
        status=status,
        state_id=state_id,
        updated_at=updated_at,
        **extra,
    )


def mirror(status="IN_PROGRESS", **fields):
    fields.setdefault("remote_updated_at", T0)
    return FlowRun.objects.create(flow_run_id=uuid.uuid4(), status=status, **fields)


def apply_many(answers):
    return services.mirror_apply_many(answers, versions=services.VersionCache())


def flowrun_writes(queries) -> list[str]:
    return [
        q["sql"]
        for q in queries
        if "flows_integration_flowrun" in q["sql"]
        and q["sql"].lstrip().upper().startswith(("UPDATE", "INSERT", "DELETE"))
    ]


def test_a_chunk_is_written_once_and_announced_once_per_real_change(status_changes):
    moving = [mirror() for _ in range(3)]
    quiet = mirror("PENDING", state_id="collect-member-id")
    answers = [
        answer(run, "PENDING", state_id="collect-member-id", updated_at=T0 + timedelta(hours=1))
        for run in moving
    ] + [answer(quiet, "PENDING", state_id="collect-member-id", updated_at=T0)]

    with CaptureQueriesContext(connection) as queries:
        changed = apply_many(answers)

    assert sorted(run.pk for run in changed) == sorted(run.pk for run in moving)
    assert sorted(status_changes) == sorted(
        (str(run.flow_run_id), "IN_PROGRESS", "PENDING", "collect-member-id") for run in moving
    )
    # One UPDATE for the three, of the changed columns only (never input_data, say).
    [update] = flowrun_writes(queries.captured_queries)
    assert '"input_data"' not in update
    assert '"status"' in update and '"synced_at"' in update
    for run in moving:
        run.refresh_from_db()
        assert (run.status, run.state_id) == ("PENDING", "collect-member-id")
        assert run.remote_updated_at == T0 + timedelta(hours=1)
        assert run.synced_at is not None
    quiet.refresh_from_db()
    assert quiet.synced_at is None


def test_the_signal_is_sent_inside_the_transaction_after_the_row_is_written():
    run = mirror()
    seen = []

    def receiver(sender, changes, **kwargs):
        for change in changes:
            stored = FlowRun.objects.get(pk=change.run.pk)
            seen.append((connection.in_atomic_block, stored.status, sender))

    runs_status_changed.connect(receiver, weak=False)
    try:
        apply_many([answer(run, "PENDING", state_id="collect-member-id")])
    finally:
        runs_status_changed.disconnect(receiver)
    assert seen == [(True, "PENDING", FlowRun)]


def test_a_receiver_that_fails_rolls_the_chunk_back():
    runs = [mirror() for _ in range(2)]

    def receiver(**kwargs):
        raise RuntimeError("the review queue could not open its item")

    runs_status_changed.connect(receiver, weak=False)
    try:
        with pytest.raises(RuntimeError):
            apply_many([answer(run, "PENDING", state_id="collect-member-id") for run in runs])
    finally:
        runs_status_changed.disconnect(receiver)
    assert set(FlowRun.objects.values_list("status", flat=True)) == {"IN_PROGRESS"}


def test_stale_answers_and_terminal_runs_are_left_alone(status_changes):
    newer = mirror("PENDING", state_id="collect-member-id", remote_updated_at=T0)
    done = mirror("COMPLETE", remote_updated_at=None)
    answers = [
        answer(newer, "IN_PROGRESS", state_id="discover", updated_at=T0 - timedelta(seconds=1)),
        answer(done, "PENDING", state_id="collect-member-id"),
    ]

    with CaptureQueriesContext(connection) as queries:
        assert apply_many(answers) == []

    assert flowrun_writes(queries.captured_queries) == []
    assert status_changes == []
    newer.refresh_from_db()
    done.refresh_from_db()
    assert (newer.status, newer.state_id) == ("PENDING", "collect-member-id")
    assert done.status == "COMPLETE"


def test_a_quiet_chunk_neither_locks_nor_writes(status_changes):
    runs = [mirror("PENDING", state_id="collect-member-id") for _ in range(5)]
    answers = [answer(run, "PENDING", state_id="collect-member-id", updated_at=T0) for run in runs]

    with CaptureQueriesContext(connection) as queries:
        assert apply_many(answers) == []

    sqls = [q["sql"].upper() for q in queries.captured_queries]
    assert flowrun_writes(queries.captured_queries) == []
    assert not any("FOR UPDATE" in sql for sql in sqls)
    assert status_changes == []


def test_only_the_fields_that_moved_are_written_and_sync_error_is_cleared():
    output_moved = mirror("PENDING", state_id="collect-member-id", sync_error="timed out")
    status_moved = mirror()
    answers = [
        answer(output_moved, "PENDING", state_id="collect-member-id", output={"memberId": "1"}),
        answer(status_moved, "PENDING", state_id="collect-member-id"),
    ]

    with CaptureQueriesContext(connection) as queries:
        apply_many(answers)

    writes = flowrun_writes(queries.captured_queries)
    assert len(writes) == 2  # two sets of changed fields, one UPDATE each
    output_update = next(sql for sql in writes if '"output"' in sql)
    assert '"status"' not in output_update and '"sync_error"' in output_update
    output_moved.refresh_from_db()
    assert (output_moved.output, output_moved.sync_error) == ({"memberId": "1"}, "")


def test_every_kind_of_column_is_written_as_mirror_apply_would(status_changes):
    single = services.version_store(template_id="sign-off", number=1, source=SIGN_OFF)
    one, many = mirror(), mirror()
    kwargs = {
        "status": "ERROR",
        "state_id": "sign-off",
        "output": {"reason": "declined", "amount": 12.5},
        "errors": (client.RunError(status=400, param="memberId", error="bad", state="sign-off"),),
        "template_id": "sign-off",
        "version": 1,
        "created_at": T0 - timedelta(days=1),
        "updated_at": T0 + timedelta(minutes=5),
    }

    services.mirror_apply(answer(one, **kwargs))
    apply_many([answer(many, **kwargs)])

    one.refresh_from_db()
    many.refresh_from_db()
    for run in (one, many):
        assert (run.version_id, run.template_id) == (single.pk, single.template_id)
        assert run.errors == [
            {"status": 400, "param": "memberId", "error": "bad", "state": "sign-off"}
        ]
        assert run.output == {"reason": "declined", "amount": 12.5}
        assert run.remote_created_at == T0 - timedelta(days=1)
        assert run.remote_updated_at == T0 + timedelta(minutes=5)
        assert (run.status, run.state_id, run.state_unresolved) == ("ERROR", "sign-off", False)
    assert [change[1:] for change in status_changes] == [("IN_PROGRESS", "ERROR", "sign-off")] * 2


def test_statements_do_not_grow_with_the_chunk():
    def statements(count):
        runs = [mirror() for _ in range(count)]
        versions = services.VersionCache()
        answers = [answer(run, "PENDING", state_id="collect-member-id") for run in runs]
        with CaptureQueriesContext(connection) as queries:
            services.mirror_apply_many(answers, versions=versions)
        return len(queries.captured_queries)

    assert statements(2) == statements(40)


def test_missing_rows_are_created_in_one_insert_and_announced_from_nothing(status_changes):
    run_id = str(uuid.uuid4())

    with CaptureQueriesContext(connection) as queries:
        [created] = apply_many([answer(run_id, "PENDING", state_id="collect-member-id")])

    inserts = [sql for sql in flowrun_writes(queries.captured_queries) if "INSERT" in sql]
    assert len(inserts) == 1
    assert created.pk is not None
    assert FlowRun.objects.get(flow_run_id=run_id).state_id == "collect-member-id"
    assert status_changes == [(run_id, "", "PENDING", "collect-member-id")]


def test_a_row_inserted_by_a_refresh_meanwhile_is_applied_as_the_stored_row(
    monkeypatch, status_changes
):
    run_id = uuid.uuid4()
    insert = services._runs_insert

    def refresh_wins_the_race(runs):
        # What a webhook's refresh committing between our SELECT and our INSERT looks like.
        FlowRun.objects.create(flow_run_id=run_id, status="IN_PROGRESS")
        return insert(runs)

    monkeypatch.setattr(services, "_runs_insert", refresh_wins_the_race)

    changed = apply_many([answer(run_id, "PENDING", state_id="collect-member-id")])

    assert [run.flow_run_id for run in changed] == [run_id]
    assert FlowRun.objects.filter(flow_run_id=run_id).count() == 1
    assert status_changes == [(str(run_id), "IN_PROGRESS", "PENDING", "collect-member-id")]


def test_runs_raced_are_all_written_before_any_is_announced(monkeypatch):
    # Announcing opens items, which locks the audit trail's head until the transaction ends:
    # announcing one raced run before inserting the next let two drains deadlock, one holding
    # the head and waiting on a row the other had inserted, the other waiting for the head.
    first, second = sorted([uuid.uuid4(), uuid.uuid4()])
    insert = services._runs_insert

    def a_refresh_wins_the_race_for_the_first(runs):
        FlowRun.objects.create(flow_run_id=first, status="IN_PROGRESS")
        return insert(runs)

    monkeypatch.setattr(services, "_runs_insert", a_refresh_wins_the_race_for_the_first)
    stored_when_announced: list[set[uuid.UUID]] = []

    def record(**kwargs):
        stored = FlowRun.objects.filter(flow_run_id__in=[first, second])
        stored_when_announced.append(set(stored.values_list("flow_run_id", flat=True)))

    run_status_changed.connect(record, weak=False)
    runs_status_changed.connect(record, weak=False)
    try:
        changed = apply_many(
            [answer(run_id, "PENDING", state_id="collect-member-id") for run_id in (first, second)]
        )
    finally:
        run_status_changed.disconnect(record)
        runs_status_changed.disconnect(record)

    assert sorted(str(run.flow_run_id) for run in changed) == [str(first), str(second)]
    assert stored_when_announced == [{first, second}]


def test_the_version_decides_the_waiting_state_read_once_for_the_batch():
    single = services.version_store(template_id="sign-off", number=1, source=SIGN_OFF)
    runs = [mirror(version=single, template=single.template) for _ in range(3)]
    versions = services.VersionCache()

    with CaptureQueriesContext(connection) as queries:
        services.mirror_apply_many([answer(run, "PENDING") for run in runs], versions=versions)

    # One read of the batch's version before the rows are written, not one per run (what
    # receivers of the signal load afterwards is theirs).
    sqls = [q["sql"] for q in queries.captured_queries]
    written = next(i for i, sql in enumerate(sqls) if sql.startswith("UPDATE"))
    assert len([sql for sql in sqls[:written] if "templateversion" in sql]) == 1
    for run in runs:
        run.refresh_from_db()
        assert (run.state_id, run.state_unresolved) == ("sign-off", False)


def test_a_batch_reads_only_the_versions_it_names():
    stored = [
        services.version_store(
            template_id=f"sign-off-{n}", number=1, source=SIGN_OFF.replace("Sign-off", f"S{n}")
        )
        for n in range(5)
    ]
    first = mirror(version=stored[0], template=stored[0].template)
    versions = services.VersionCache()

    services.mirror_apply_many([answer(first, "PENDING")], versions=versions)
    assert len(versions) == 1
    # A later batch of the same pass reads only what it adds.
    second = mirror(version=stored[3], template=stored[3].template)
    with CaptureQueriesContext(connection) as queries:
        services.mirror_apply_many(
            [answer(first, "PENDING"), answer(second, "PENDING")], versions=versions
        )
    assert len(versions) == 2
    sqls = [q["sql"] for q in queries.captured_queries]
    written = next(i for i, sql in enumerate(sqls) if sql.startswith("UPDATE"))
    assert len([sql for sql in sqls[:written] if "templateversion" in sql]) == 1


def test_mirror_apply_and_mirror_apply_many_agree():
    compared = ("status", "state_id", "state_unresolved", "output", "remote_updated_at")
    for kwargs in (
        {"status": "PENDING", "state_id": "collect-member-id"},
        {"status": "PENDING"},  # nothing decides the state: flagged
        {"status": "COMPLETE", "output": {"ok": True}},
        {"status": "PENDING", "updated_at": T0 - timedelta(minutes=1)},  # stale
        {"status": "IN_PROGRESS", "updated_at": T0},  # nothing new
    ):
        one, many = mirror(), mirror()
        services.mirror_apply(answer(one, **kwargs))
        apply_many([answer(many, **kwargs)])
        one.refresh_from_db()
        many.refresh_from_db()
        assert [getattr(one, f) for f in compared] == [getattr(many, f) for f in compared]
        assert (one.synced_at is None) == (many.synced_at is None)


# --- Reconcile -------------------------------------------------------------------------------


@pytest.fixture
def get_run(monkeypatch):
    """Get Run answered from a dict: ``answers[flow_run_id] = RunInfo``; calls are counted."""
    answers: dict[str, client.RunInfo] = {}
    calls: list[str] = []

    def fake(flow_run_id):
        calls.append(flow_run_id)
        return answers[flow_run_id]

    monkeypatch.setattr(services.flows_client, "get_run", fake)
    return answers, calls


def test_reconcile_writes_chunks_set_wise_and_a_second_pass_writes_nothing(
    get_run, monkeypatch, status_changes
):
    answers, _ = get_run
    monkeypatch.setattr(services, "RECONCILE_CHUNK", 4)
    runs = [mirror() for _ in range(10)]
    for run in runs:
        answers[str(run.flow_run_id)] = answer(
            run, "PENDING", state_id="collect-member-id", updated_at=T0 + timedelta(hours=1)
        )

    with CaptureQueriesContext(connection) as queries:
        first = services.reconcile(concurrency=2)

    assert (first.runs_checked, first.runs_changed, first.runs_failed) == (10, 10, 0)
    assert len(flowrun_writes(queries.captured_queries)) == 3  # one UPDATE per chunk of 4
    assert len(status_changes) == 10

    with CaptureQueriesContext(connection) as queries:
        second = services.reconcile(concurrency=2)

    assert (second.runs_checked, second.runs_changed) == (10, 0)
    assert flowrun_writes(queries.captured_queries) == []
    assert len(status_changes) == 10


# --- The overlap guard -----------------------------------------------------------------------


TTL = timedelta(minutes=5)


def test_a_lease_has_one_holder_until_released():
    first = services.lease_acquire(name="job", ttl=TTL)
    assert first is not None
    assert services.lease_acquire(name="job", ttl=TTL) is None
    assert services.lease_acquire(name="other-job", ttl=TTL) is not None
    services.lease_release(first)
    assert services.lease_acquire(name="job", ttl=TTL) is not None


def test_a_lease_whose_holder_died_is_free_once_expired():
    with time_machine.travel(T0, tick=False):
        stalled = services.lease_acquire(name="job", ttl=TTL)
    assert stalled is not None
    with time_machine.travel(T0 + TTL - timedelta(seconds=1), tick=False):
        assert services.lease_acquire(name="job", ttl=TTL) is None
    with time_machine.travel(T0 + TTL + timedelta(seconds=1), tick=False):
        successor = services.lease_acquire(name="job", ttl=TTL)
    assert successor is not None
    # The stalled holder learns it lost the lease at its next renewal, and cannot release it.
    stalled.renewed_at -= TTL.total_seconds()
    assert not stalled.keep()
    services.lease_release(stalled)
    assert SyncLease.objects.get(name="job").holder == successor.holder


def test_a_holder_renews_its_lease_as_it_goes():
    with time_machine.travel(T0, tick=False):
        lease = services.lease_acquire(name="job", ttl=TTL)
    assert lease is not None
    lease.renewed_at -= TTL.total_seconds()  # as if a fifth of the TTL had passed
    with time_machine.travel(T0 + TTL - timedelta(seconds=1), tick=False):
        assert lease.keep()
    with time_machine.travel(T0 + TTL + timedelta(seconds=1), tick=False):
        assert services.lease_acquire(name="job", ttl=TTL) is None


def test_of_many_takers_at_once_exactly_one_gets_the_lease():
    barrier = threading.Barrier(6)
    won: list[bool] = []
    failures: list[BaseException] = []

    def take():
        try:
            barrier.wait()
            won.append(services.lease_acquire(name="job", ttl=TTL) is not None)
        except BaseException as exc:  # noqa: BLE001 - reported below
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=take) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert sorted(won) == [False] * 5 + [True]


def test_a_pass_that_finds_another_running_does_nothing_and_says_so(get_run):
    _, calls = get_run
    mirror()
    running = services.lease_acquire(name=services.RECONCILE_LEASE, ttl=TTL)
    assert running is not None

    skipped = services.reconcile()

    assert skipped.skipped
    assert (skipped.runs_checked, skipped.runs_changed) == (0, 0)
    assert calls == []
    assert SyncPass.objects.get().skipped
    services.lease_release(running)


def test_overlapping_passes_run_one_at_a_time(get_run, monkeypatch):
    answers, _ = get_run
    run = mirror()
    answers[str(run.flow_run_id)] = answer(run, "PENDING", state_id="collect-member-id")
    inside, release = threading.Event(), threading.Event()
    apply = services.mirror_apply_many

    def slow_apply(*args, **kwargs):
        inside.set()
        release.wait(30)
        return apply(*args, **kwargs)

    monkeypatch.setattr(services, "mirror_apply_many", slow_apply)
    results: list[SyncPass] = []

    def first_pass():
        try:
            results.append(services.reconcile())
        finally:
            connection.close()

    thread = threading.Thread(target=first_pass)
    thread.start()
    assert inside.wait(30)
    monkeypatch.setattr(services, "mirror_apply_many", apply)
    overlapping = services.reconcile()
    release.set()
    thread.join(60)

    assert overlapping.skipped
    assert [(p.skipped, p.runs_changed) for p in results] == [(False, 1)]
    # The lease was released: the next period's pass runs.
    assert not services.reconcile().skipped


def test_the_lease_is_released_when_a_pass_fails(get_run):
    mirror()  # no answer for it: the fake Get Run raises KeyError
    with pytest.raises(KeyError):
        services.reconcile()
    assert services.lease_acquire(name=services.RECONCILE_LEASE, ttl=TTL) is not None


def test_manage_sync_runs_says_when_another_pass_holds_the_lease(db):
    from io import StringIO

    from django.core.management import call_command

    held = services.lease_acquire(name=services.RECONCILE_LEASE, ttl=services.RECONCILE_LEASE_TTL)
    assert held is not None
    out = StringIO()
    call_command("sync_runs", stdout=out)
    assert out.getvalue().strip() == "skipped: another reconcile pass is running"
