"""Reads of the Runs explorer: which mirrored Runs a person may see, the Run list and one Run's
story (docs/runs.md).

A Run is visible through its items: when one of them is in a queue the person may see. Supervisors
and flow admins (``roles.can_triage``) also see the Runs no item stands for (waiting in triage,
running, or finished without a pause), since they are the ones who act on those.
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.apps import apps
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date

from audit.models import AuditEvent
from flows_integration.models import FlowRun, RunStatus, WebhookEvent
from reviewqueue import roles, selectors
from reviewqueue.models import ACTIVE_STATUSES, ReviewItem, Submission
from reviewqueue.selectors import AUDIT_TEXT, TimelineEntry, state_title


def runs_visible_to(user: Any, *, may_triage: bool | None = None) -> QuerySet[FlowRun]:
    """The mirrored Runs ``user`` may see: through an item in one of their queues, and for
    supervisors and flow admins also every Run without an item. ``may_triage`` is
    ``roles.can_triage(user)`` when the caller has it already (it costs a query)."""
    runs = FlowRun.objects.all()
    if roles.is_supervisor(user):
        return runs  # every queue, and the Runs without items too
    visible_item = selectors.items_visible_to(user).filter(run=OuterRef("pk"))
    seen = Q(Exists(visible_item))
    if roles.can_triage(user) if may_triage is None else may_triage:
        items = ReviewItem.objects.filter(run=OuterRef("pk"))
        # ...and every Run in triage, as the triage page shows them, even one whose earlier
        # pause was an item of a queue they do not see.
        active = items.filter(status__in=ACTIVE_STATUSES)
        seen |= ~Q(Exists(items)) | (Q(status=RunStatus.PENDING) & ~Q(Exists(active)))
    return runs.filter(seen)


# --- The Run list ----------------------------------------------------------------------------

PAGE_SIZE = 50


@dataclass
class RunFilters:
    status: str = ""
    template: str = ""
    version: int | None = None
    created_from: date | None = None
    created_to: date | None = None
    updated_from: date | None = None
    updated_to: date | None = None
    errors: bool = False
    triage: bool = False
    q: str = ""
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "RunFilters":
        """Parse the list's query string; anything malformed is left out, never an error."""
        # A NUL character cannot reach PostgreSQL in a parameter; nobody types one on purpose.
        query = {key: value.replace("\x00", "") for key, value in query.items()}
        found = cls()
        status = query.get("status", "")
        found.status = status if status in RunStatus.values else ""
        found.template = query.get("template", "").strip()[:100]
        version = query.get("version", "").strip()
        found.version = int(version) if version.isdecimal() and len(version) < 9 else None
        found.created_from = _day(query.get("created_from", ""))
        found.created_to = _day(query.get("created_to", ""))
        found.updated_from = _day(query.get("updated_from", ""))
        found.updated_to = _day(query.get("updated_to", ""))
        found.errors = query.get("errors") == "1"
        found.triage = query.get("triage") == "1"
        found.q = query.get("q", "").strip()[:100]
        page = query.get("page", "1")
        found.page = max(1, min(int(page), 10_000)) if page.isdecimal() and len(page) < 9 else 1
        return found

    @property
    def any(self) -> bool:
        """Whether anything narrows the list (the empty list then says "with these filters")."""
        return any(
            (
                self.status,
                self.template,
                self.version is not None,
                self.created_from,
                self.created_to,
                self.updated_from,
                self.updated_to,
                self.errors,
                self.triage,
                self.q,
            )
        )


def _day(text: str) -> date | None:
    try:
        return parse_date(text.strip())
    except ValueError:  # well formed, not a date: 2024-02-30
        return None


@dataclass
class RunsPage:
    runs: list[FlowRun]
    page: int
    has_next: bool
    # (version pk, state id) → the state's title, for the "Waiting at" column.
    step_titles: dict[tuple[int, str], str] = field(default_factory=dict)

    def step(self, run: FlowRun) -> str:
        if not run.state_id:
            return ""
        if run.version_id is not None and (run.version_id, run.state_id) in self.step_titles:
            return self.step_titles[run.version_id, run.state_id]
        return state_title({}, run.state_id)


def runs_page(user: Any, filters: RunFilters, *, may_triage: bool | None = None) -> RunsPage:
    """One page of the Runs ``user`` may see, newest first: a fixed number of queries, and no
    count of the whole result (``has_next`` comes from fetching one row more)."""
    runs = filtered_runs(user, filters, may_triage=may_triage)
    offset = (filters.page - 1) * PAGE_SIZE
    rows = list(
        runs.select_related("template", "version")
        # A row shows names and numbers; the Run's JSON and the version's document are large.
        .defer(
            "input_data",
            "state_results",
            "output",
            "version__document",
            "version__source",
        )
        .order_by("-created_at", "-pk")[offset : offset + PAGE_SIZE + 1]
    )
    shown = rows[:PAGE_SIZE]
    steps = selectors.queue_steps(
        version_ids={run.version_id for run in shown if run.version_id is not None}
    )
    return RunsPage(
        runs=shown, page=filters.page, has_next=len(rows) > PAGE_SIZE, step_titles=steps.titles
    )


def filtered_runs(
    user: Any, filters: RunFilters, *, may_triage: bool | None = None
) -> QuerySet[FlowRun]:
    runs = runs_visible_to(user, may_triage=may_triage)
    if filters.status:
        runs = runs.filter(status=filters.status)
    if filters.template:
        runs = runs.filter(template__template_id=filters.template)
    if filters.version is not None:
        runs = runs.filter(version__number=filters.version)
    if filters.created_from:
        runs = runs.filter(created_at__gte=_start_of(filters.created_from))
    if filters.created_to:
        runs = runs.filter(created_at__lt=_start_of(filters.created_to + timedelta(days=1)))
    if filters.updated_from:
        runs = runs.filter(_updated_since(_start_of(filters.updated_from)))
    if filters.updated_to:
        runs = runs.filter(~_updated_since(_start_of(filters.updated_to + timedelta(days=1))))
    if filters.errors:
        runs = runs.filter(Q(status=RunStatus.ERROR) | ~Q(errors=[]))
    if filters.triage:
        runs = runs.filter(pk__in=selectors.runs_in_triage().order_by().values("pk"))
    if filters.q:
        runs = runs.filter(_search(filters.q))
    return runs


def _start_of(day: date) -> datetime:
    """Midnight of ``day`` in the person's time zone: the dates they typed are their own days."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def _updated_since(moment: datetime) -> Q:
    """Last changed at or after ``moment``: when Flows says it changed, else when Flowdesk last
    saw it change (Sohar's Get Run may not say), else when Flowdesk first saw it."""
    return (
        Q(remote_updated_at__gte=moment)
        | Q(remote_updated_at__isnull=True, synced_at__gte=moment)
        | Q(remote_updated_at__isnull=True, synced_at__isnull=True, created_at__gte=moment)
    )


_HEX = frozenset("0123456789abcdef")
# A Run found by the id its calling system gave it (the intake app's ``StartedRun``).
_EXTERNAL_ID = "started__external_id"


def _search(text: str) -> Q:
    """A Run id, whole or its first characters (dashes optional), or the external id of a Run
    started through the intake API (whole, as the calling system wrote it)."""
    found = _external_id(text)
    digits = text.lower().replace("-", "")
    if len(digits) < 4 or len(digits) > 32 or not set(digits) <= _HEX:
        return found
    if len(digits) == 32:
        return Q(flow_run_id=uuid.UUID(digits)) | found
    # ``flow_run_id`` is a UUID column (native on PostgreSQL, 32 hex characters on SQLite), which
    # a LIKE cannot search by prefix; but UUIDs sort as their hex digits do, so a prefix is the
    # range from the prefix padded with 0s to it padded with fs, which the unique index answers.
    low = uuid.UUID(digits.ljust(32, "0"))
    high = uuid.UUID(digits.ljust(32, "f"))
    return Q(flow_run_id__gte=low, flow_run_id__lte=high) | found


def _external_id(text: str) -> Q:
    """The Runs whose external id is ``text``, by their primary keys.

    By the relation's name: the intake app builds on the review queue, which never imports it
    (an import-linter contract), and the explorer works without it. The keys are fetched first
    (a few at most: one per calling system) so that the page's query ORs two index lookups
    instead of joining every Run to the intake's table.
    """
    if not apps.is_installed("intake"):
        return Q(pk__in=[])
    pks = FlowRun.objects.filter(**{_EXTERNAL_ID: text}).values_list("pk", flat=True)[:100]
    return Q(pk__in=list(pks))


# --- One Run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventRow:
    """A webhook event received for the Run, as people read it (the payload is not shown)."""

    received_at: datetime
    processed_at: datetime | None
    event_type: str
    status: str  # its title
    step: str  # the state's title, or ""


@dataclass(frozen=True)
class RunStory:
    """What the Run page shows besides the Run itself: its items (with their steps' titles),
    their submissions, the webhook events received and a timeline of all of it."""

    items: list[tuple[ReviewItem, str]]
    submissions: list[Submission]
    events: list[EventRow]
    timeline: list[TimelineEntry]


# Views are in the audit log, not the story of the Run.
_VIEWS = ("item.viewed", "queue.viewed", "run.viewed", "runs.viewed")
RUN_AUDIT_TEXT = {
    **AUDIT_TEXT,
    "run.triaged": "Template chosen in triage",
    "run.resynced": "Re-synced from Flows",
}


def run_story(user: Any, run: FlowRun, *, limit: int = 200) -> RunStory:
    """The Run's items in the user's queues, their submissions, the webhook events received and
    the timeline (newest first), in a fixed number of queries."""
    document = run.version.document if run.version is not None else {}
    items = list(
        selectors.items_visible_to(user)
        .filter(run=run)
        .select_related("queue", "claimed_by", "version")
        .defer("version__source")
        .order_by("episode")
    )
    submissions = list(
        Submission.objects.filter(item__in=[item.pk for item in items])
        .select_related("submitted_by", "item")
        .defer("input", "field_errors")
        .order_by("-created_at", "-pk")
    )
    events = list(
        WebhookEvent.objects.filter(flow_run_id=run.flow_run_id)
        .defer("payload")
        .order_by("-received_at", "-pk")[:limit]
    )
    audits = list(
        AuditEvent.objects.filter(flow_run_id=run.flow_run_id)
        # Another queue's item of the same Run is not this person's to read about.
        .filter(Q(item_id__isnull=True) | Q(item_id__in=[item.pk for item in items]))
        .exclude(action__in=_VIEWS)
        .select_related("actor")
        .order_by("-at", "-pk")[:limit]
    )
    rows = [
        EventRow(
            received_at=event.received_at,
            processed_at=event.processed_at,
            event_type=event.event_type,
            status=status_title(event.status) if event.status else "",
            step=state_title(document, event.state_id) if event.state_id else "",
        )
        for event in events
    ]
    entries = [TimelineEntry(row.received_at, "run", _event_text(row)) for row in rows]
    entries += [
        TimelineEntry(
            audit.at,
            "item",
            RUN_AUDIT_TEXT.get(audit.action, audit.action.replace(".", " ").replace("_", " ")),
            roles.display_name(audit.actor) if audit.actor else "",
        )
        for audit in audits
    ]
    entries += _known_moments(run)
    entries.sort(key=lambda entry: entry.at, reverse=True)
    return RunStory(
        items=[(item, state_title(item.version.document, item.state_id)) for item in items],
        submissions=submissions,
        events=rows,
        timeline=entries[:limit],
    )


def _known_moments(run: FlowRun) -> list[TimelineEntry]:
    """What the mirror itself knows: when Flows created the Run and when Flowdesk first saw it."""
    found = [TimelineEntry(run.created_at, "run", "First seen by Flowdesk")]
    if run.remote_created_at is not None:
        found.append(TimelineEntry(run.remote_created_at, "run", "Run created in Flows"))
    return found


def _event_text(row: EventRow) -> str:
    """A webhook event as a line of the timeline: the status by its title, the state by its."""
    text = f"Flows: {row.status.lower()}" if row.status else "Flows: the Run changed"
    return f"{text}, at {row.step}" if row.step else text


def status_title(status: str) -> str:
    """A Run status as people read it (`Waiting for input`), whatever Flows sent."""
    return RunStatus(status).label if status in RunStatus.values else status.replace("_", " ")


# --- Re-sync: what changed -------------------------------------------------------------------

_WATCHED = ("status", "state_id", "version_id", "input_data", "state_results", "output", "errors")


def run_snapshot(run: FlowRun) -> dict[str, Any]:
    """The fields a re-sync may change, to say afterwards what it changed."""
    return {name: getattr(run, name) for name in _WATCHED}


def run_changes(before: Mapping[str, Any], run: FlowRun) -> list[str]:
    """What a re-sync changed, in words (titles, never values from the Run)."""
    after = run_snapshot(run)
    document = run.version.document if run.version is not None else {}
    changes = []
    if before["status"] != after["status"]:
        changes.append(
            f"Status: {status_title(before['status'])} → {status_title(after['status'])}"
        )
    if before["state_id"] != after["state_id"]:
        was = state_title(document, before["state_id"]) if before["state_id"] else "—"
        now = state_title(document, after["state_id"]) if after["state_id"] else "—"
        changes.append(f"Waiting at: {was} → {now}")
    if before["version_id"] != after["version_id"] and run.version is not None:
        changes.append(f"Template: {run.version.template} v{run.version.number}")
    for name, words in (
        ("input_data", "Input"),
        ("state_results", "Results of steps"),
        ("output", "Output"),
        ("errors", "Errors"),
    ):
        if before[name] != after[name]:
            changes.append(f"{words} updated")
    return changes
