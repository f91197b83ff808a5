"""`make run`'s demo history: two weeks of finished work, so the supervisors' dashboard shows
something on first start, without the mirror's sync ever asking the engine about it."""

import time
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models import F, Q
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import verify_chain
from flows_integration import services as integration
from flows_integration.models import FlowRun, RunStatus
from reviewqueue import demo, demo_history
from reviewqueue.models import (
    ItemReason,
    ItemStatus,
    ReasonKind,
    ReviewItem,
    Submission,
    SubmissionStatus,
)

HISTORY = Q(action__startswith="item.") | Q(action__startswith="submission.")


def history_counts() -> tuple[int, ...]:
    return (
        FlowRun.objects.count(),
        ReviewItem.objects.count(),
        Submission.objects.count(),
        ItemReason.objects.count(),
        AuditEvent.objects.filter(action__startswith="item.").count(),
        AuditEvent.objects.filter(action__startswith="submission.").count(),
    )


# A Monday's mid-morning, and a Sunday's early morning after a quiet weekend.
MOMENTS = [datetime(2026, 5, 11, 10, 30, tzinfo=UTC), datetime(2026, 12, 6, 7, 0, tzinfo=UTC)]


@pytest.fixture(params=MOMENTS, ids=["monday", "sunday"])
def loaded(request, db, role_groups):
    """load_demo at a fixed moment; how long it took."""
    with time_machine.travel(request.param, tick=False):
        started = time.perf_counter()
        call_command("load_demo", "--demo", "--history", stdout=StringIO())
        took = time.perf_counter() - started
        yield took


def test_load_demo_makes_two_weeks_of_finished_work_across_queues_and_people(loaded):
    done = ReviewItem.objects.filter(status=ItemStatus.RESUMED)
    assert done.count() >= 300
    closed = [at for at in done.values_list("closed_at", flat=True) if at is not None]
    assert max(closed) - min(closed) > timedelta(days=12)
    assert len({at.date() for at in closed}) >= 12
    assert done.values("queue").distinct().count() == 4
    answerers = Submission.objects.filter(status=SubmissionStatus.DELIVERED)
    assert set(answerers.values_list("submitted_by__username", flat=True)) == {
        "alice",
        "bob",
        "maria",
    }
    breached = done.filter(closed_at__gt=F("due_at")).count()
    assert 0 < breached < done.count() / 3
    # Declined, postponed and returned, each with one of its queue's reason codes.
    reasons = ItemReason.objects.all()
    assert {r.kind for r in reasons} == set(ReasonKind)
    assert all(r.reason is not None and r.reason.queue_id == r.item.queue_id for r in reasons)
    # A few answers Flows rejected, and two items whose answer waits for a supervisor.
    assert Submission.objects.filter(status=SubmissionStatus.REJECTED).count() >= 3
    assert ReviewItem.objects.filter(status=ItemStatus.NEEDS_ATTENTION).count() == 2
    # Made-up people only.
    names = set(ReviewItem.objects.values_list("patient_name", flat=True))
    assert all(name.split()[0] in demo_history.FIRST_NAMES for name in names)
    # Quick enough for every first `make run` (the whole command, engine seed and logins too).
    assert loaded < 10


def test_the_audit_chain_holds_and_claims_give_handle_times(loaded):
    out = StringIO()
    call_command("verify_audit", stdout=out)

    assert "The audit trail holds" in out.getvalue()
    assert verify_chain()[1] is None
    # Every answer has its answerer's claim before it, in the trail: the handle time. (Not an
    # item returned for rework: it is claimed for its earlier answerer, who never claims it.)
    claims: dict[tuple[int | None, int | None], list[datetime]] = {}
    for item_id, actor_id, at in AuditEvent.objects.filter(action="item.claimed").values_list(
        "item_id", "actor_id", "at"
    ):
        claims.setdefault((item_id, actor_id), []).append(at)
    answers = Submission.objects.filter(status=SubmissionStatus.DELIVERED)
    for item_id, user_id, at, kept in answers.filter(item__returned_to=None).values_list(
        "item_id", "submitted_by_id", "created_at", "claimed_at"
    ):
        # ... and keeps it, as submission_create does: the latest one at or before it.
        assert kept == max(claimed for claimed in claims[item_id, user_id] if claimed <= at)
    assert not answers.filter(created_at__gt=timezone.now()).exists()


def test_loading_twice_adds_nothing(loaded):
    before = history_counts()

    call_command("load_demo", "--demo", "--history", stdout=StringIO())

    assert history_counts() == before
    assert verify_chain()[1] is None


def test_reconcile_never_asks_the_engine_about_the_history(loaded, monkeypatch):
    asked: list[object] = []
    monkeypatch.setattr(integration.flows_client, "get_run", asked.append)

    sync_pass = integration.reconcile()

    assert FlowRun.objects.exclude(status__in=[RunStatus.COMPLETE, RunStatus.ERROR]).count() == 0
    assert (sync_pass.runs_checked, asked) == (0, [])


def test_every_section_of_the_dashboard_has_numbers(loaded):
    client = Client()
    client.force_login(get_user_model().objects.get(username="sam"))

    response = client.get(reverse("reviewqueue:dashboard"), {"period": "14d"})

    assert response.status_code == 200
    board = response.context["board"]
    assert board.attention.value == 2
    rows = [row for row in board.queue_rows if row.queue.name != "Unrouted"]
    assert len(rows) == 4
    for row in rows:
        assert row.done_period.value > 0
        assert row.median is not None and row.p90 is not None and row.median <= row.p90
        assert row.done_hours is not None and row.depth_days is not None
        assert row.depth_hours is not None
        assert row.depth_days.total > 0
    assert sum(row.done_hours.total for row in rows if row.done_hours) > 0
    assert sum(row.depth_hours.total for row in rows if row.depth_hours) > 0
    people = {person.name: person for person in board.people}
    assert {"Alice", "Bob", "Maria"} <= set(people)
    assert all(people[name].done_period.value > 0 for name in ("Alice", "Bob", "Maria"))
    assert sum(p.declines.value for p in people.values()) > 0
    assert sum(p.returns.value for p in people.values()) > 0
    assert sum(1 for bar in board.chart.bars if bar.count) >= 12
    assert board.hours_chart.total > 0
    runs = {title: number.value for title, number in board.runs}
    assert runs["Complete"] > 200 and runs["Error"] > 0
    assert sum(e.rejected.value for e in board.errors) >= 3
    assert sum(e.failed.value for e in board.errors) == 2
    assert sum(e.attention.value for e in board.errors) == 2


@pytest.mark.django_db
def test_the_history_is_told_from_the_moment_given(role_groups):
    call_command("engine_seed", stdout=StringIO())
    demo.demo_users_ensure()
    demo.demo_queues_ensure()
    demo.demo_reasons_ensure()
    now = datetime(2026, 3, 4, 10, 0, tzinfo=UTC)

    made = demo_history.demo_history_ensure(now=now)

    assert made == ReviewItem.objects.count() > 300
    times = AuditEvent.objects.filter(HISTORY)
    assert now - timedelta(days=demo_history.DAYS + 1) < min(times.values_list("at", flat=True))
    assert max(times.values_list("at", flat=True)) < now
    assert demo_history.demo_history_ensure(now=now + timedelta(days=1)) == 0


@pytest.mark.django_db
def test_make_runs_demo_has_the_history_and_a_demo_asked_for_against_an_api_not(
    settings, role_groups
):
    # The benchmarks' worlds: FLOWS_API_URL set (so FLOWDESK_DEMO off), --demo given.
    settings.FLOWDESK_DEMO = False
    call_command("load_demo", "--demo", stdout=StringIO())
    assert not demo_history.history_exists()

    # `make run`: the demo is on by default, on the embedded engine.
    settings.FLOWDESK_DEMO, settings.FLOWS_ENGINE_ENABLED = True, True
    out = StringIO()
    call_command("load_demo", stdout=out)
    assert demo_history.history_exists()
    assert "demo history:" in out.getvalue()
