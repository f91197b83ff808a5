"""Reads of the supervisors' dashboard: counts per queue and per person, handle times, and the
chart of completed items per day.

Every count is one of the queue page's lists counted in the database with the same conditions
(``selectors.age_condition``, ``selectors.delivered_answers``, …), and each carries the URL of
that list, so a number and the list it links to agree. A fixed number of queries, whatever the
number of queues, people or items: counts are grouped in the database; only handle times, which
need each answer's claim, are computed in Python over the period's delivered answers.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from reviewqueue import roles, selectors
from reviewqueue.models import (
    SUPERVISING_STATUSES,
    WORKABLE_STATUSES,
    ItemStatus,
    Queue,
    ReviewItem,
    Submission,
    SubmissionStatus,
)

PERIODS = {
    "today": "Today",
    "7d": "Last 7 days",
    "14d": "Last 14 days",
    "30d": "Last 30 days",
}
DEFAULT_PERIOD = "7d"
CHART_DAYS = 14
AGE_LABELS = {"lt1h": "< 1 h", "1to4h": "1–4 h", "4to24h": "4–24 h", "gt1d": "> 1 day"}
COMPLETED = sorted(selectors.STATUS_FILTERS["completed"][1])
WORKABLE = Q(status__in=sorted(WORKABLE_STATUSES))


@dataclass(frozen=True)
class DashboardFilters:
    queue: int | None = None
    period: str = DEFAULT_PERIOD

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "DashboardFilters":
        """The page's GET filters; anything unknown falls back to every queue, the last 7 days."""
        queue = query.get("queue", "")
        period = query.get("period", "")
        return cls(
            queue=int(queue) if queue.isdecimal() and len(queue) < 10 else None,
            period=period if period in PERIODS else DEFAULT_PERIOD,
        )

    @property
    def period_label(self) -> str:
        return PERIODS[self.period]


def list_url(filters: DashboardFilters, **query: Any) -> str:
    """The queue page showing what a number counts (scoped to the dashboard's queue)."""
    if filters.queue is not None and "queue" not in query:
        query["queue"] = filters.queue
    return f"{reverse('reviewqueue:queue')}?{urlencode(query)}"


@dataclass(frozen=True)
class Number:
    value: int
    url: str


@dataclass
class QueueRow:
    queue: Queue
    open: Number
    ages: list[tuple[str, Number]]  # (label, count), youngest first
    due_soon: Number
    overdue: Number
    attention: Number
    done_today: Number
    done_period: Number
    median: timedelta | None
    p90: timedelta | None

    @property
    def median_text(self) -> str:
        return duration_text(self.median)

    @property
    def p90_text(self) -> str:
        return duration_text(self.p90)


@dataclass
class PersonRow:
    name: str
    claims: Number
    done_today: Number
    done_period: Number
    median: timedelta | None

    @property
    def median_text(self) -> str:
        return duration_text(self.median)


@dataclass(frozen=True)
class Bar:
    day: date
    count: int
    url: str
    x: float
    y: float
    height: float
    label_x: float  # the middle of the bar, for its texts

    @property
    def value_y(self) -> float:
        """Where the bar's count sits: just above it."""
        return round(self.y - 5, 1)


@dataclass(frozen=True)
class Chart:
    """Bars in an SVG of ``WIDTH`` × ``HEIGHT`` units (the page scales it)."""

    bars: list[Bar]
    top: int  # the y axis's highest value

    WIDTH = 640
    HEIGHT = 220
    LEFT = 36  # room for the y axis's labels
    PLOT_TOP = 24  # room for the tallest bar's count
    BASELINE = 180  # y of the axis; the days' labels below it

    @property
    def total(self) -> int:
        return sum(bar.count for bar in self.bars)

    @property
    def bar_width(self) -> float:
        return round((self.WIDTH - self.LEFT) / max(len(self.bars), 1) * 0.7, 1)

    @property
    def summary(self) -> str:
        """The numbers, for a screen reader (the chart's <desc>)."""
        days = "; ".join(
            f"{bar.day:%a} {bar.day.day} {bar.day:%b}: {bar.count}" for bar in self.bars
        )
        return f"{days}. {self.total} in all."


@dataclass
class Dashboard:
    now: datetime
    queues: list[Queue]  # every queue, for the filter
    triage: Number
    attention: Number
    queue_rows: list[QueueRow]
    people: list[PersonRow]
    chart: Chart
    handle_samples: int = 0


def dashboard(*, filters: DashboardFilters) -> Dashboard:
    """Everything the page shows, in a fixed number of queries."""
    now = timezone.now()
    today = timezone.localdate()
    today_start = selectors.start_of_day(today)
    window = selectors.done_window(filters.period)
    assert window is not None  # every period is one of selectors.DONE_PERIODS
    period_start = window[0]

    queues = list(Queue.objects.all())
    shown = [q for q in queues if filters.queue in (None, q.pk)]

    items = ReviewItem.objects.order_by()
    answers = Submission.objects.filter(
        status=SubmissionStatus.DELIVERED, item__status__in=COMPLETED
    ).order_by()
    if filters.queue is not None:
        items = items.filter(queue_id=filters.queue)
        answers = answers.filter(item__queue_id=filters.queue)

    open_counts = _open_counts(items, now)
    in_period = answers.filter(finished_at__gte=period_start)
    done: dict[int, Mapping[str, Any]] = {
        row["item__queue_id"]: row
        for row in in_period.values("item__queue_id").annotate(
            today=Count("pk", filter=Q(finished_at__gte=today_start)), period=Count("pk")
        )
    }
    handled = _handle_times(in_period)

    queue_rows = [
        _queue_row(filters, queue, open_counts.get(queue.pk, {}), done.get(queue.pk, {}), handled)
        for queue in shown
    ]
    attention = sum(row.attention.value for row in queue_rows)
    return Dashboard(
        now=now,
        queues=queues,
        triage=Number(selectors.runs_in_triage().count(), reverse("reviewqueue:triage")),
        attention=Number(attention, list_url(filters, status="needs_attention")),
        queue_rows=queue_rows,
        people=_people(filters, items, in_period, today_start, handled),
        chart=_chart(filters, answers, today),
        handle_samples=len(handled),
    )


def _open_counts(items: Any, now: datetime) -> dict[int, dict[str, int]]:
    """Per queue: open (open or claimed) items by age and due time, and those needing
    attention, in one grouped query."""
    counts: dict[str, Any] = {
        "open": Count("pk", filter=WORKABLE),
        "due_soon": Count("pk", filter=WORKABLE & selectors.due_soon_condition(now)),
        "overdue": Count("pk", filter=WORKABLE & Q(due_at__lt=now)),
        "attention": Count("pk", filter=Q(status=ItemStatus.NEEDS_ATTENTION)),
    }
    for key in selectors.AGES:
        counts[f"age_{key}"] = Count("pk", filter=WORKABLE & selectors.age_condition(key, now))
    rows = (
        items.filter(status__in=sorted(SUPERVISING_STATUSES)).values("queue_id").annotate(**counts)
    )
    return {row["queue_id"]: row for row in rows}


def _queue_row(
    filters: DashboardFilters,
    queue: Queue,
    counts: Mapping[str, int],
    done: Mapping[str, Any],
    handled: list["Handled"],
) -> QueueRow:
    def number(key: str, source: Mapping[str, int] = counts, **query: Any) -> Number:
        return Number(source.get(key, 0), list_url(filters, queue=queue.pk, **query))

    times = [h.duration for h in handled if h.queue_id == queue.pk]
    return QueueRow(
        queue=queue,
        open=number("open", status="workable"),
        ages=[
            (label, number(f"age_{key}", status="workable", age=key))
            for key, label in AGE_LABELS.items()
        ],
        due_soon=number("due_soon", status="workable", due_soon=1),
        overdue=number("overdue", status="workable", overdue=1),
        attention=number("attention", status="needs_attention"),
        done_today=number("today", done, status="completed", done="today"),
        done_period=number("period", done, status="completed", done=filters.period),
        median=percentile(times, 0.5),
        p90=percentile(times, 0.9),
    )


def _people(
    filters: DashboardFilters,
    items: Any,
    in_period: Any,
    today_start: datetime,
    handled: list["Handled"],
) -> list[PersonRow]:
    """Everyone holding a claim now or with an answer delivered in the period."""
    claims = dict(
        items.filter(status=ItemStatus.CLAIMED)
        .values("claimed_by_id")
        .annotate(n=Count("pk"))
        .values_list("claimed_by_id", "n")
    )
    done = {
        row["submitted_by_id"]: row
        for row in in_period.values("submitted_by_id").annotate(
            today=Count("pk", filter=Q(finished_at__gte=today_start)), period=Count("pk")
        )
    }
    times: dict[int, list[timedelta]] = defaultdict(list)
    for h in handled:
        times[h.user_id].append(h.duration)
    users = get_user_model().objects.filter(pk__in=set(claims) | set(done))
    rows = []
    for user in users:
        mine = done.get(user.pk, {})
        rows.append(
            PersonRow(
                name=roles.display_name(user),
                claims=Number(
                    claims.get(user.pk, 0),
                    list_url(filters, status="claimed", claimed_by=user.pk),
                ),
                done_today=Number(
                    mine.get("today", 0),
                    list_url(filters, status="completed", done="today", done_by=user.pk),
                ),
                done_period=Number(
                    mine.get("period", 0),
                    list_url(filters, status="completed", done=filters.period, done_by=user.pk),
                ),
                median=percentile(times[user.pk], 0.5),
            )
        )
    return sorted(rows, key=lambda row: row.name.lower())


@dataclass(frozen=True)
class Handled:
    queue_id: int
    user_id: int
    duration: timedelta


def _handle_times(in_period: Any) -> list[Handled]:
    """Claim to submit of each answer delivered in the period (``claims_before``); an answer
    with no such claim (the item was reassigned to its submitter) has no handle time. Two
    queries; the rows are the period's answers, bounded by the longest period."""
    answers = list(
        in_period.values_list("item_id", "item__queue_id", "submitted_by_id", "created_at")
    )
    claimed = claims_before((item, user, at) for item, _, user, at in answers)
    return [
        Handled(queue_id, user_id, at - claimed[item_id, user_id, at])
        for item_id, queue_id, user_id, at in answers
        if (item_id, user_id, at) in claimed
    ]


def claims_before(
    answers: Iterable[tuple[int, int, datetime]],
) -> dict[tuple[int, int, datetime], datetime]:
    """For answers given as (item, submitter, submitted at): the submitter's latest
    ``item.claimed`` (audit trail) at or before that answer, in one query. Handle time runs
    from it, so rework after a 400 counts and time spent by someone who released the item does
    not (docs/supervisors.md, "Handle time")."""
    answers = list(answers)
    claims: dict[tuple[int | None, int | None], list[datetime]] = defaultdict(list)
    events = AuditEvent.objects.filter(
        action="item.claimed", item_id__in={item_id for item_id, _, _ in answers}
    ).order_by()
    for item_id, actor_id, at in events.values_list("item_id", "actor_id", "at"):
        claims[item_id, actor_id].append(at)
    found = {}
    for item_id, user_id, submitted_at in answers:
        before = [at for at in claims.get((item_id, user_id), []) if at <= submitted_at]
        if before:
            found[item_id, user_id, submitted_at] = max(before)
    return found


def percentile(values: Iterable[timedelta], fraction: float) -> timedelta | None:
    """Linear interpolation between the closest ranks, as PostgreSQL's ``percentile_cont``:
    the median of [1, 2, 3, 4] is 2.5; None for no values."""
    ordered = sorted(values)
    if not ordered:
        return None
    position = (len(ordered) - 1) * fraction
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _chart(filters: DashboardFilters, answers: Any, today: date) -> Chart:
    """Completed items per local day over the last ``CHART_DAYS`` days, today last."""
    first = today - timedelta(days=CHART_DAYS - 1)
    per_day = dict(
        answers.filter(finished_at__gte=selectors.start_of_day(first))
        .annotate(day=TruncDate("finished_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    days = [first + timedelta(days=offset) for offset in range(CHART_DAYS)]
    top = _axis_top(max((per_day.get(day, 0) for day in days), default=0))
    slot = (Chart.WIDTH - Chart.LEFT) / CHART_DAYS
    span = Chart.BASELINE - Chart.PLOT_TOP
    bars = []
    for index, day in enumerate(days):
        count = per_day.get(day, 0)
        height = round(span * count / top, 1)
        bars.append(
            Bar(
                day=day,
                count=count,
                url=list_url(filters, status="completed", done=day.isoformat()),
                x=round(Chart.LEFT + (index + 0.15) * slot, 1),
                y=round(Chart.BASELINE - height, 1),
                height=height,
                label_x=round(Chart.LEFT + (index + 0.5) * slot, 1),
            )
        )
    return Chart(bars=bars, top=top)


def _axis_top(highest: int) -> int:
    """A round top for the y axis: 1, 2, 5, 10, 20, 50, … at least ``highest``."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= highest:
                return step * magnitude
        magnitude *= 10


def duration_text(value: timedelta | None) -> str:
    """A handle time as people read it: 45 s, 12 min, 1 h 05 min, 2 d 3 h; — for none."""
    if value is None:
        return "—"
    seconds = round(value.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
