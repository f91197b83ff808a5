"""reviewqueue:report_*, the supervisors' CSV reports: contents on known data, patient data only
with the permission, the formula guard, streamed in a bounded number of queries, supervisors
only, audited, and filters that mean nothing answered with 400."""

import csv
import io
import json
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.contrib.auth.models import Group, Permission
from django.http import StreamingHttpResponse
from django.test import Client
from django.urls import reverse

from audit import services as audit_services
from audit.models import AuditEvent
from flows_integration.models import FlowRun, RunStatus
from reviewqueue import report_selectors, services
from reviewqueue.audit_selectors import ACTION_TITLES
from reviewqueue.csv_export import csv_lines, inert
from reviewqueue.dashboard_handle_times import handle_times, percentile
from reviewqueue.models import (
    ItemReason,
    ItemStatus,
    ReasonKind,
    ReviewItem,
    Submission,
    SubmissionStatus,
)
from tests.reviewqueue.conftest import CLINICAL_ANSWER, CLINICAL_INPUT
from tests.reviewqueue.test_dashboard import completed, opened

pytestmark = pytest.mark.django_db

COMPLETED = reverse("reviewqueue:report_completed")
QUEUE = reverse("reviewqueue:report_queue")
THROUGHPUT = reverse("reviewqueue:report_throughput")
# A Thursday afternoon (the tests' site zone is UTC).
NOW = datetime(2026, 5, 14, 15, 0, tzinfo=UTC)
HOUR, MINUTE, DAY = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def table(response) -> list[list[str]]:
    assert response.status_code == 200
    assert isinstance(response, StreamingHttpResponse)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="flowdesk-')
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))


def by_column(rows: list[list[str]]) -> list[dict[str, str]]:
    header, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def phi_supervisor(supervisor, django_user_model):
    """Pat, a supervisor (as Sam) who may also see patient data."""
    pat = django_user_model.objects.create_user("pat", password="pat-password")
    pat.groups.add(Group.objects.get(name="Supervisor"))
    pat.user_permissions.add(
        Permission.objects.get(content_type__app_label="audit", codename="view_patient_data")
    )
    return pat


@pytest.fixture
def known(frozen, pending_run, clinical_queue, eligibility, reviewer, colleague):
    """Alice answered today (10 min) and three days ago (20 min); Bob today in Eligibility
    (5 min) and ten days ago (25 min), and declined an item an hour ago. Two open items in
    the clinical queue: one overdue, one claimed by Alice."""
    new = lambda: pending_run().review_items.get()  # noqa: E731
    items = {
        "today": completed(new(), reviewer, claimed=NOW.replace(hour=10), handled=10 * MINUTE),
        "three_days": completed(new(), reviewer, claimed=NOW - 3 * DAY, handled=20 * MINUTE),
        "bob_today": completed(
            new(), colleague, claimed=NOW.replace(hour=11), handled=5 * MINUTE, queue=eligibility
        ),
        "ten_days": completed(new(), colleague, claimed=NOW - 10 * DAY, handled=25 * MINUTE),
        "overdue": opened(new(), ago=2 * HOUR, due_in=-HOUR),
        "claimed": opened(new(), ago=30 * MINUTE, due_in=3 * HOUR),
    }
    services.item_claim(item=items["claimed"], user=reviewer)
    declined = new()
    services.item_claim(item=declined, user=colleague)
    with time_machine.travel(NOW - HOUR, tick=False):
        services.item_decline(item=declined, user=colleague)
    items["declined"] = declined
    return items


# --- Completed work ------------------------------------------------------------------------------


def test_completed_work_on_known_data(known, supervisor, prior_auth_version):
    rows = table(login(supervisor).get(COMPLETED, {"period": "7d"}))

    assert rows[0] == report_selectors.COMPLETED_COLUMNS
    found = by_column(rows)
    # Delivered in the last 7 days, oldest delivery first; not ten days ago.
    assert [row["item_id"] for row in found] == [
        str(known[key].pk) for key in ("three_days", "today", "bob_today")
    ]
    today = known["today"]
    assert found[1] == {
        "answered_by": "alice",
        "login": "alice",
        "queue": "Clinical review",
        "template": prior_auth_version.template.name,
        "step": "Clinical review",
        "run_id": today.run_ref,
        "item_id": str(today.pk),
        "opened_utc": today.opened_at.astimezone(UTC).isoformat(),
        "claimed_utc": "2026-05-14T10:00:00+00:00",
        "submitted_utc": "2026-05-14T10:10:00+00:00",
        "delivered_utc": "2026-05-14T10:11:00+00:00",
        "handle_seconds": "600",
        # The oneOf choice's title, not the code "approve".
        "decision": "Approve as requested",
    }
    assert [row["handle_seconds"] for row in found] == ["1200", "600", "300"]
    assert [row["queue"] for row in found] == ["Clinical review", "Clinical review", "Eligibility"]


def test_completed_work_holds_no_answer_or_patient_data_without_the_permission(
    known, supervisor, phi_supervisor
):
    plain = b"".join(login(supervisor).get(COMPLETED).streaming_content).decode()
    assert "answer" not in plain.splitlines()[0].split(",")
    for text in ("Alice Reviewer", "M17.11", "interqual", "Maria", "Lopez"):
        assert text not in plain

    rows = by_column(table(login(phi_supervisor).get(COMPLETED)))
    assert list(rows[0])[-1] == "answer"
    assert {row["item_id"]: json.loads(row["answer"]) for row in rows} == {
        str(known[key].pk): CLINICAL_ANSWER for key in ("three_days", "today", "bob_today")
    }


def test_the_period_can_be_given_as_dates_and_a_queue_narrows_it(known, supervisor, eligibility):
    client = login(supervisor)
    ten_days_ago = (NOW - 10 * DAY).date().isoformat()
    rows = by_column(table(client.get(COMPLETED, {"from": ten_days_ago, "to": ten_days_ago})))
    assert [row["item_id"] for row in rows] == [str(known["ten_days"].pk)]

    # "to" defaults to today.
    rows = by_column(table(client.get(COMPLETED, {"from": ten_days_ago})))
    assert len(rows) == 4

    rows = by_column(table(client.get(COMPLETED, {"period": "30d", "queue": eligibility.pk})))
    assert [row["item_id"] for row in rows] == [str(known["bob_today"].pk)]
    rows = by_column(table(client.get(COMPLETED, {"period": "today"})))
    assert {row["login"] for row in rows} == {"alice", "bob"}


def test_each_answer_keeps_its_submitters_latest_claim_and_the_dashboard_reads_it(known):
    """Handle time runs from the submitter's latest claim at or before the answer, kept with the
    answer when it is made: the audit trail says the same, and so does the dashboard."""
    answers = Submission.objects.filter(status=SubmissionStatus.DELIVERED)
    per_person = defaultdict(list)
    for answer in answers:
        claims = AuditEvent.objects.filter(
            action="item.claimed",
            item_id=answer.item_id,
            actor_id=answer.submitted_by_id,
            at__lte=answer.created_at,
        )
        assert answer.claimed_at == max(claims.values_list("at", flat=True))
        per_person[answer.submitted_by_id].append(answer.created_at - answer.claimed_at)
    dashboard = handle_times(answers)
    assert dashboard.samples == answers.count() == 4
    assert dashboard.people.keys() == per_person.keys()
    for user, times in per_person.items():
        # percentile_cont on PostgreSQL rounds an interval's microseconds its own way
        assert abs(dashboard.people[user] - percentile(times, 0.5)) < timedelta(milliseconds=1)


def test_a_decision_is_shown_by_its_title_and_never_as_free_text():
    choices = {"oneOf": [{"const": "approve", "title": "Approve as requested"}]}
    assert report_selectors.decision_text(choices, "approve") == "Approve as requested"
    assert report_selectors.decision_text({"enum": ["yes", "no"]}, "no") == "no"
    assert report_selectors.decision_text({"type": "boolean"}, True) == "Yes"
    # Not one of the choices, or a schema that allows any text: it could be a patient's name.
    assert report_selectors.decision_text(choices, "Maria Lopez") == ""
    assert report_selectors.decision_text({"type": "string"}, "Maria Lopez") == ""
    assert report_selectors.decision_text(None, "approve") == ""
    assert report_selectors.decision_text(choices, None) == ""


# --- The current queue and throughput ------------------------------------------------------------


def test_the_current_queue_on_known_data(known, supervisor, phi_supervisor, reviewer):
    rows = table(login(supervisor).get(QUEUE, {"queue": known["overdue"].queue_id}))
    assert rows[0] == report_selectors.QUEUE_COLUMNS
    found = {row["item_id"]: row for row in by_column(rows)}
    overdue, claimed = found[str(known["overdue"].pk)], found[str(known["claimed"].pk)]
    assert (overdue["status"], overdue["claimed_by"], overdue["overdue"]) == ("Open", "", "yes")
    assert (claimed["status"], claimed["claimed_by"], claimed["overdue"]) == (
        "Claimed",
        "alice",
        "no",
    )
    assert overdue["due_utc"] == "2026-05-14T14:00:00+00:00"
    assert overdue["opened_utc"] == "2026-05-14T13:00:00+00:00"
    assert (overdue["step"], overdue["queue"]) == ("Clinical review", "Clinical review")
    assert overdue["priority"] == "50"
    # The declined item is open again; answered items are not in the queue.
    assert set(found) == {str(known[key].pk) for key in ("overdue", "claimed", "declined")}
    assert "Lopez" not in json.dumps(rows)

    with_names = by_column(table(login(phi_supervisor).get(QUEUE)))
    assert {row["patient_name"] for row in with_names} == {"Maria Lopez"}


def test_throughput_per_person_on_known_data(known, supervisor):
    rows = table(login(supervisor).get(THROUGHPUT, {"period": "7d"}))
    assert rows == [
        report_selectors.THROUGHPUT_COLUMNS,
        # 10 and 20 minutes: the median is 15.
        ["alice", "alice", "2", "900", "0"],
        ["bob", "bob", "1", "300", "1"],
    ]
    month = table(login(supervisor).get(THROUGHPUT, {"period": "30d"}))
    assert month[2] == ["bob", "bob", "2", str(15 * 60), "1"]


def test_someone_who_only_declined_is_listed(known, supervisor, outsider, clinical_queue):
    ItemReason.objects.create(
        item=known["overdue"], kind=ReasonKind.DECLINE, by=outsider, at=NOW - HOUR
    )
    rows = table(login(supervisor).get(THROUGHPUT, {"period": "today"}))
    assert ["charlie", "charlie", "0", "", "1"] in rows


# --- The formula guard ---------------------------------------------------------------------------


def test_cells_a_spreadsheet_would_run_are_kept_as_text(known, supervisor, reviewer):
    reviewer.first_name = '=HYPERLINK("http://x")'
    reviewer.save()
    rows = by_column(table(login(supervisor).get(COMPLETED)))
    assert rows[0]["answered_by"] == '\'=HYPERLINK("http://x")'

    lines = list(csv_lines([["+1", "-1", "@x", "\tx", "fine", -5, 2.5, None]]))
    assert lines == ["'+1,'-1,'@x,'\tx,fine,-5,2.5,\r\n"]
    assert inert(inert("=1")) == "'=1"


# --- Streamed, in a bounded number of queries ----------------------------------------------------


def _many_completed(n: int, *, version, queue, user) -> None:
    """``n`` answered items of one Run (one pause each), claimed 5 minutes before their
    answer, in a few bulk inserts."""
    run = FlowRun.objects.create(
        flow_run_id=uuid.uuid4(),
        template=version.template,
        version=version,
        status=RunStatus.COMPLETE,
        input_data=CLINICAL_INPUT,
    )
    items = ReviewItem.objects.bulk_create(
        ReviewItem(
            run=run,
            episode=episode,
            queue=queue,
            version=version,
            state_id="clinical-review",
            status=ItemStatus.RESUMED,
            due_at=NOW,
            opened_at=NOW - HOUR,
            run_ref=str(run.flow_run_id),
        )
        for episode in range(1, n + 1)
    )
    Submission.objects.bulk_create(
        Submission(
            item=item,
            submitted_by=user,
            input=CLINICAL_ANSWER,
            status=SubmissionStatus.DELIVERED,
            created_at=NOW - 10 * MINUTE,
            finished_at=NOW - 9 * MINUTE,
            claimed_at=NOW - 15 * MINUTE,
        )
        for item in items
    )
    claims = []
    for item in items:
        event = audit_services.audit_event(action="item.claimed", actor=user, item_id=item.pk)
        event.at = NOW - 15 * MINUTE
        claims.append(event)
    audit_services.append(claims)


def _many_open(n: int, *, version, queue) -> None:
    runs = FlowRun.objects.bulk_create(
        FlowRun(
            flow_run_id=uuid.uuid4(),
            template=version.template,
            version=version,
            status=RunStatus.PENDING,
            state_id="clinical-review",
            input_data=CLINICAL_INPUT,
        )
        for _ in range(n)
    )
    ReviewItem.objects.bulk_create(
        ReviewItem(
            run=run,
            episode=1,
            queue=queue,
            version=version,
            state_id="clinical-review",
            due_at=NOW + HOUR,
            patient_name="Maria Lopez",
            run_ref=str(run.flow_run_id),
        )
        for run in runs
    )


# Session, user, time zone, permissions (2), the queue filter, the audit row (chain head, insert,
# head update), then the rows (each with its claim), and per chunk the versions not seen yet: 11
# for 50 rows as for 500 (one chunk).
QUERY_BOUND = 11


@pytest.mark.parametrize("n", [50, 500])
def test_the_completed_export_streams_in_a_bounded_number_of_queries(
    n, frozen, prior_auth_version, clinical_queue, reviewer, phi_supervisor,
    django_assert_max_num_queries,
):  # fmt: skip
    _many_completed(n, version=prior_auth_version, queue=clinical_queue, user=reviewer)
    client = login(phi_supervisor)
    with django_assert_max_num_queries(QUERY_BOUND):
        response = client.get(COMPLETED, {"queue": clinical_queue.pk, "period": "today"})
        rows = by_column(table(response))
    assert len(rows) == n
    assert {row["handle_seconds"] for row in rows} == {"300"}


@pytest.mark.parametrize("n", [50, 500])
def test_the_queue_export_streams_in_a_bounded_number_of_queries(
    n, frozen, prior_auth_version, clinical_queue, phi_supervisor, django_assert_max_num_queries
):
    _many_open(n, version=prior_auth_version, queue=clinical_queue)
    client = login(phi_supervisor)
    with django_assert_max_num_queries(QUERY_BOUND):
        rows = by_column(table(client.get(QUEUE, {"queue": clinical_queue.pk})))
    assert len(rows) == n


def test_rows_are_read_chunk_by_chunk(
    monkeypatch, frozen, prior_auth_version, clinical_queue, reviewer, supervisor,
    django_assert_max_num_queries,
):  # fmt: skip
    """Five chunks: each past the first adds one query, its claims (the versions are known by
    then), and every row still finds its claim."""
    monkeypatch.setattr(report_selectors, "CHUNK_SIZE", 40)
    _many_completed(200, version=prior_auth_version, queue=clinical_queue, user=reviewer)
    client = login(supervisor)
    with django_assert_max_num_queries(QUERY_BOUND + 4):
        rows = by_column(table(client.get(COMPLETED)))
    assert len(rows) == 200 and {row["handle_seconds"] for row in rows} == {"300"}
    throughput = table(client.get(THROUGHPUT))
    assert throughput[1] == ["alice", "alice", "200", "300", "0"]


# --- Who may, the audit row, bad filters ---------------------------------------------------------


def test_only_supervisors_may_export(known, reviewer, outsider, supervisor, client):
    for url in (COMPLETED, QUEUE, THROUGHPUT):
        assert login(reviewer).get(url).status_code == 404
        assert login(outsider).get(url).status_code == 404
        assert client.get(url).status_code == 302  # to sign in
        assert login(supervisor).post(url).status_code == 405
    assert not AuditEvent.objects.filter(action="report.exported").exists()


def test_each_export_is_audited_without_patient_data(known, supervisor, phi_supervisor):
    table(login(supervisor).get(COMPLETED, {"period": "14d", "queue": known["today"].queue_id}))
    table(login(phi_supervisor).get(QUEUE))
    table(login(phi_supervisor).get(THROUGHPUT, {"from": "2026-05-01", "to": "2026-05-10"}))

    events = list(AuditEvent.objects.filter(action="report.exported").order_by("pk"))
    assert [(e.actor_id, e.detail) for e in events] == [
        (
            supervisor.pk,
            {
                "report": "completed",
                "filters": {"period": "14d", "queue": known["today"].queue_id},
                "patient_data": False,
            },
        ),
        (phi_supervisor.pk, {"report": "queue", "filters": {"period": "7d"}, "patient_data": True}),
        (
            phi_supervisor.pk,
            {
                "report": "throughput",
                "filters": {"from": "2026-05-01", "to": "2026-05-10"},
                "patient_data": False,
            },
        ),
    ]
    assert ACTION_TITLES["report.exported"] == "Report exported"


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"period": "1y"}, "period must be one of today, 7d, 14d, 30d"),
        ({"from": "2026-13-01"}, "from must be a date written YYYY-MM-DD."),
        ({"from": "2026-05-10", "to": "yesterday"}, "to must be a date written YYYY-MM-DD."),
        ({"from": "2026-05-10", "to": "2026-05-01"}, "from must be on or before to."),
        ({"from": "1999-12-31"}, "from must be 2000-01-01 or later."),
        ({"to": "2026-05-10"}, "Give the first day too"),
        ({"period": "7d", "from": "2026-05-01"}, "Give a period or from/to dates, not both."),
        ({"queue": "clinical"}, "queue must be a queue's number."),
        ({"queue": "999999"}, "There is no queue 999999."),
    ],
)
def test_a_filter_that_means_nothing_is_answered_400_in_plain_words(
    query, message, supervisor, clinical_queue
):
    response = login(supervisor).get(COMPLETED, query)
    assert response.status_code == 400
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert message in response.content.decode()
    assert not AuditEvent.objects.filter(action="report.exported").exists()


def test_the_dashboard_links_the_reports_with_its_filters(known, supervisor, eligibility):
    response = login(supervisor).get(
        reverse("reviewqueue:dashboard"), {"queue": eligibility.pk, "period": "14d"}
    )
    page = response.content.decode()
    for url in (COMPLETED, QUEUE, THROUGHPUT):
        assert f'href="{url}?period=14d&amp;queue={eligibility.pk}"' in page
    # The links are not part of the numbers htmx refreshes.
    fragment = login(supervisor).get(reverse("reviewqueue:dashboard"), HTTP_HX_REQUEST="true")
    assert COMPLETED not in fragment.content.decode()
