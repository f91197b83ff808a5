"""Reads of the supervisors' dashboard: counts per queue and per person, handle times, and the
chart of completed items per day.

Every count is one of the queue page's lists counted in the database with the same conditions
(``selectors.age_condition``, ``selectors.delivered_answers``, …), and each carries the URL of
that list, so a number and the list it links to agree. A fixed number of queries, whatever the
number of queues, people or items: counts are grouped in the database, and so are handle times
(``percentile_cont`` on PostgreSQL; on SQLite, which has none, in Python over the period's
answers, which only tests and ``make run`` see).

The charts over time (open items per hour and day, answers per hour) and their SVG are in
``dashboard_charts``; handle times in ``dashboard_handle_times``.
"""

import functools
import re
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection, transaction
from django.db.models import Case, CharField, Count, Q, Value, When
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from flows_integration.models import (
    TERMINAL_STATUSES,
    FlowRun,
    FlowTemplate,
    RunStatus,
    TemplateVersion,
)
from reviewqueue import dashboard_charts, roles, selectors
from reviewqueue.dashboard_charts import CHART_DAYS, CHART_HOURS, Bar, Chart, chart
from reviewqueue.dashboard_handle_times import (
    HandleTimes,
    duration_text,
    handle_times,
)
from reviewqueue.models import (
    SUPERVISING_STATUSES,
    WORKABLE_STATUSES,
    ItemReason,
    ItemStatus,
    Queue,
    ReasonKind,
    ReviewItem,
    Submission,
    SubmissionStatus,
)
from reviewqueue.schema_forms.fields import humanize

PERIODS = {
    "today": "Today",
    "7d": "Last 7 days",
    "14d": "Last 14 days",
    "30d": "Last 30 days",
}
DEFAULT_PERIOD = "7d"
AGE_LABELS = {"lt1h": "< 1 h", "1to4h": "1–4 h", "4to24h": "4–24 h", "gt1d": "> 1 day"}
COMPLETED = sorted(selectors.STATUS_FILTERS["completed"][1])
ANSWER_ERRORS = [SubmissionStatus.REJECTED, SubmissionStatus.FAILED]
LIVE_RUN_STATUSES = sorted(set(RunStatus.values) - TERMINAL_STATUSES)
# A FlowTemplate's id in Flows (a slug): what the queue page and the Runs list filter on.
_TEMPLATE_ID = re.compile(r"[-a-zA-Z0-9_]{1,100}")


@dataclass(frozen=True)
class DashboardFilters:
    """The page's filters, all ids and periods (never searched text), so the URL can be
    bookmarked, shared and saved (``SavedView``)."""

    queue: int | None = None
    period: str = DEFAULT_PERIOD
    team: int | None = None  # a Group that some queue names in its teams
    template: str = ""  # a template's id (slug), as the queue page and the Runs list take it

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "DashboardFilters":
        """The page's GET filters; anything malformed falls back to every queue, team and
        template, the last 7 days."""
        queue, team = query.get("queue", ""), query.get("team", "")
        period, template = query.get("period", ""), query.get("template", "")
        return cls(
            queue=int(queue) if queue.isdecimal() and len(queue) < 10 else None,
            period=period if period in PERIODS else DEFAULT_PERIOD,
            team=int(team) if team.isdecimal() and len(team) < 10 else None,
            template=template if _TEMPLATE_ID.fullmatch(template) else "",
        )

    @property
    def period_label(self) -> str:
        return PERIODS[self.period]

    @property
    def query(self) -> str:
        """The query string of these filters (what a saved view keeps), defaults left out."""
        pairs: list[tuple[str, Any]] = [
            ("team", self.team),
            ("queue", self.queue),
            ("template", self.template or None),
            ("period", self.period if self.period != DEFAULT_PERIOD else None),
        ]
        return urlencode([(key, value) for key, value in pairs if value is not None])

    @property
    def scope(self) -> dict[str, Any]:
        """The filters the lists take too, for each number's link."""
        found: dict[str, Any] = {}
        if self.team is not None:
            found["team"] = self.team
        if self.queue is not None:
            found["queue"] = self.queue
        if self.template:
            found["template"] = self.template
        return found


def list_url(filters: DashboardFilters, **query: Any) -> str:
    """The queue page showing what a number counts (scoped to the dashboard's team, queue and
    template)."""
    path = _path("reviewqueue:queue", get_script_prefix())
    return f"{path}?{urlencode({**filters.scope, **query})}"


@functools.lru_cache(maxsize=16)
def _path(name: str, script_prefix: str) -> str:
    """``reverse(name)`` once per script prefix: the page links every number and every bar of
    its charts, several hundred, and reversing each costs more than the page's queries."""
    return reverse(name)


def runs_url(filters: DashboardFilters, **query: Any) -> str:
    """The Runs list showing what a number counts (Runs are scoped by template only)."""
    if filters.template:
        query = {"template": filters.template, **query}
    return f"{_path('reviewqueue:runs', get_script_prefix())}?{urlencode(query)}"


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
    depth_hours: Chart | None = None
    depth_days: Chart | None = None
    done_hours: Chart | None = None

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
    declines: Number
    returns: Number
    signed_in_at: datetime | None = None  # when signed in, if signed in now

    @property
    def median_text(self) -> str:
        return duration_text(self.median)


@dataclass(frozen=True)
class ErrorRow:
    """Items needing attention and answers Flows did not take, of one template's step."""

    template: str  # its name
    step: str  # the callback state's title
    attention: Number
    rejected: Number
    failed: Number


@dataclass
class Dashboard:
    now: datetime
    queues: list[Queue]  # every queue, for the filter
    teams: list[Group]  # every team a queue names, for the filter
    templates: list[tuple[str, str]]  # (template id, name), for the filter
    triage: Number
    attention: Number
    queue_rows: list[QueueRow]
    people: list[PersonRow]
    chart: Chart
    hours_chart: Chart
    runs: list[tuple[str, Number]] = field(default_factory=list)  # (status title, count)
    errors: list[ErrorRow] = field(default_factory=list)
    handle_samples: int = 0

    @property
    def signed_in(self) -> list[PersonRow]:
        return [person for person in self.people if person.signed_in_at is not None]


def dashboard(*, filters: DashboardFilters) -> Dashboard:
    """Everything the page shows, in a fixed number of queries whatever the number of queues,
    people, items or Runs: every count is grouped in the database."""
    if connection.vendor != "postgresql":
        return _dashboard(filters)
    with transaction.atomic(), connection.cursor() as cursor:
        # Counting a hundred thousand items, or an index scan per answer for the handle times,
        # takes a plan's estimate past jit_above_cost; compiling the plan then costs more than
        # running it (the page's queries took 400 ms with JIT, 265 without, at a million
        # Runs): no JIT for the dashboard's statements.
        cursor.execute("SET LOCAL jit = off")
        return _dashboard(filters)


def _dashboard(filters: DashboardFilters) -> Dashboard:
    now = timezone.now()
    today = timezone.localdate()
    window = selectors.done_window(filters.period)
    assert window is not None  # every period is one of selectors.DONE_PERIODS
    period_start = window[0]

    queues = list(Queue.objects.all())
    teams = list(Group.objects.filter(queues__isnull=False).distinct().order_by("name"))
    templates = list(
        FlowTemplate.objects.order_by("template_id").values_list("pk", "template_id", "name")
    )
    template_pk = next((pk for pk, slug, _ in templates if slug == filters.template), None)
    in_team = (
        set(
            Queue.teams.through.objects.filter(group_id=filters.team).values_list(
                "queue_id", flat=True
            )
        )
        if filters.team is not None
        else None
    )
    shown = [
        q for q in queues if filters.queue in (None, q.pk) and (in_team is None or q.pk in in_team)
    ]

    items = ReviewItem.objects.order_by()
    submissions = Submission.objects.order_by()
    reasons = ItemReason.objects.order_by()
    runs = FlowRun.objects.order_by()
    if filters.queue is not None or in_team is not None:
        ids = [q.pk for q in shown]
        items = items.filter(queue_id__in=ids)
        submissions = submissions.filter(item__queue_id__in=ids)
        reasons = reasons.filter(item__queue_id__in=ids)
    if filters.template:
        # An unknown template id matches nothing, as it does on the lists (not "no template").
        known = Q(pk__in=[]) if template_pk is None else Q()
        items = items.filter(known, version__template_id=template_pk)
        submissions = submissions.filter(known, item__version__template_id=template_pk)
        reasons = reasons.filter(known, item__version__template_id=template_pk)
        runs = runs.filter(known, template_id=template_pk)
    answers = submissions.filter(status=SubmissionStatus.DELIVERED, item__status__in=COMPLETED)

    open_counts = _open_counts(items, now)
    in_period = answers.filter(finished_at__gte=period_start)
    handled = handle_times(in_period)
    hours = dashboard_charts.hour_points(now)
    days = dashboard_charts.day_points(now, today)
    depth = dashboard_charts.depth(items, now, [*hours, *days])
    first_day = today - timedelta(days=CHART_DAYS - 1)
    counted = dashboard_charts.answer_counts(
        answers,
        period_from=timezone.localtime(period_start).date(),
        today=today,
        days_from=first_day,
        hours=hours,
    )
    done, done_hourly = counted.queues, counted.hours

    queue_rows = []
    for queue in shown:
        row = _queue_row(
            filters, queue, open_counts.get(queue.pk, {}), done.get(queue.pk, {}), handled
        )
        row.depth_hours = _depth_chart(
            filters, queue, depth.get(queue.pk, {}), hours, now, daily=False
        )
        row.depth_days = _depth_chart(
            filters, queue, depth.get(queue.pk, {}), days, now, daily=True
        )
        row.done_hours = _hours_chart(
            filters, done_hourly.get(queue.pk, {}), hours, queue=queue, small=True
        )
        queue_rows.append(row)
    attention = sum(row.attention.value for row in queue_rows)
    all_hours: dict[datetime, int] = defaultdict(int)
    for queue in shown:
        for hour, count in done_hourly.get(queue.pk, {}).items():
            all_hours[hour] += count
    return Dashboard(
        now=now,
        queues=queues,
        teams=teams,
        templates=[(slug, name or slug) for _, slug, name in templates],
        triage=Number(selectors.runs_in_triage().count(), reverse("reviewqueue:triage")),
        attention=Number(attention, list_url(filters, status="needs_attention")),
        queue_rows=queue_rows,
        people=_people(
            filters,
            items=items,
            done=counted.people,
            reasons=reasons.filter(at__gte=period_start),
            handled=handled,
            members_of=[q.pk for q in shown] if filters.scope else None,
        ),
        chart=_chart(filters, counted.days, first_day),
        hours_chart=_hours_chart(filters, all_hours, hours),
        runs=_runs_by_status(filters, runs, period_start),
        errors=_errors(filters, items, submissions.filter(finished_at__gte=period_start)),
        handle_samples=handled.samples,
    )


def _open_counts(items: Any, now: datetime) -> dict[int, dict[str, int]]:
    """Per queue: open (open or claimed) items by age and due time, and those needing
    attention, in one grouped query.

    Each item is placed once, in its age bucket and its due bucket (the lists' own conditions,
    which do not overlap), and grouped by queue, status and the two buckets: a few dozen groups
    summed here. Eight ``COUNT ... FILTER`` each testing the status again took a fifth longer
    over a hundred thousand open items. Every column read is in
    ``item_supervising_counts_idx``: PostgreSQL counts from the index alone."""
    age = Case(
        *[When(selectors.age_condition(key, now), then=Value(key)) for key in selectors.AGES],
        default=None,
        output_field=CharField(),
    )
    due = Case(
        When(due_at__lt=now, then=Value("overdue")),
        When(selectors.due_soon_condition(now), then=Value("due_soon")),
        default=None,
        output_field=CharField(),
    )
    rows = (
        items.filter(status__in=sorted(SUPERVISING_STATUSES))
        .annotate(age=age, due=due)
        .values("queue_id", "status", "age", "due")
        .annotate(n=Count("queue"))
        .values_list("queue_id", "status", "age", "due", "n")
    )
    found: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for queue_id, status, age_key, due_key, n in rows:
        counts = found[queue_id]
        if status == ItemStatus.NEEDS_ATTENTION:
            counts["attention"] += n
        if status not in WORKABLE_STATUSES:
            continue
        counts["open"] += n
        if age_key is not None:
            counts[f"age_{age_key}"] += n
        if due_key is not None:
            counts[due_key] += n
    return found


def _queue_row(
    filters: DashboardFilters,
    queue: Queue,
    counts: Mapping[str, int],
    done: Mapping[str, Any],
    handled: "HandleTimes",
) -> QueueRow:
    def number(key: str, source: Mapping[str, int] = counts, **query: Any) -> Number:
        return Number(source.get(key, 0), list_url(filters, queue=queue.pk, **query))

    median, p90 = handled.queues.get(queue.pk, (None, None))
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
        median=median,
        p90=p90,
    )


def _people(
    filters: DashboardFilters,
    *,
    items: Any,
    done: Mapping[int, Mapping[str, int]],
    reasons: Any,
    handled: "HandleTimes",
    members_of: list[int] | None,
) -> list[PersonRow]:
    """Everyone holding a claim now, with an answer delivered, an item declined or returned in
    the period, or signed in now (with a team, queue or template chosen: signed in and in a
    team of the queues shown)."""
    claims = dict(
        items.filter(status=ItemStatus.CLAIMED)
        .values("claimed_by_id")
        .annotate(n=Count("pk"))
        .values_list("claimed_by_id", "n")
    )
    # Items, not reason rows: an item declined twice by one person is one item on the list the
    # number opens (and twice is rare: "get next" never hands a declined item back).
    gave = {
        row["by_id"]: row
        for row in reasons.filter(kind__in=[ReasonKind.DECLINE, ReasonKind.RETURN])
        .values("by_id")
        .annotate(
            declines=Count("item", distinct=True, filter=Q(kind=ReasonKind.DECLINE)),
            returns=Count("item", distinct=True, filter=Q(kind=ReasonKind.RETURN)),
        )
    }
    signed_in = signed_in_now()
    working = set(claims) | set(done) | set(gave)
    users = get_user_model().objects.filter(pk__in=working | set(signed_in))
    if members_of is not None:
        users = users.filter(Q(pk__in=working) | Q(groups__queues__in=members_of)).distinct()
    rows = []
    for user in users:
        mine, reasoned = done.get(user.pk, {}), gave.get(user.pk, {})

        def reason(kind: str, key: str, user: Any = user, reasoned: Any = reasoned) -> Number:
            return Number(
                reasoned.get(key, 0),
                list_url(
                    filters, status="any", reason=kind, reason_by=user.pk, done=filters.period
                ),
            )

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
                median=handled.people.get(user.pk),
                declines=reason(ReasonKind.DECLINE, "declines"),
                returns=reason(ReasonKind.RETURN, "returns"),
                signed_in_at=signed_in.get(user.pk),
            )
        )
    return sorted(rows, key=lambda row: row.name.lower())


DB_SESSIONS = ("django.contrib.sessions.backends.db", "django.contrib.sessions.backends.cached_db")


def signed_in_now() -> dict[int, datetime]:
    """Who is signed in now, and since when: people with a session that has not ended by the
    limits ``config.middleware.session_limits`` enforces (idle, longest, replaced by a later
    sign-in). Signing out deletes the session; an idle one stays in the table until someone
    reuses it or ``clearsessions`` runs, so the limits are read from each session's data.

    Cheap for hundreds of staff: a session is saved, and its expiry pushed a full
    ``SESSION_COOKIE_AGE`` on, each time its activity is recorded, so only sessions expiring
    after ``now + age - idle limit`` can still be active, and the indexed ``expire_date`` finds
    those; only they are decoded (no user column to join on in Django's table). Empty under a
    session engine without a table (cache or signed cookies)."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session

    from config.middleware import SIGN_IN_KEY
    from reviewqueue.models import LatestSignIn

    if settings.SESSION_ENGINE not in DB_SESSIONS:
        return {}
    now = timezone.now()
    cutoff = now + timedelta(seconds=settings.SESSION_COOKIE_AGE - settings.SESSION_IDLE_SECONDS)
    store, clock = SessionStore(), int(time.time())
    found: dict[int, tuple[int, str]] = {}
    for data in Session.objects.filter(expire_date__gt=cutoff).values_list(
        "session_data", flat=True
    ):
        session = store.decode(data)
        user_id, started = session.get("_auth_user_id"), session.get("signed_in_at")
        active = session.get("active_at", started)
        if not (str(user_id or "").isdecimal() and isinstance(started, int)):
            continue
        if not isinstance(active, int) or clock - active > settings.SESSION_IDLE_SECONDS:
            continue
        if clock - started > settings.SESSION_MAX_SECONDS:
            continue
        key = int(str(user_id))
        if key not in found or found[key][0] > started:
            found[key] = (started, str(session.get(SIGN_IN_KEY, "")))
    if settings.SESSION_ONE_PER_USER and found:
        # A session replaced by a later sign-in ends at its next request: not signed in.
        latest = dict(LatestSignIn.objects.filter(user_id__in=found).values_list("user_id", "key"))
        found = {pk: seen for pk, seen in found.items() if latest.get(pk) == seen[1]}
    return {
        pk: datetime.fromtimestamp(started, tz=timezone.get_current_timezone())
        for pk, (started, _) in found.items()
    }


def _chart(filters: DashboardFilters, per_day: Mapping[date, int], first: date) -> Chart:
    """Completed items per local day over the ``CHART_DAYS`` days from ``first``, today last."""
    days = [first + timedelta(days=offset) for offset in range(CHART_DAYS)]
    bars = [
        Bar(
            key=day.isoformat(),
            label=f"{day:%a}",
            sub=str(day.day),
            text=f"{day:%a} {day.day} {day:%b}",
            count=per_day.get(day, 0),
            url=list_url(filters, status="completed", done=day.isoformat()),
        )
        for day in days
    ]
    title = f"Completed items per day, last {CHART_DAYS} days, {_where(filters)}"
    return chart(
        id="dash-chart", title=title, bars=bars, caption="The numbers, day by day", head="Day"
    )


def _where(filters: DashboardFilters) -> str:
    return "the queues chosen" if filters.scope else "all queues"


def _depth_chart(
    filters: DashboardFilters,
    queue: Queue,
    depth: Mapping[datetime, int],
    points: list[datetime],
    now: datetime,
    *,
    daily: bool,
) -> Chart:
    bars = []
    for at in points:
        local = timezone.localtime(at)
        if at == now:
            text = "now"
        elif daily:
            # The end of a day: midnight, which is the next day's start.
            day = (local - timedelta(days=1)).date()
            text = f"end of {day:%a} {day.day} {day:%b}"
        else:
            text = f"{local:%H:%M}"
        bars.append(
            Bar(
                key=at.isoformat(),
                label="",
                sub="",
                text=text,
                count=depth.get(at, 0),
                url=list_url(filters, queue=queue.pk, status="any", open_at=at.isoformat()),
            )
        )
    span = f"last {CHART_DAYS} days" if daily else f"last {CHART_HOURS} hours"
    return chart(
        id=f"depth-{'days' if daily else 'hours'}-{queue.pk}",
        title=f"Open items in {queue.name}, {span}",
        bars=bars,
        width=320,
        height=110,
        small=True,
        additive=False,
        caption=f"Open items, {'day by day' if daily else 'hour by hour'}",
        head="At",
    )


def _hours_chart(
    filters: DashboardFilters,
    per_hour: Mapping[datetime, int],
    hours: list[datetime],
    *,
    queue: Queue | None = None,
    small: bool = False,
) -> Chart:
    """Completed items per local hour, the current hour (so far) last."""
    scope = {"queue": queue.pk} if queue is not None else {}
    bars = []
    for hour in hours:
        local = timezone.localtime(hour)
        bars.append(
            Bar(
                key=hour.isoformat(),
                label=f"{local:%H}" if local.hour % 3 == 0 else "",
                sub="",
                text=f"{local:%H}:00–{(local + timedelta(hours=1)):%H}:00",
                count=per_hour.get(hour, 0),
                url=list_url(filters, **scope, status="completed", done=f"{local:%Y-%m-%dT%H}"),
            )
        )
    where = queue.name if queue is not None else _where(filters)
    title = f"Completed items per hour, last {CHART_HOURS} hours, {where}"
    if small:
        return chart(
            id=f"done-hours-{queue.pk if queue else 'all'}",
            title=title,
            bars=bars,
            width=320,
            height=110,
            small=True,
            caption="Completed, hour by hour",
            head="Hour",
        )
    return chart(
        id="dash-hours-chart",
        title=title,
        bars=bars,
        caption="The numbers, hour by hour",
        head="Hour",
    )


def _runs_by_status(
    filters: DashboardFilters, runs: Any, period_start: datetime
) -> list[tuple[str, Number]]:
    """Mirrored Runs per status, in the lifecycle's order: every Run not finished yet, and the
    finished ones (complete, error) created in the period, each linking to the Runs list with
    the same status and ``created_from``. The mirror only grows, finished Runs by far the most
    (a million and more): counting all of them would scan them all at every refresh. One
    query, two index-only ranges of ``mirror_run_status_created_idx`` on PostgreSQL."""
    live = runs.filter(status__in=LIVE_RUN_STATUSES).values("status").annotate(n=Count("*"))
    ended = (
        runs.filter(status__in=sorted(TERMINAL_STATUSES), created_at__gte=period_start)
        .values("status")
        .annotate(n=Count("*"))
    )
    # (An explicit order: a union of grouped rows would otherwise be ordered as the model.)
    counts = {row["status"]: row["n"] for row in live.union(ended, all=True).order_by("status")}
    since = timezone.localtime(period_start).date().isoformat()
    return [
        (
            title,
            Number(
                counts.get(status, 0),
                runs_url(filters, status=status, created_from=since)
                if status in TERMINAL_STATUSES
                else runs_url(filters, status=status),
            ),
        )
        for status, title in RunStatus.choices
    ]


def _errors(filters: DashboardFilters, items: Any, ended: Any) -> list[ErrorRow]:
    """Per template and step: items needing attention now, and items with an answer rejected by
    Flows or failed after retries in the period. Two grouped queries, and one for the steps'
    titles when there is anything to show."""
    attention = (
        items.filter(status=ItemStatus.NEEDS_ATTENTION)
        .values("version_id", "state_id")
        .annotate(n=Count("pk"))
        .values_list("version_id", "state_id", "n")
    )
    wrong = (
        ended.filter(status__in=ANSWER_ERRORS)
        .values("item__version_id", "item__state_id")
        .annotate(
            rejected=Count("item", distinct=True, filter=Q(status=SubmissionStatus.REJECTED)),
            failed=Count("item", distinct=True, filter=Q(status=SubmissionStatus.FAILED)),
        )
        .values_list("item__version_id", "item__state_id", "rejected", "failed")
    )
    counts: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for version_id, state_id, n in attention:
        counts[version_id, state_id][0] += n
    for version_id, state_id, rejected, failed in wrong:
        counts[version_id, state_id][1] += rejected
        counts[version_id, state_id][2] += failed
    if not counts:
        return []
    versions = {
        pk: (slug, name or slug)
        for pk, slug, name in TemplateVersion.objects.filter(
            pk__in={version_id for version_id, _ in counts}
        ).values_list("pk", "template__template_id", "template__name")
    }
    steps = selectors.queue_steps(version_ids=set(versions))
    # Versions of one template and its step are one row: the lists filter by template id.
    merged: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    titles: dict[tuple[str, str], tuple[str, str]] = {}
    for (version_id, state_id), numbers in counts.items():
        slug, name = versions[version_id]
        key = (slug, state_id)
        merged[key] = [a + b for a, b in zip(merged[key], numbers, strict=True)]
        titles[key] = (
            name,
            steps.titles.get((version_id, state_id)) or humanize(state_id),
        )
    rows = []
    for (slug, state_id), (attention_n, rejected_n, failed_n) in merged.items():
        scope = {"template": slug, "state": state_id}
        name, step = titles[slug, state_id]

        def wrongly(status: str, n: int, scope: dict[str, str] = scope) -> Number:
            return Number(
                n, list_url(filters, **scope, status="any", answer=status, done=filters.period)
            )

        rows.append(
            ErrorRow(
                template=name,
                step=step,
                attention=Number(attention_n, list_url(filters, **scope, status="needs_attention")),
                rejected=wrongly(SubmissionStatus.REJECTED, rejected_n),
                failed=wrongly(SubmissionStatus.FAILED, failed_n),
            )
        )
    return sorted(rows, key=lambda row: (row.template.lower(), row.step.lower()))
