"""The supervisors' dashboard over time: the open items per queue at each hour and day, the
answers delivered per queue, person, day and hour (grouped queries, moments placed between
points by ``Bucket``), and the bar charts that show them.

A chart is drawn here, as SVG and a table of its numbers, rather than in a template loop: the
page holds some 300 bars, each with a link, and the template engine took more time drawing them
(about 100 ms a page on the benchmark's machine) than the database took to count them.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import accumulate
from typing import Any

from django.db.models import (
    Case,
    Count,
    DateTimeField,
    ExpressionWrapper,
    F,
    Func,
    IntegerField,
    Value,
    When,
)
from django.db.models.lookups import GreaterThanOrEqual
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from reviewqueue import selectors

CHART_DAYS = 14
CHART_HOURS = 24


@dataclass(frozen=True)
class Bar:
    """One bar of a chart: a count at a time, and the list it counts."""

    key: str  # the moment or day, ISO (the SVG's data-at)
    label: str  # under the bar
    sub: str  # a second line under it ("" for none)
    text: str  # in the numbers table and the chart's description ("Thu 14 May")
    count: int
    url: str
    x: float = 0
    y: float = 0
    height: float = 0
    label_x: float = 0  # the middle of the bar, for its texts

    @property
    def value_y(self) -> float:
        """Where the bar's count sits: just above it."""
        return round(self.y - 5, 1)


@dataclass(frozen=True)
class Chart:
    """Bars in an SVG of ``width`` × ``height`` units; the page scales it to its box."""

    id: str
    title: str  # what it shows, with its period
    bars: list[Bar]
    top: int  # the y axis's highest value
    width: int = 640
    height: int = 220
    small: bool = False  # a queue's small chart: no labels under the bars
    additive: bool = True  # whether the bars add up to something (not so open items)
    caption: str = ""  # what opens the table of its numbers
    head: str = ""  # that table's first column

    LEFT = 36  # room for the y axis's labels
    PLOT_TOP = 24  # room for the tallest bar's count

    @property
    def baseline(self) -> int:
        """The y of the axis; the bars' labels below it."""
        return self.height - (8 if self.small else 40)

    @property
    def total(self) -> int:
        return sum(bar.count for bar in self.bars)

    @property
    def bar_width(self) -> float:
        return round((self.width - self.LEFT) / max(len(self.bars), 1) * 0.7, 1)

    @property
    def summary(self) -> str:
        """The numbers, for a screen reader (the chart's <desc>)."""
        numbers = "; ".join(f"{bar.text}: {bar.count}" for bar in self.bars)
        return f"{numbers}. {self.total} in all." if self.additive else f"{numbers}."

    @property
    def html(self) -> SafeString:
        """The chart as the page shows it: an SVG scaled to its box (it never scrolls), its
        title and numbers for a screen reader, and the numbers again as links in a table under
        it. Every text is escaped, as the template engine would."""
        id_, title, base = escape(self.id), escape(self.title), self.baseline
        width = self.bar_width
        svg = [
            f'<figure class="chart{" chart-small" if self.small else ""}">\n'
            f'  <svg class="dash-chart" id="{id_}" viewBox="0 0 {self.width} {self.height}" '
            f'role="img" aria-labelledby="{id_}-title {id_}-desc" '
            'preserveAspectRatio="xMidYMid meet">\n'
            f'    <title id="{id_}-title">{title}</title>\n'
            f'    <desc id="{id_}-desc">{escape(self.summary)}</desc>\n'
            f'    <line class="axis" x1="{self.LEFT}" y1="{base}" x2="{self.width}" '
            f'y2="{base}"></line>\n'
            f'    <line class="axis" x1="{self.LEFT}" y1="{self.PLOT_TOP}" x2="{self.LEFT}" '
            f'y2="{base}"></line>\n'
            f'    <text class="tick" x="{self.LEFT - 6}" y="{self.PLOT_TOP + 4}" '
            f'text-anchor="end">{self.top}</text>\n'
            f'    <text class="tick" x="{self.LEFT - 6}" y="{base + 4}" '
            'text-anchor="end">0</text>\n'
        ]
        for bar in self.bars:
            svg.append(
                f'    <rect class="bar" data-at="{escape(bar.key)}" data-count="{bar.count}" '
                f'x="{bar.x}" y="{bar.y}" width="{width}" height="{bar.height}"></rect>\n'
            )
            if self.small:
                continue
            middle = bar.label_x
            if bar.count:
                svg.append(
                    f'    <text class="value" x="{middle}" y="{bar.value_y}" '
                    f'text-anchor="middle">{bar.count}</text>\n'
                )
            for text, below in ((bar.label, 16), (bar.sub, 31)):
                if text:
                    svg.append(
                        f'    <text class="tick" x="{middle}" y="{base + below}" '
                        f'text-anchor="middle">{escape(text)}</text>\n'
                    )
        svg.append(
            "  </svg>\n"
            '  <details class="chart-numbers">\n'
            f'    <summary>{escape(self.caption)}<span class="visually-hidden">: {title}</span>'
            "</summary>\n"
            f'    <table class="queue" id="{id_}-numbers">\n'
            f'      <thead><tr><th scope="col">{escape(self.head)}</th>'
            '<th scope="col">Items</th></tr></thead>\n'
            "      <tbody>\n"
        )
        for bar in self.bars:
            svg.append(
                f'      <tr><th scope="row">{escape(bar.text)}</th><td><a href="{escape(bar.url)}">'
                f'{bar.count}<span class="visually-hidden"> {title}: {escape(bar.text)}</span>'
                "</a></td></tr>\n"
            )
        svg.append("      </tbody>\n    </table>\n  </details>\n</figure>\n")
        return mark_safe("".join(svg))  # noqa: S308 (every value above is escaped)


def chart(
    *,
    id: str,
    title: str,
    bars: list[Bar],
    width: int = 640,
    height: int = 220,
    small: bool = False,
    additive: bool = True,
    caption: str = "",
    head: str = "",
) -> Chart:
    """``bars`` laid out left to right, heights to a round top."""
    shape = Chart(id=id, title=title, bars=[], top=1, width=width, height=height, small=small)
    top = axis_top(max((bar.count for bar in bars), default=0))
    slot = (width - Chart.LEFT) / max(len(bars), 1)
    span = shape.baseline - Chart.PLOT_TOP
    placed = []
    for index, bar in enumerate(bars):
        height_ = round(span * bar.count / top, 1)
        placed.append(
            Bar(
                key=bar.key,
                label=bar.label,
                sub=bar.sub,
                text=bar.text,
                count=bar.count,
                url=bar.url,
                x=round(Chart.LEFT + (index + 0.15) * slot, 1),
                y=round(shape.baseline - height_, 1),
                height=height_,
                label_x=round(Chart.LEFT + (index + 0.5) * slot, 1),
            )
        )
    return Chart(
        id=id,
        title=title,
        bars=placed,
        top=top,
        width=width,
        height=height,
        small=small,
        additive=additive,
        caption=caption,
        head=head,
    )


def axis_top(highest: int) -> int:
    """A round top for the y axis: 1, 2, 5, 10, 20, 50, … at least ``highest``."""
    magnitude = 1
    while True:
        for step in (1, 2, 5):
            if step * magnitude >= highest:
                return step * magnitude
        magnitude *= 10


def hour_points(now: datetime) -> list[datetime]:
    """The tops of the last ``CHART_HOURS`` local hours, the current one last."""
    local = timezone.localtime(now)
    top = local.replace(minute=0, second=0, microsecond=0)
    return [top - timedelta(hours=back) for back in range(CHART_HOURS - 1, -1, -1)]


def day_points(now: datetime, today: date) -> list[datetime]:
    """The ends of the last ``CHART_DAYS - 1`` local days, then now (today so far)."""
    ends = [
        selectors.start_of_day(today - timedelta(days=back))
        for back in range(CHART_DAYS - 2, -1, -1)
    ]
    return [*ends, now]


class Bucket(Func):
    """How many of ``thresholds`` (moments, ascending) are at or before the expression: 0
    before the first, ``len(thresholds)`` at or after the last.

    PostgreSQL's ``width_bucket`` finds it by binary search. Grouping by it rather than by
    ``date_trunc`` in the site's zone halves the time of counting a hundred thousand rows, and
    the database returns a few dozen integers instead of a thousand hours, each of which Django
    would make aware one by one. Elsewhere (SQLite), the same count as a ``CASE``.
    """

    output_field = IntegerField()

    def __init__(self, expression: Any, thresholds: list[datetime]) -> None:
        super().__init__(expression)
        self.thresholds = thresholds

    def as_sql(self, compiler: Any, connection: Any, *args: Any, **extra: Any) -> Any:
        (source,) = self.get_source_expressions()
        moments = list(enumerate(self.thresholds, start=1))
        case = Case(
            *[
                When(GreaterThanOrEqual(source, Value(at, DateTimeField())), then=Value(n))
                for n, at in reversed(moments)
            ],
            default=Value(0),
            output_field=IntegerField(),
        )
        return compiler.compile(case)

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> Any:
        sql, params = compiler.compile(self.get_source_expressions()[0])
        return f"width_bucket({sql}, %s::timestamptz[])", (*params, list(self.thresholds))


def depth(items: Any, now: datetime, points: list[datetime]) -> dict[int, dict[datetime, int]]:
    """Per queue, the items open at each of ``points``: opened at or before it, and not closed
    by then (``closed_at`` empty or later). Three grouped queries, whatever the number of
    points: the items open now, and those opened and closed since the first point, counted
    between points; each from an index alone (``item_closed_queue_idx``,
    ``item_opened_queue_idx``).

    Going back from now, an item opened after a point was not open then, and one closed after
    it was. A moment is placed by how many points lie strictly before it (shifted by a
    microsecond, the database's resolution, before ``Bucket``), so an item opened exactly at a
    point counts as open at it, as the list linked from it does (``opened_at <= t``)."""
    ordered = sorted(set(points))
    open_now = dict(
        items.filter(closed_at__isnull=True, opened_at__lte=now)
        .values("queue_id")
        .annotate(n=Count("*"))
        .values_list("queue_id", "n")
    )
    # Per queue, how many opened (closed) after each point: after ordered[i] = bucket > i.
    after: dict[str, dict[int, list[int]]] = {}
    for name in ("opened_at", "closed_at"):
        shifted = ExpressionWrapper(
            F(name) - timedelta(microseconds=1), output_field=DateTimeField()
        )
        rows = (
            items.filter(**{f"{name}__gt": ordered[0], f"{name}__lte": now})
            .annotate(bucket=Bucket(shifted, ordered))
            .values("queue_id", "bucket")
            .annotate(n=Count("*"))
            .values_list("queue_id", "bucket", "n")
        )
        per_queue: dict[int, list[int]] = {}
        for queue_id, bucket, n in rows:
            counts = per_queue.setdefault(queue_id, [0] * (len(ordered) + 1))
            counts[bucket] += n
        after[name] = {
            queue_id: list(accumulate(reversed(counts)))[::-1][1:]
            for queue_id, counts in per_queue.items()
        }
    found: dict[int, dict[datetime, int]] = {}
    nothing = [0] * len(ordered)
    for queue_id in set(open_now) | set(after["opened_at"]) | set(after["closed_at"]):
        opened = after["opened_at"].get(queue_id, nothing)
        closed = after["closed_at"].get(queue_id, nothing)
        here = open_now.get(queue_id, 0)
        at_point = {at: here - opened[i] + closed[i] for i, at in enumerate(ordered)}
        found[queue_id] = {at: at_point[at] if at < now else here for at in points}
    return found


@dataclass
class AnswerCounts:
    """Answers delivered, counted once and read four ways: per queue and per person in the
    period and today, per local day for the daily chart, per queue and local hour for the
    hourly ones."""

    queues: dict[int, dict[str, int]]  # queue -> {"today": n, "period": n}
    people: dict[int, dict[str, int]]  # submitter -> {"today": n, "period": n}
    days: dict[date, int]
    hours: dict[int, dict[datetime, int]]  # queue -> local hour -> n


def answer_counts(
    answers: Any, *, period_from: date, today: date, days_from: date, hours: list[datetime]
) -> AnswerCounts:
    """The answers since the earlier of ``period_from`` and ``days_from`` (local days), in one
    grouped query by queue, submitter, local day and (in ``hours``, the last ones) local
    hour: four queries once, each joining the answers to their items again. The groups are
    a few thousand at most (queues × people × days)."""
    first = min(period_from, days_from)
    days = [first + timedelta(days=n) for n in range((today - first).days + 1)]
    rows = (
        answers.filter(finished_at__gte=selectors.start_of_day(first))
        .annotate(
            day=Bucket(F("finished_at"), [selectors.start_of_day(day) for day in days]),
            hour=Bucket(F("finished_at"), hours),
        )
        .values("item__queue_id", "submitted_by_id", "day", "hour")
        .annotate(n=Count("pk"))
        .values_list("item__queue_id", "submitted_by_id", "day", "hour", "n")
    )
    counts = AnswerCounts(queues={}, people={}, days=defaultdict(int), hours={})
    for queue_id, user_id, day_number, hour_number, n in rows:
        day = days[day_number - 1]  # the filter leaves no answer before the first day
        if day >= period_from:
            for totals in (
                counts.queues.setdefault(queue_id, {"today": 0, "period": 0}),
                counts.people.setdefault(user_id, {"today": 0, "period": 0}),
            ):
                totals["period"] += n
                totals["today"] += n if day >= today else 0
        if day >= days_from:
            counts.days[day] += n
        if hour_number:
            per_hour = counts.hours.setdefault(queue_id, defaultdict(int))
            per_hour[hours[hour_number - 1]] += n
    return counts
