"""Reads of the supervisors' CSV reports: completed work, the current queue, and throughput per
person (docs/supervisors.md, "Reports").

Rows are produced as the database hands them over (``.iterator(chunk_size=CHUNK_SIZE)``) and what
a row needs from elsewhere (its claim in the audit trail, its step's title) is looked up once per
chunk, so an export costs a few queries per ``CHUNK_SIZE`` rows and never holds all its rows in
memory. Times are UTC (ISO 8601); periods are local days, as on the dashboard. Patient data (the
answer, the patient's name) is in a report only for someone who may see it
(``audit.view_patient_data``).
"""

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import batched
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, QuerySet
from django.utils import timezone

import flowspec
from flows_integration.models import TemplateVersion
from reviewqueue import present, selectors
from reviewqueue.dashboard_handle_times import percentile
from reviewqueue.dashboard_selectors import COMPLETED, DEFAULT_PERIOD, PERIODS
from reviewqueue.models import (
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
from reviewqueue.schema_forms.labels import value_title

CHUNK_SIZE = 2000
EARLIEST = date(2000, 1, 1)

REPORTS = {
    "completed": "Completed work",
    "queue": "Current queue",
    "throughput": "Throughput per person",
}


class FilterError(ValueError):
    """A filter that means nothing; its message says so in plain words (the view answers 400)."""


@dataclass(frozen=True)
class ReportFilters:
    queue: int | None = None
    period: str = DEFAULT_PERIOD  # a key of PERIODS, or "" when dates are given
    start: date | None = None  # from, inclusive (with ``period`` "")
    end: date | None = None  # to, inclusive

    def window(self) -> tuple[datetime, datetime | None]:
        """[from, until) in the viewer's time zone, as the dashboard's periods."""
        if self.period:
            window = selectors.done_window(self.period)
            assert window is not None  # every period is one of selectors.DONE_PERIODS
            return window
        assert self.start is not None and self.end is not None
        return (
            selectors.start_of_day(self.start),
            selectors.start_of_day(self.end + timedelta(days=1)),
        )

    def described(self) -> dict[str, Any]:
        """For the audit trail and the file's name: ids and dates, never patient data."""
        if self.period:
            found: dict[str, Any] = {"period": self.period}
        else:
            found = {"from": str(self.start), "to": str(self.end)}
        if self.queue is not None:
            found["queue"] = self.queue
        return found


def report_filters(query: Mapping[str, str]) -> ReportFilters:
    """The export's GET filters: ``queue=<id>``, and ``period=today|7d|14d|30d`` or
    ``from=YYYY-MM-DD[&to=YYYY-MM-DD]``. Unlike the dashboard, which falls back to its defaults,
    a value that means nothing raises FilterError: a download must not quietly hold another
    period or queue than the one asked for."""
    queue_text = query.get("queue", "")
    queue = None
    if queue_text:
        if not (queue_text.isdecimal() and len(queue_text) < 10):
            raise FilterError("queue must be a queue's number.")
        queue = int(queue_text)
        if not Queue.objects.filter(pk=queue).exists():
            raise FilterError(f"There is no queue {queue}.")
    period = query.get("period", "")
    start_text, end_text = query.get("from", ""), query.get("to", "")
    if not (start_text or end_text):
        if period and period not in PERIODS:
            raise FilterError(
                f"period must be one of {', '.join(PERIODS)}, or give from and to dates."
            )
        return ReportFilters(queue=queue, period=period or DEFAULT_PERIOD)
    if period:
        raise FilterError("Give a period or from/to dates, not both.")
    if not start_text:
        raise FilterError("Give the first day too: from=YYYY-MM-DD.")
    start = _day(start_text, "from")
    end = _day(end_text, "to") if end_text else timezone.localdate()
    if start < EARLIEST:
        raise FilterError(f"from must be {EARLIEST.isoformat()} or later.")
    if start > end:
        raise FilterError("from must be on or before to.")
    return ReportFilters(queue=queue, period="", start=start, end=end)


def _day(text: str, name: str) -> date:
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise FilterError(f"{name} must be a date written YYYY-MM-DD.")


def rows(report: str, *, filters: ReportFilters, patient_data: bool) -> Iterator[Sequence[Any]]:
    """The report's header, then its rows, lazily."""
    if report == "completed":
        return completed_rows(filters=filters, patient_data=patient_data)
    if report == "queue":
        return queue_rows(filters=filters, patient_data=patient_data)
    if report == "throughput":
        return throughput_rows(filters=filters)
    raise KeyError(report)


# --- Completed work ------------------------------------------------------------------------------

COMPLETED_COLUMNS = [
    "answered_by",
    "login",
    "queue",
    "template",
    "step",
    "run_id",
    "item_id",
    "opened_utc",
    "claimed_utc",
    "submitted_utc",
    "delivered_utc",
    "handle_seconds",
    "decision",
]


def delivered_in(filters: ReportFilters) -> QuerySet[Submission]:
    """Answers delivered in the period, as the dashboard counts "completed": the submission is
    delivered, its item delivered or resumed, by the time of delivery."""
    start, until = filters.window()
    answers = Submission.objects.filter(
        status=SubmissionStatus.DELIVERED, item__status__in=COMPLETED, finished_at__gte=start
    ).order_by()
    if until is not None:
        answers = answers.filter(finished_at__lt=until)
    if filters.queue is not None:
        answers = answers.filter(item__queue_id=filters.queue)
    return answers


def completed_rows(*, filters: ReportFilters, patient_data: bool) -> Iterator[Sequence[Any]]:
    """One row per delivered answer, oldest delivery first. The decision only as a choice of
    its schema; the answer itself (free text may hold patient data) only with ``patient_data``."""
    yield [*COMPLETED_COLUMNS, *(["answer"] if patient_data else [])]
    answers = (
        delivered_in(filters)
        .order_by("finished_at", "pk")
        .values_list(
            "item_id",
            "submitted_by_id",
            "submitted_by__username",
            "submitted_by__first_name",
            "submitted_by__last_name",
            "created_at",
            "claimed_at",
            "finished_at",
            "input",
            "item__queue__name",
            "item__version_id",
            "item__state_id",
            "item__run_ref",
            "item__opened_at",
            named=True,
        )
    )
    steps = _Steps()
    for chunk in batched(answers.iterator(chunk_size=CHUNK_SIZE), CHUNK_SIZE):
        steps.learn(row.item__version_id for row in chunk)
        for row in chunk:
            step = steps.get(row.item__version_id, row.item__state_id)
            claim = row.claimed_at
            decision = row.input.get("decision") if isinstance(row.input, dict) else None
            line = [
                _name(row.submitted_by__first_name, row.submitted_by__last_name)
                or row.submitted_by__username,
                row.submitted_by__username,
                row.item__queue__name,
                step.template,
                step.title,
                row.item__run_ref,
                row.item_id,
                utc(row.item__opened_at),
                utc(claim),
                utc(row.created_at),
                utc(row.finished_at),
                seconds(row.created_at - claim) if claim is not None else None,
                decision_text(step.decision, decision),
            ]
            if patient_data:
                line.append(json.dumps(row.input, sort_keys=True, ensure_ascii=False))
            yield line


@dataclass(frozen=True)
class Step:
    template: str
    title: str
    decision: Any = None  # the schema of the answer's top-level ``decision``, if declared


class _Steps:
    """Steps' titles and decision schemas by (version, state), read per chunk for the versions
    not seen yet (one query at most per chunk). Only these few strings are kept, not the
    versions' documents."""

    def __init__(self) -> None:
        self.steps: dict[tuple[int, str], Step] = {}
        self.templates: dict[int, str] = {}

    def learn(self, version_ids: Iterable[int]) -> None:
        new = set(version_ids) - set(self.templates)
        if not new:
            return
        versions = TemplateVersion.objects.filter(pk__in=new).values_list(
            "pk", "template__template_id", "template__name", "document"
        )
        for pk, template_id, name, document in versions:
            self.templates[pk] = name or template_id
            states = document.get("states", {}) if isinstance(document, Mapping) else {}
            for state_id, state in states.items() if isinstance(states, Mapping) else ():
                if not (isinstance(state, Mapping) and state.get("type") == "callback"):
                    continue
                schema = state.get("input")
                fields = flowspec.declared_properties(schema) if isinstance(schema, Mapping) else {}
                self.steps[pk, state_id] = Step(
                    template=self.templates[pk],
                    title=selectors.state_title(document, state_id),
                    decision=fields.get("decision"),
                )

    def get(self, version_id: int, state_id: str) -> Step:
        found = self.steps.get((version_id, state_id))
        if found is None:  # a state the version does not have (or no longer says is a callback)
            return Step(self.templates.get(version_id, ""), humanize(state_id))
        return found


def decision_text(schema: Any, value: Any) -> str:
    """The answer's decision as the item page shows it (a `oneOf` choice by its title, a
    boolean as Yes/No), when the schema restricts it to a list of choices; else blank: a
    decision the schema leaves free could be free text, and free text may hold patient data."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return present.value(value, schema)
    if not isinstance(schema, Mapping) or isinstance(value, dict | list):
        return ""
    title = value_title(schema, value)
    if title is not None:
        return title
    choices = [c.get("const") for c in schema.get("oneOf") or [] if isinstance(c, Mapping)]
    enum = schema.get("enum")
    if value in choices or (isinstance(enum, list) and value in enum):
        return present.value(value, schema)
    return ""


# --- The current queue ---------------------------------------------------------------------------

QUEUE_COLUMNS = [
    "queue",
    "template",
    "step",
    "run_id",
    "item_id",
    "status",
    "claimed_by",
    "opened_utc",
    "due_utc",
    "overdue",
    "priority",
    "postponed_until_utc",
]


def queue_rows(*, filters: ReportFilters, patient_data: bool) -> Iterator[Sequence[Any]]:
    """Open and claimed items now (postponed ones too, with their time), most urgent first as
    on the queue page; the period does not apply. The patient's name only with
    ``patient_data``."""
    yield [*QUEUE_COLUMNS, *(["patient_name"] if patient_data else [])]
    now = timezone.now()
    items = ReviewItem.objects.filter(status__in=sorted(WORKABLE_STATUSES))
    if filters.queue is not None:
        items = items.filter(queue_id=filters.queue)
    fields = [
        "pk",
        "queue__name",
        "version_id",
        "state_id",
        "run_ref",
        "status",
        "claimed_by__username",
        "claimed_by__first_name",
        "claimed_by__last_name",
        "opened_at",
        "due_at",
        "priority",
        "postponed_until",
    ]
    found = items.order_by(*selectors.SORTS["urgent"][1]).values_list(
        *fields, *(["patient_name"] if patient_data else []), named=True
    )
    statuses = dict(ItemStatus.choices)
    steps = _Steps()
    for chunk in batched(found.iterator(chunk_size=CHUNK_SIZE), CHUNK_SIZE):
        steps.learn(row.version_id for row in chunk)
        for row in chunk:
            step = steps.get(row.version_id, row.state_id)
            line = [
                row.queue__name,
                step.template,
                step.title,
                row.run_ref,
                row.pk,
                statuses.get(row.status, row.status),
                _name(row.claimed_by__first_name, row.claimed_by__last_name)
                or row.claimed_by__username
                or "",
                utc(row.opened_at),
                utc(row.due_at),
                "yes" if row.due_at < now else "no",
                row.priority,
                utc(row.postponed_until)
                if row.postponed_until and row.postponed_until > now
                else "",
            ]
            if patient_data:
                line.append(row.patient_name)
            yield line


# --- Throughput per person -----------------------------------------------------------------------

THROUGHPUT_COLUMNS = ["person", "login", "completed", "median_handle_seconds", "declines"]


@dataclass
class _Person:
    user_id: int
    name: str
    login: str
    completed: int = 0
    median: timedelta | None = None
    declines: int = 0


def throughput_rows(*, filters: ReportFilters) -> Iterator[Sequence[Any]]:
    """Per person with an answer delivered or an item declined in the period: answers
    delivered, their median handle time (as the dashboard's), and declines, by name.

    Answers are read person by person (ordered by submitter), so only one person's handle
    times are in memory at a time; the rows kept are one per person."""
    yield THROUGHPUT_COLUMNS
    start, until = filters.window()
    declined = ItemReason.objects.filter(kind=ReasonKind.DECLINE, at__gte=start).order_by()
    if until is not None:
        declined = declined.filter(at__lt=until)
    if filters.queue is not None:
        declined = declined.filter(item__queue_id=filters.queue)
    declines = dict(declined.values("by_id").annotate(n=Count("pk")).values_list("by_id", "n"))

    answers = (
        delivered_in(filters)
        .order_by("submitted_by_id", "pk")
        .values_list(
            "submitted_by_id",
            "created_at",
            "claimed_at",
            "submitted_by__username",
            "submitted_by__first_name",
            "submitted_by__last_name",
        )
    )
    people: list[_Person] = []
    current: _Person | None = None
    times: list[timedelta] = []
    for chunk in batched(answers.iterator(chunk_size=CHUNK_SIZE), CHUNK_SIZE):
        for user_id, submitted_at, claim, login, first, last in chunk:
            if current is None or current.user_id != user_id:
                if current is not None:
                    current.median = percentile(times, 0.5)
                current = _Person(user_id, _name(first, last) or login, login)
                people.append(current)
                times = []
            current.completed += 1
            if claim is not None:
                times.append(submitted_at - claim)
    if current is not None:
        current.median = percentile(times, 0.5)

    for person in people:
        person.declines = declines.pop(person.user_id, 0)
    for user in get_user_model().objects.filter(pk__in=list(declines)):
        login = user.get_username()
        people.append(
            _Person(user.pk, user.get_full_name() or login, login, declines=declines[user.pk])
        )
    for person in sorted(people, key=lambda p: (p.name.lower(), p.login)):
        yield [
            person.name,
            person.login,
            person.completed,
            seconds(person.median) if person.median is not None else None,
            person.declines,
        ]


# --- Cells ---------------------------------------------------------------------------------------


def utc(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat() if moment is not None else ""


def seconds(span: timedelta) -> int:
    """Whole seconds, rounded as the dashboard's durations are."""
    return round(span.total_seconds())


def _name(first: str | None, last: str | None) -> str:
    """A colleague's full name, as ``User.get_full_name`` (``roles.display_name``) builds it."""
    return f"{first or ''} {last or ''}".strip()
