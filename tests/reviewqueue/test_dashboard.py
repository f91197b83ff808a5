"""reviewqueue:dashboard, the supervisors' dashboard: each number on generated data with known
answers, each linked number equal to the length of the list it links to, supervisors only, a
bounded number of queries, and the SVG chart's bars."""

import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest
import time_machine
from django.contrib.auth.models import Group
from django.db.models import DateTimeField, Value
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from flows_integration.models import FlowRun, RunStatus
from reviewqueue import dashboard_charts, dashboard_handle_times, dashboard_selectors, services
from reviewqueue.models import (
    ItemReason,
    ItemStatus,
    Queue,
    ReasonKind,
    ReviewItem,
    Submission,
    SubmissionStatus,
)
from tests.reviewqueue.conftest import CLINICAL_ANSWER, clinical_form_data, mirrored

pytestmark = pytest.mark.django_db

DASHBOARD = reverse("reviewqueue:dashboard")
HX = {"HX-Request": "true"}
# A Thursday afternoon; the site's zone (UTC in the tests) decides what "today" is.
NOW = datetime(2026, 5, 14, 15, 0, tzinfo=UTC)


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def frozen():
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def opened(item: ReviewItem, *, ago: timedelta, due_in: timedelta, queue=None) -> ReviewItem:
    fields = {"opened_at": NOW - ago, "due_at": NOW + due_in}
    if queue is not None:
        fields["queue"] = queue
    ReviewItem.objects.filter(pk=item.pk).update(**fields)
    item.refresh_from_db()
    return item


def completed(item: ReviewItem, user, *, claimed: datetime, handled: timedelta, queue=None):
    """Claimed at ``claimed``, answered ``handled`` later, delivered a minute after that."""
    if queue is not None:
        ReviewItem.objects.filter(pk=item.pk).update(queue=queue)
    with time_machine.travel(claimed, tick=False):
        services.item_claim(item=item, user=user)
    with time_machine.travel(claimed + handled, tick=False):
        submission = services.submission_create(
            item=item, user=user, answer=CLINICAL_ANSWER, form_data=clinical_form_data()
        )
    with time_machine.travel(claimed + handled + timedelta(minutes=1), tick=False):
        # What a delivery task does once Update Run answered 200 (no engine needed here).
        services._delivered(submission)
    return item


@pytest.fixture
def known(frozen, pending_run, clinical_queue, eligibility, reviewer, colleague):
    """Two queues, open items of every age, claims by alice and bob, answers delivered today,
    yesterday, three and ten days ago. The expected numbers are in the tests."""
    hour, minute, day = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)
    new = lambda: pending_run().review_items.get()  # noqa: E731
    # Completed first: a claim's lease must still run when the answer is submitted.
    completed(new(), reviewer, claimed=NOW.replace(hour=10), handled=10 * minute)
    completed(new(), reviewer, claimed=NOW - 3 * day, handled=20 * minute)
    completed(new(), reviewer, claimed=NOW.replace(hour=23) - day, handled=15 * minute)
    completed(new(), colleague, claimed=NOW.replace(hour=11), handled=5 * minute, queue=eligibility)
    completed(new(), colleague, claimed=NOW - 10 * day, handled=25 * minute)
    # Clinical review: one of each age, one due soon, two overdue, one needing attention.
    opened(new(), ago=30 * minute, due_in=30 * minute)
    opened(new(), ago=2 * hour, due_in=-hour)
    services.item_claim(item=opened(new(), ago=5 * hour, due_in=-hour), user=reviewer)
    services.item_claim(item=opened(new(), ago=2 * day, due_in=3 * hour), user=colleague)
    attention = new()
    ReviewItem.objects.filter(pk=attention.pk).update(status=ItemStatus.NEEDS_ATTENTION)
    # Eligibility: a young claim and a day-old overdue item.
    young = opened(new(), ago=10 * minute, due_in=2 * hour, queue=eligibility)
    services.item_claim(item=young, user=colleague)
    opened(new(), ago=30 * hour, due_in=-6 * hour, queue=eligibility)
    # A Run waiting in triage, two finished and one failed Run.
    mirrored(status="PENDING", state_id="somewhere")
    mirrored(status="COMPLETE")
    mirrored(status="COMPLETE")
    mirrored(status="ERROR")
    # Eligibility is also the Billing team's (the team filter's known answer).
    eligibility.teams.add(Group.objects.create(name="Billing team"))
    # Alice declined an open item today and bob one two days ago; bob returned one yesterday,
    # and one twelve days ago (outside the default period).
    reasons = [
        (ReasonKind.DECLINE, reviewer, NOW - hour),
        (ReasonKind.DECLINE, colleague, NOW - 2 * day),
        (ReasonKind.RETURN, colleague, NOW - day),
        (ReasonKind.RETURN, colleague, NOW - 12 * day),
    ]
    for kind, who, at in reasons:
        # Their items since answered elsewhere: closed, so the open counts above stay as they are.
        gone = new()
        ReviewItem.objects.filter(pk=gone.pk).update(status=ItemStatus.SUPERSEDED, closed_at=NOW)
        FlowRun.objects.filter(pk=gone.run_id).update(status=RunStatus.COMPLETE)
        ItemReason.objects.create(item=gone, kind=kind, by=who, at=at)
    # Answers Flows did not take: one rejected today, the attention item's failed yesterday.
    Submission.objects.create(
        item=young,
        submitted_by=colleague,
        input={},
        status=SubmissionStatus.REJECTED,
        finished_at=NOW - hour,
    )
    Submission.objects.create(
        item=attention,
        submitted_by=reviewer,
        input={},
        status=SubmissionStatus.FAILED,
        finished_at=NOW - day,
    )
    # Closed items, for the depth over time: opened 3 days ago, closed 5 hours ago; opened 30
    # hours ago, closed 2 hours ago (on the hour, where a point of the chart falls).
    for ago, closed_ago in ((3 * day, 5 * hour), (30 * hour, 2 * hour)):
        closed = new()
        ReviewItem.objects.filter(pk=closed.pk).update(
            status=ItemStatus.SUPERSEDED, opened_at=NOW - ago, closed_at=NOW - closed_ago
        )
        FlowRun.objects.filter(pk=closed.run_id).update(status=RunStatus.COMPLETE)
    return {"clinical": clinical_queue, "eligibility": eligibility}


def board(client: Client, **query):
    response = client.get(DASHBOARD, query)
    assert response.status_code == 200
    return response.context["board"]


def minutes(value: timedelta | None) -> float | None:
    return None if value is None else value.total_seconds() / 60


def test_every_number_on_known_data(known, supervisor):
    found = board(login(supervisor))

    assert (found.triage.value, found.attention.value) == (1, 1)
    rows = {row.queue.name: row for row in found.queue_rows}
    clinical, eligibility = rows["Clinical review"], rows["Eligibility"]
    assert [n.value for _, n in clinical.ages] == [1, 1, 1, 1]
    assert (clinical.open.value, clinical.due_soon.value, clinical.overdue.value) == (4, 1, 2)
    assert (clinical.attention.value, clinical.done_today.value) == (1, 1)
    # Today, yesterday 23:15 and three days ago; not ten days ago.
    assert clinical.done_period.value == 3
    # 10, 15 and 20 minutes: percentile_cont's median and p90.
    assert (minutes(clinical.median), minutes(clinical.p90)) == (15, 19)
    assert (clinical.median_text, clinical.p90_text) == ("15 min", "19 min")
    assert [n.value for _, n in eligibility.ages] == [1, 0, 0, 1]
    assert (eligibility.open.value, eligibility.due_soon.value) == (2, 0)
    assert (eligibility.overdue.value, eligibility.attention.value) == (1, 0)
    assert (eligibility.done_today.value, eligibility.done_period.value) == (1, 1)
    assert minutes(eligibility.median) == minutes(eligibility.p90) == 5

    people = {person.name: person for person in found.people}
    alice, bob = people["alice"], people["bob"]
    assert (alice.claims.value, alice.done_today.value, alice.done_period.value) == (1, 1, 3)
    assert (bob.claims.value, bob.done_today.value, bob.done_period.value) == (2, 1, 1)
    assert (minutes(alice.median), minutes(bob.median)) == (15, 5)

    counts = {bar.key: bar.count for bar in found.chart.bars if bar.count}
    assert counts == {"2026-05-14": 2, "2026-05-13": 1, "2026-05-11": 1, "2026-05-04": 1}


def test_the_new_numbers_on_known_data(known, supervisor, reviewer):
    client = login(supervisor)
    login(reviewer)  # alice signs in too; bob does not
    found = board(client)

    # Declines and returns in the last 7 days; the return twelve days ago is not counted.
    people = {person.name: person for person in found.people}
    assert (people["alice"].declines.value, people["alice"].returns.value) == (1, 0)
    assert (people["bob"].declines.value, people["bob"].returns.value) == (1, 1)
    assert {p.name for p in found.signed_in} == {"alice", "Sam"}
    assert people["bob"].signed_in_at is None
    assert people["Sam"].claims.value == 0  # listed for being signed in

    # Runs: 12 paused with items (five answered, still PENDING in the mirror), one in triage;
    # two finished elsewhere and the six whose items closed.
    runs = {title: number.value for title, number in found.runs}
    assert runs == {
        "Created": 0,
        "In progress": 0,
        "Waiting for input": 13,
        "Complete": 8,
        "Error": 1,
    }

    # Errors: the step is named by its title, never its id.
    [error] = found.errors
    assert (error.template, error.step) == ("Prior authorization", "Clinical review")
    assert (error.attention.value, error.rejected.value, error.failed.value) == (1, 1, 1)

    # Completed per hour: yesterday's 23:15 and today's 10:10 and 11:05 answers (delivered a
    # minute later); not the one three days ago.
    hours = {bar.key: bar.count for bar in found.hours_chart.bars if bar.count}
    assert hours == {
        "2026-05-13T23:00:00+00:00": 1,
        "2026-05-14T10:00:00+00:00": 1,
        "2026-05-14T11:00:00+00:00": 1,
    }
    assert found.hours_chart.bars[-1].key == "2026-05-14T15:00:00+00:00"

    rows = {row.queue.name: row for row in found.queue_rows}
    clinical = rows["Clinical review"]
    depth = {bar.key: bar.count for bar in clinical.depth_hours.bars}
    # At 13:00 the item closed at 13:00 is still open (closed > t fails), and the one opened at
    # 13:00 exactly is open (opened <= t).
    assert depth["2026-05-14T13:00:00+00:00"] == oracle(known["clinical"], NOW - 2 * HOUR)
    for at, count in depth.items():
        assert count == oracle(known["clinical"], datetime.fromisoformat(at)), at
    days = clinical.depth_days.bars
    assert days[-1].text == "now" and days[-1].count == oracle(known["clinical"], NOW)
    assert days[-2].key == "2026-05-14T00:00:00+00:00"
    for bar in days:
        assert bar.count == oracle(known["clinical"], datetime.fromisoformat(bar.key)), bar.key


HOUR = timedelta(hours=1)


def test_a_bucket_counts_the_thresholds_at_or_before_a_moment():
    """``Bucket`` (``width_bucket`` on PostgreSQL, a CASE elsewhere) places a moment exactly at
    a threshold in the bucket that threshold opens, as the charts' (h, h + 1 h] rule needs."""
    ten, eleven, noon = (datetime(2026, 5, 14, hour, tzinfo=UTC) for hour in (10, 11, 12))
    tick = timedelta(microseconds=1)
    expected = {ten - tick: 0, ten: 1, eleven - tick: 1, eleven: 2, noon: 3, noon + HOUR: 3}
    group = Group.objects.create(name="one row to compute on")
    for moment, bucket in expected.items():
        found = (
            Group.objects.filter(pk=group.pk)
            .annotate(
                b=dashboard_charts.Bucket(Value(moment, DateTimeField()), [ten, eleven, noon])
            )
            .values_list("b", flat=True)
            .get()
        )
        assert found == bucket, moment


def oracle(queue, at: datetime) -> int:
    """Depth by its definition, item by item."""
    return sum(
        1
        for item in ReviewItem.objects.filter(queue=queue)
        if item.opened_at <= at and (item.closed_at is None or item.closed_at > at)
    )


def test_the_team_and_template_filters(known, supervisor):
    client = login(supervisor)
    billing = Group.objects.get(name="Billing team")
    teams = board(client, team=billing.pk)
    assert [r.queue.name for r in teams.queue_rows] == ["Eligibility"]
    assert teams.attention.value == 0
    assert f"team={billing.pk}" in teams.queue_rows[0].open.url
    assert {p.name for p in teams.people if p.claims.value} == {"bob"}
    clinical_team = Group.objects.get(name="Clinical team")
    assert {t.name for t in teams.teams} == {"Billing team", "Clinical team"}
    both = board(client, team=clinical_team.pk)
    assert {r.queue.name for r in both.queue_rows} == {"Clinical review", "Eligibility"}

    none = board(client, template="no-such-template")
    assert sum(r.open.value for r in none.queue_rows) == 0
    assert sum(n.value for _, n in none.runs) == 0
    same = board(client, template="prior-authorization")
    assert sum(r.open.value for r in same.queue_rows) == 6
    assert "template=prior-authorization" in same.runs[2][1].url


def test_the_period_and_the_queue_filter_change_what_is_counted(known, supervisor):
    client = login(supervisor)
    fortnight = board(client, period="14d")
    done = {r.queue.name: r.done_period.value for r in fortnight.queue_rows}
    # The default queue ("Unrouted", made by a migration, unless a transactional test's flush
    # removed it first) has nothing.
    assert done.pop("Unrouted", 0) == 0
    assert done == {"Clinical review": 4, "Eligibility": 1}
    done_by = {p.name: p.done_period.value for p in fortnight.people}
    assert done_by == {"alice": 3, "bob": 2, "Sam": 0}  # Sam is signed in

    one = board(client, queue=known["eligibility"].pk, period="today")
    assert [r.queue.name for r in one.queue_rows] == ["Eligibility"]
    assert {p.name: (p.claims.value, p.done_period.value) for p in one.people} == {"bob": (1, 1)}
    assert one.attention.value == 0
    assert one.chart.total == 1
    # Every link keeps to the chosen queue.
    assert all(f"queue={known['eligibility'].pk}" in n.url for _, n in one.queue_rows[0].ages)
    assert f"queue={known['eligibility'].pk}" in one.people[0].claims.url


def test_finished_runs_are_counted_in_the_period_and_waiting_ones_always(known, supervisor):
    # A Run that finished (and was created) twenty days ago, and one waiting since then.
    old = timezone.now() - timedelta(days=20)
    for status in (RunStatus.COMPLETE, RunStatus.PENDING):
        FlowRun.objects.filter(pk=mirrored(status=status).pk).update(created_at=old)
    client = login(supervisor)

    week = dict(board(client).runs)
    month = dict(board(client, period="30d").runs)
    assert (week["Complete"].value, month["Complete"].value) == (8, 9)
    assert week["Waiting for input"].value == month["Waiting for input"].value == 14
    # Each links to the Runs list of the same Runs: the finished ones from the period's first day.
    assert "created_from=" in month["Complete"].url
    assert "created_from" not in month["Waiting for input"].url
    assert listed(client, month["Complete"].url) == 9


def linked_numbers(found) -> list[tuple[str, dashboard_selectors.Number]]:
    numbers = [("triage", found.triage), ("attention", found.attention)]
    for row in found.queue_rows:
        name = row.queue.name
        numbers += [(f"{name} {label}", number) for label, number in row.ages]
        numbers += [
            (f"{name} open", row.open),
            (f"{name} due soon", row.due_soon),
            (f"{name} overdue", row.overdue),
            (f"{name} attention", row.attention),
            (f"{name} done today", row.done_today),
            (f"{name} done in period", row.done_period),
        ]
    for person in found.people:
        numbers += [
            (f"{person.name} claims", person.claims),
            (f"{person.name} done today", person.done_today),
            (f"{person.name} done in period", person.done_period),
        ]
        numbers += [
            (f"{person.name} declines", person.declines),
            (f"{person.name} returns", person.returns),
        ]
    charts = [found.chart, found.hours_chart]
    for row in found.queue_rows:
        charts += [row.depth_hours, row.depth_days, row.done_hours]
    numbers += [
        (f"{chart.id} {bar.key}", dashboard_selectors.Number(bar.count, bar.url))
        for chart in charts
        for bar in chart.bars
    ]
    numbers += [(f"runs {title}", number) for title, number in found.runs]
    for error in found.errors:
        numbers += [
            (f"{error.step} attention", error.attention),
            (f"{error.step} rejected", error.rejected),
            (f"{error.step} failed", error.failed),
        ]
    return numbers


def listed(client: Client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, url
    if "entries" in response.context:  # the triage page
        return len(response.context["entries"])
    page = response.context["page"]
    assert not page.has_next, f"{url}: more than a page; count the test's data again"
    return len(page.runs) if "rows" in response.context else len(page.items)


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"period": "14d"},
        {"period": "today", "queue": "eq"},
        {"team": "billing", "template": "prior-authorization", "period": "30d"},
    ],
)
def test_every_linked_number_is_the_length_of_its_list(known, supervisor, query):
    client = login(supervisor)
    if query.get("queue") == "eq":
        query = {**query, "queue": known["eligibility"].pk}
    if query.get("team") == "billing":
        query = {**query, "team": Group.objects.get(name="Billing team").pk}
    numbers = linked_numbers(board(client, **query))
    assert len(numbers) > 25
    wrong = {
        name: (number.value, shown)
        for name, number in numbers
        if (shown := listed(client, number.url)) != number.value
    }
    assert not wrong, wrong
    # The data reaches every kind of number (a test of zeros would prove little).
    assert sum(number.value for _, number in numbers) > 10


def test_the_queue_page_lists_completed_items_by_person_and_day(known, supervisor, reviewer):
    client = login(supervisor)
    queue = reverse("reviewqueue:queue")
    done = client.get(queue, {"status": "completed", "done": "7d", "done_by": reviewer.pk})
    assert len(done.context["page"].items) == 3
    assert {i.status for i in done.context["page"].items} == {ItemStatus.DELIVERED}
    # An unknown period or day (or one in the future) is no filter at all.
    for wrong in ("yesterday", "2026-02-30", "2026-06-01"):
        page = client.get(queue, {"status": "completed", "done": wrong}).context["page"]
        assert len(page.items) == 5, wrong


def test_only_supervisors_see_the_dashboard(known, reviewer, outsider, supervisor, client):
    assert login(reviewer).get(DASHBOARD).status_code == 404
    assert login(outsider).get(DASHBOARD).status_code == 404
    assert client.get(DASHBOARD).status_code == 302  # to the sign-in page
    assert login(supervisor).post(DASHBOARD).status_code == 405
    # The link in the top bar is for supervisors only.
    assert (
        f'href="{DASHBOARD}"'
        in login(supervisor).get(reverse("reviewqueue:queue")).content.decode()
    )
    assert (
        f'href="{DASHBOARD}"'
        not in login(reviewer).get(reverse("reviewqueue:queue")).content.decode()
    )


def test_htmx_gets_the_numbers_polled_in_the_background_and_no_audit_row(known, supervisor):
    client = login(supervisor)
    before = AuditEvent.objects.count()
    page = client.get(DASHBOARD, {"period": "14d"}).content.decode()
    assert 'hx-trigger="every 60s"' in page and "X-Flowdesk-Background" in page
    assert 'hx-get="/supervisor/?period=14d"' in page
    fragment = client.get(
        DASHBOARD, {"period": "14d"}, headers={**HX, "X-Flowdesk-Background": "1"}
    ).content.decode()
    assert "<html" not in fragment and 'id="dashboard-numbers"' in fragment
    assert "Completed, last 14 days" in fragment
    # Counts only, no patient data: reading it writes nothing to the audit trail.
    assert AuditEvent.objects.count() == before
    assert "Maria" not in page and "Lopez" not in page


def test_a_filter_that_means_nothing_falls_back(known, supervisor):
    found = login(supervisor).get(DASHBOARD, {"queue": "x", "period": "forever"})
    assert found.context["filters"] == dashboard_selectors.DashboardFilters(None, "7d")
    odd = {"team": "1;drop", "template": "<script>", "queue": "99999999999"}
    assert login(supervisor).get(DASHBOARD, odd).context["filters"] == (
        dashboard_selectors.DashboardFilters()
    )


# Session, user, the person's time zone, permissions, queues, teams, templates, open counts,
# delivered counts, answers and their claims for the handle times, depth (open now, opened and
# closed per hour), completed per hour, claims, answers, declines and returns per person,
# sessions signed in, their names, the chart, Runs by status, errors (two, and the steps'
# titles), triage, saved views, the health banner: a fixed number whatever the data.
QUERY_BOUND = 34


def test_the_dashboard_costs_a_bounded_number_of_queries(
    frozen,
    supervisor,
    reviewer,
    colleague,
    pending_run,
    django_user_model,
    django_assert_max_num_queries,
):
    client = login(supervisor)
    client.get(DASHBOARD)  # the session's first request records activity
    hour = timedelta(hours=1)

    def queries() -> list[str]:
        with django_assert_max_num_queries(QUERY_BOUND) as captured:
            assert client.get(DASHBOARD).status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    completed(pending_run().review_items.get(), reviewer, claimed=NOW - hour, handled=hour / 6)
    few = queries()
    team = Group.objects.get(name="Clinical team")
    for n in range(4):
        Queue.objects.create(name=f"Queue {n}")
        person = django_user_model.objects.create_user(f"reviewer{n}")
        person.groups.add(team)
        for _ in range(2):
            item = pending_run().review_items.get()
            ReviewItem.objects.filter(pk=item.pk).update(queue=Queue.objects.get(name=f"Queue {n}"))
            completed(item, person, claimed=NOW - 2 * hour, handled=hour / 4)
        services.item_claim(item=pending_run().review_items.get(), user=person)
    lots = queries()
    assert len(lots) == len(few), "\n".join(lots)


class _Chart(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.bars: list[dict[str, str]] = []
        self.texts: list[str] = []
        self.in_svg = False
        self.tag = ""

    def handle_starttag(self, tag, attrs):
        values = {k: v or "" for k, v in attrs}
        if tag == "svg" and values.get("id") == "dash-chart":
            self.in_svg = True
            self.svg = values
        if self.in_svg and tag == "rect" and "bar" in values.get("class", ""):
            self.bars.append(values)
        self.tag = tag

    def handle_endtag(self, tag):
        if tag == "svg":
            self.in_svg = False

    def handle_data(self, data):
        if self.in_svg and data.strip():
            self.texts.append((self.tag, data.strip()))


def test_the_chart_has_a_bar_per_day_with_its_count_and_says_the_numbers(known, supervisor):
    html = login(supervisor).get(DASHBOARD).content.decode()
    chart = _Chart()
    chart.feed(html)

    assert len(chart.bars) == 14
    assert [b["data-at"] for b in chart.bars][-1] == "2026-05-14"
    counts = {b["data-at"]: int(b["data-count"]) for b in chart.bars if b["data-count"] != "0"}
    assert counts == {"2026-05-14": 2, "2026-05-13": 1, "2026-05-11": 1, "2026-05-04": 1}
    # Heights scale with the counts: the axis tops at 2, so a 2 fills the plot and a 1 half.
    heights = {b["data-at"]: float(b["height"]) for b in chart.bars}
    assert heights["2026-05-14"] == 2 * heights["2026-05-13"] > 0
    assert heights["2026-05-12"] == 0
    # Accessible: a role, a title and a description with every number.
    assert chart.svg["role"] == "img"
    assert chart.svg["aria-labelledby"] == "dash-chart-title dash-chart-desc"
    titles = dict(chart.texts)
    assert titles["title"].startswith("Completed items per day, last 14 days")
    assert "Thu 14 May: 2" in titles["desc"] and "5 in all" in titles["desc"]
    # The numbers table links each day to its list.
    days = re.findall(r'<a href="([^"]+done=2026-05-14[^"]*)">2<', html)
    assert len(days) == 1


def test_percentiles_interpolate_as_percentile_cont():
    m = timedelta(minutes=1)
    assert dashboard_handle_times.percentile([], 0.5) is None
    assert dashboard_handle_times.percentile([m], 0.9) == m
    assert dashboard_handle_times.percentile([4 * m, m, 3 * m, 2 * m], 0.5) == 2.5 * m
    assert dashboard_handle_times.percentile([m * i for i in range(1, 11)], 0.9) == 9.1 * m


def test_durations_read_as_people_say_them():
    text = dashboard_selectors.duration_text
    assert [text(None), text(timedelta(seconds=45)), text(timedelta(minutes=12))] == [
        "—",
        "45 s",
        "12 min",
    ]
    assert text(timedelta(hours=1, minutes=5)) == "1 h 05 min"
    assert text(timedelta(days=2, hours=3)) == "2 d 3 h"


def test_local_days_follow_the_viewers_time_zone(known, supervisor):
    """23:15 UTC yesterday is today in Tokyo: "today" is the viewer's day, and the list agrees."""
    from reviewqueue.models import StaffPreferences

    StaffPreferences.objects.create(user=supervisor, time_zone="Asia/Tokyo")
    # 15:00 UTC is midnight in Tokyo: move to 16:00 UTC (01:00 on the 15th there).
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):
        client = login(supervisor)
        found = board(client)
        assert timezone.now() == NOW + timedelta(hours=1)
        rows = {row.queue.name: row for row in found.queue_rows}
        # Nothing was delivered after midnight in Tokyo (15:00 UTC).
        assert rows["Clinical review"].done_today.value == 0
        assert listed(client, rows["Clinical review"].done_today.url) == 0
        assert found.chart.bars[-1].key == "2026-05-15"
        # Hours are the viewer's too: the last is 01:00 in Tokyo, and its list agrees.
        last = found.hours_chart.bars[-1]
        assert last.key == "2026-05-15T01:00:00+09:00" and "done=2026-05-15T01" in last.url


def test_a_list_opened_from_the_dashboard_says_what_it_shows(client, supervisor, reviewer):
    client.force_login(supervisor)
    html = client.get(
        reverse("reviewqueue:queue"),
        {"claimed_by": reviewer.pk, "age": "1to4h", "due_soon": "1"},
    ).content.decode()
    assert (
        "From the dashboard: claimed by alice, opened 1 to 4 hours ago, due within the hour."
        in html
    )
    plain = client.get(reverse("reviewqueue:queue")).content.decode()
    assert 'id="dashboard-selection"' not in plain
