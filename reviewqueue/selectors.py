"""Reads of the review queue: who sees what, the queue page, an item's context and timeline."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from audit.models import AuditEvent
from flows_integration.models import FlowRun, RunStatus, TemplateVersion, WebhookEvent
from flows_integration.services import versions_pausing_at
from reviewqueue import present, roles
from reviewqueue.models import (
    ACTIVE_STATUSES,
    SUPERVISING_STATUSES,
    WORKABLE_STATUSES,
    ItemStatus,
    Queue,
    ReviewItem,
    Route,
    Submission,
    SubmissionStatus,
)
from reviewqueue.schema_forms.fields import humanize
from reviewqueue.schema_forms.labels import schema_at, state_result_schema, title_of


def queues_visible_to(user: Any) -> QuerySet[Queue]:
    """Supervisors see every queue; reviewers the queues of their teams."""
    if roles.is_supervisor(user):
        return Queue.objects.all()
    return Queue.objects.filter(teams__in=user.groups.all()).distinct()


def items_visible_to(user: Any) -> QuerySet[ReviewItem]:
    """Items in the queues ``user`` may see (a subquery, so no join or DISTINCT on items)."""
    items = ReviewItem.objects.all()
    if roles.is_supervisor(user):
        return items
    return items.filter(queue__in=queues_visible_to(user).values("pk"))


# --- Separation of duties --------------------------------------------------------------------

# Answers that never reached the Run: Flows refused them (400), or they were not sent because the
# Run had moved on. Any other submission, sent or still on its way, counts as having answered.
NOT_ANSWERS = (SubmissionStatus.REJECTED, SubmissionStatus.REFUSED)


def _separation_required() -> Q:
    """Items whose route asks for another person than those who answered the Run's other steps.
    The state's route decides, else the template's, as ``services.route_for`` routes; read from
    the routes as they are now, so switching it on covers items already waiting."""
    # Joined through the Run inside the subquery: the outer query stays on items alone, so
    # "get next"'s FOR UPDATE locks no Run rows.
    routes = Route.objects.filter(template__runs=OuterRef("run_id"))
    own = routes.filter(state_id=OuterRef("state_id"))
    return Q(Exists(own.filter(not_by_earlier_answerers=True))) | (
        Q(Exists(routes.filter(state_id="", not_by_earlier_answerers=True))) & ~Q(Exists(own))
    )


def _answers_to_other_steps(user: Any) -> QuerySet[Submission]:
    """``user``'s answers to the Run's other steps (the outer query's item's Run and state)."""
    return (
        Submission.objects.filter(item__run_id=OuterRef("run_id"), submitted_by=user)
        .exclude(item__state_id=OuterRef("state_id"))
        .exclude(status__in=NOT_ANSWERS)
    )


def barred(user: Any) -> Q:
    """Items ``user`` may not take or answer: their route wants another person, and ``user``
    answered another step of the same Run. A condition, not a list, so that claims, "get next"
    and reassigning check it in the very statement that takes the item."""
    return _separation_required() & Q(Exists(_answers_to_other_steps(user)))


def separation_reason(item: ReviewItem, user: Any, *, you: bool = True) -> str:
    """Why ``user`` may not take ``item`` (separation of duties), in plain words; "" when they
    may. ``you``: said to ``user``, else to a supervisor about them."""
    if not ReviewItem.objects.filter(pk=item.pk).filter(barred(user)).exists():
        return ""
    answered = (
        Submission.objects.filter(item__run_id=item.run_id, submitted_by=user)
        .exclude(item__state_id=item.state_id)
        .exclude(status__in=NOT_ANSWERS)
        .order_by("item__episode")
        .values_list("item__state_id", flat=True)
    )
    document = item.version.document
    steps = ", ".join(dict.fromkeys(state_title(document, state_id) for state_id in answered))
    who = "You" if you else roles.display_name(user)
    return (
        f"{who} answered an earlier step of this Run ({steps}); another person must take this step."
    )


def earlier_answerers(item: ReviewItem) -> set[int]:
    """Who may not take ``item`` because they answered another step of its Run (ids; empty when
    its route does not ask for another person)."""
    if not ReviewItem.objects.filter(pk=item.pk).filter(_separation_required()).exists():
        return set()
    return set(
        Submission.objects.filter(item__run_id=item.run_id)
        .exclude(item__state_id=item.state_id)
        .exclude(status__in=NOT_ANSWERS)
        .values_list("submitted_by_id", flat=True)
    )


# --- Triage ----------------------------------------------------------------------------------


def runs_in_triage() -> QuerySet[FlowRun]:
    """Runs waiting for input that no item stands for: started elsewhere, of a template or at a
    state Flowdesk could not tell (``flows_integration.services.version_for_pause``). Every
    waiting Run is an item or here; nothing is dropped."""
    active = ReviewItem.objects.filter(run=OuterRef("pk"), status__in=ACTIVE_STATUSES)
    return (
        FlowRun.objects.filter(status=RunStatus.PENDING)
        .exclude(Exists(active))
        .select_related("version__template")
        .order_by("created_at", "pk")
    )


def triage_choices(run: FlowRun) -> list[tuple[str, str]]:
    """(value, label) of every (version, pause) a Run in triage can be: the versions with a
    callback state of the id it waits at, or every pause of every version when nobody said."""
    versions = (
        versions_pausing_at(run.state_id)
        if run.state_id
        else TemplateVersion.objects.select_related("template").order_by(
            "template__template_id", "-number"
        )
    )
    choices = []
    for version in versions:
        for state in version.spec.callback_states():
            if not run.state_id or state.id == run.state_id:
                label = f"{version.template} v{version.number}: {state.title}"
                choices.append((f"{version.pk}:{state.id}", label))
    return choices


def triage_choice(run: FlowRun, value: str) -> tuple[TemplateVersion, str] | None:
    """The (version, state id) a triage form's ``value`` names, if it is one of ``run``'s."""
    if value not in dict(triage_choices(run)):
        return None
    pk, state_id = value.split(":", 1)
    return TemplateVersion.objects.select_related("template").get(pk=pk), state_id


# --- The queue page --------------------------------------------------------------------------

PAGE_SIZE = 50
# "N new items" never counts past this: the indicator must not cost a full COUNT(*).
NEW_ITEMS_CAP = 99

STATUS_FILTERS: dict[str, tuple[str, frozenset[str]]] = {
    "workable": ("Open or claimed", WORKABLE_STATUSES),
    "supervising": ("Open, claimed or needing attention", SUPERVISING_STATUSES),
    "open": ("Open", frozenset({ItemStatus.OPEN})),
    "claimed": ("Claimed", frozenset({ItemStatus.CLAIMED})),
    "sending": ("Sending", frozenset({ItemStatus.SENDING, ItemStatus.DELIVERED})),
    "needs_attention": ("Needs attention", frozenset({ItemStatus.NEEDS_ATTENTION})),
    "active": ("Everything not closed", ACTIVE_STATUSES),
    "closed": ("Closed", frozenset({ItemStatus.RESUMED, ItemStatus.SUPERSEDED})),
}
SORTS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "urgent": ("Most urgent", (F("priority").desc(), "due_at", "pk")),
    "due": ("Due soonest", ("due_at", "pk")),
    "newest": ("Newest", ("-opened_at", "-pk")),
    "oldest": ("Oldest", ("opened_at", "pk")),
}
ASSIGNEES = {"anyone": "Anyone", "me": "Me", "unassigned": "Unassigned"}


@dataclass
class QueueFilters:
    queue: int | None = None
    template: str = ""
    state: str = ""
    status: str = "workable"
    assignee: str = "anyone"
    overdue: bool = False
    q: str = ""
    sort: str = "urgent"
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str], *, supervisor: bool = False) -> "QueueFilters":
        """Parse the page's query string; anything unknown falls back to the default, which for
        a supervisor includes the items that need attention."""
        found = cls()
        default_status = "supervising" if supervisor else "workable"
        # A NUL character cannot reach PostgreSQL in a parameter; nobody types one on purpose.
        query = {key: value.replace("\x00", "") for key, value in query.items()}
        queue = query.get("queue", "")
        found.queue = int(queue) if queue.isdecimal() else None
        found.template = query.get("template", "")[:100]
        found.state = query.get("state", "")[:200]
        found.status = (
            query.get("status", "") if query.get("status") in STATUS_FILTERS else default_status
        )
        found.assignee = (
            query.get("assignee", "") if query.get("assignee") in ASSIGNEES else "anyone"
        )
        found.overdue = query.get("overdue") == "1"
        found.q = query.get("q", "").strip()[:100]
        found.sort = query.get("sort", "") if query.get("sort") in SORTS else "urgent"
        page = query.get("page", "1")
        found.page = max(1, min(int(page), 10_000)) if page.isdecimal() else 1
        return found


@dataclass
class QueuePage:
    items: list[ReviewItem]
    page: int
    has_next: bool
    new_items: int


def queue_page(user: Any, filters: QueueFilters, *, since: datetime | None = None) -> QueuePage:
    """One page of the queue: a bounded number of queries whatever the page size, and no count
    of the whole result (``has_next`` comes from fetching one row more)."""
    items = _filtered(user, filters)
    order = SORTS[filters.sort][1]
    offset = (filters.page - 1) * PAGE_SIZE
    rows = list(
        items.select_related("queue", "version__template", "claimed_by")
        # The version's document and source are large and a row shows only its name.
        .defer("version__document", "version__source")
        .order_by(*order)[offset : offset + PAGE_SIZE + 1]
    )
    new_items = 0
    if since is not None:
        newer = items.filter(opened_at__gt=since).order_by().values("pk")
        new_items = newer[: NEW_ITEMS_CAP + 1].count()
    return QueuePage(
        items=rows[:PAGE_SIZE],
        page=filters.page,
        has_next=len(rows) > PAGE_SIZE,
        new_items=new_items,
    )


def _filtered(user: Any, filters: QueueFilters) -> QuerySet[ReviewItem]:
    items = items_visible_to(user).filter(status__in=sorted(STATUS_FILTERS[filters.status][1]))
    if filters.queue is not None:
        items = items.filter(queue_id=filters.queue)
    if filters.template:
        items = items.filter(version__template__template_id=filters.template)
    if filters.state:
        items = items.filter(state_id=filters.state)
    if filters.assignee == "me":
        items = items.filter(claimed_by=user)
    elif filters.assignee == "unassigned":
        items = items.filter(claimed_by__isnull=True)
    if filters.overdue:
        items = items.filter(due_at__lt=timezone.now())
    if filters.q:
        items = items.filter(_search(filters.q))
    return items


def _search(text: str) -> Q:
    """A run id (or its start) or part of the patient's name."""
    lowered = text.lower()
    if len(lowered) >= 4 and all(c in "0123456789abcdef-" for c in lowered):
        return Q(run_ref__startswith=lowered) | Q(patient_name__icontains=text)
    return Q(patient_name__icontains=text)


@dataclass(frozen=True)
class Steps:
    """What the queue's filters and Step column say, from the stored template versions."""

    templates: list[tuple[str, str]]  # (template id, its name), for the Template filter
    choices: list[tuple[str, str]]  # (state id, title) of every callback state, by title
    titles: dict[tuple[int, str], str]  # (version pk, state id) → the state's title

    def title(self, item: ReviewItem) -> str:
        """The item's step by its title (its id in words if the version has no such state)."""
        return self.titles.get((item.version_id, item.state_id)) or humanize(item.state_id)


def queue_steps(*, version_ids: Collection[int] | None = None) -> Steps:
    """Callback states' titles in one query: of every stored version for the whole page (its
    filters list them), of the page's own versions for the polled rows. A state id kept across
    versions takes its newest title."""
    versions = TemplateVersion.objects.order_by("template__template_id", "number")
    if version_ids is not None:
        versions = versions.filter(pk__in=version_ids)
    templates: dict[str, str] = {}
    choices: dict[str, str] = {}
    titles: dict[tuple[int, str], str] = {}
    for pk, template_id, name, document in versions.values_list(
        "pk", "template__template_id", "template__name", "document"
    ):
        templates[template_id] = name or template_id
        states = document.get("states", {}) if isinstance(document, Mapping) else {}
        for state_id, state in states.items():
            if isinstance(state, Mapping) and state.get("type") == "callback":
                titles[pk, state_id] = choices[state_id] = title_of(state_id, state)
    return Steps(
        templates=sorted(templates.items()),
        choices=sorted(choices.items(), key=lambda choice: (choice[1].lower(), choice[0])),
        titles=titles,
    )


# --- One item --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Section:
    title: str
    rows: list[tuple[str, str]]


def readable_sections(schema: Mapping[str, Any], data: Any) -> list[Section]:
    """A Run's input as sections a person reads: each top-level object is a section, labels come
    from the schema's titles (else the key, humanised), nested values are flattened."""
    if not isinstance(data, Mapping) or not data:
        return []
    properties = schema.get("properties", {}) if isinstance(schema, Mapping) else {}
    general: list[tuple[str, str]] = []
    sections = []
    # One budget of rows for the whole input (present.SHOWN_ROWS), so that 100,000 small
    # entries are cut as surely as one entry of 100,000 values.
    left, skipped = present.SHOWN_ROWS, 0
    for key, value in data.items():
        if left <= 0:
            skipped += 1
            continue
        sub = properties.get(key, {}) if isinstance(properties, Mapping) else {}
        label = title_of(key, sub)
        if isinstance(value, Mapping):
            rows = present.shown_rows(sub, value, limit=left)
            sections.append(Section(label, rows))
        else:
            rows = present.shown_rows(sub, value, label, limit=left)
            general.extend(rows)
        left -= len(rows)
    if skipped:
        sections.append(Section("Not shown", [("…", f"(truncated, {skipped:,} more entries)")]))
    return ([Section("General", general)] if general else []) + sections


def earlier_steps(document: Mapping[str, Any], results: Any) -> list[Section]:
    """What the Run's earlier states produced, in the template's order, titled by the state."""
    if not isinstance(results, Mapping):
        return []
    sections = []
    for state_id, state in document.get("states", {}).items():
        if state_id not in results or not isinstance(state, Mapping):
            continue
        rows = present.shown_rows(state_result_schema(state), results[state_id])
        title = title_of(state_id, state)
        sections.append(Section(title, rows if results[state_id] != {} else [("Result", "—")]))
    return sections


def output_rows(document: Mapping[str, Any], output: Any) -> list[tuple[str, str]]:
    """The Run's output as labelled rows, described by the template's `output` (its titles and
    `x-display`), never a dict."""
    described = _described(document, document.get("output"))
    return present.shown_rows(described, output) if output else []


def _described(document: Mapping[str, Any], projection: Any) -> Any:
    """An `output` projection whose `value: <path>` properties also carry the schema of what
    the path reads (a choice's titles, a field's `x-display`); the projection's own words win."""
    if not isinstance(projection, Mapping):
        return projection
    described = dict(projection)
    source = projection.get("value")
    if isinstance(source, str) and source.startswith("$"):
        found = schema_at(document, source)
        described = {**found, **described} if isinstance(found, Mapping) else described
    properties = projection.get("properties")
    if isinstance(properties, Mapping):
        described["properties"] = {
            key: _described(document, sub) for key, sub in properties.items()
        }
    return described


def answer_rows(document: Mapping[str, Any], state_id: str, answer: Any) -> list[tuple[str, str]]:
    """An answer sent (or waiting to be sent) for a callback state, in the words of its form."""
    state = document.get("states", {}).get(state_id)
    return present.shown_rows(state.get("input") if isinstance(state, Mapping) else None, answer)


@dataclass(frozen=True)
class RunError:
    step: str  # the state's title
    text: str  # in plain words, for everyone
    detail: str  # what Flows said, for supervisors


def run_errors(document: Mapping[str, Any], errors: Any) -> list[RunError]:
    """The Run's `errors` (`{state, status, error, param}`) as a person reads them: the step by
    its title; the status and error names are kept as the technical detail."""
    found = []
    for entry in errors if isinstance(errors, list) else []:
        if not isinstance(entry, Mapping):
            continue
        state_id = str(entry.get("state") or "")
        found.append(
            RunError(
                step=state_title(document, state_id) if state_id else "The Run",
                text="This step failed in Flows, so the Run stopped.",
                detail=" ".join(
                    f"{key} {entry[key]}" for key in ("status", "error", "param") if entry.get(key)
                ),
            )
        )
    return found


def state_title(document: Mapping[str, Any], state_id: str) -> str:
    """A state's title, else its id in words: staff never read a raw state id."""
    state = document.get("states", {}).get(state_id) if isinstance(document, Mapping) else None
    return title_of(state_id, state if isinstance(state, Mapping) else {})


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "run" or "item"
    text: str
    actor: str = ""


AUDIT_TEXT = {
    "item.opened": "Item opened",
    "item.viewed": "Viewed",
    "item.claimed": "Claimed",
    "item.released": "Released",
    "item.reassigned": "Reassigned",
    "item.lease_expired": "Claim expired; back in the queue",
    "item.submitted": "Submitted",
    "item.resumed": "Run resumed",
    "item.superseded": "Superseded: the Run moved on without this item",
    "submission.delivered": "Delivered to Flows",
    "submission.retry": "Flows did not answer; will retry",
    "submission.rejected": "Flows rejected the input",
    "submission.refused": "Not sent: the Run had moved on",
    "submission.failed": "Could not be delivered; needs attention",
    "submission.resent": "Sent again by a supervisor",
    "note.added": "Note added",
}


def timeline(item: ReviewItem, *, limit: int = 100) -> list[TimelineEntry]:
    """The Run's status events (from the webhook inbox) and the item's own history, newest
    first. Views are left out: they are in the audit log, not the story of the item."""
    events = WebhookEvent.objects.filter(flow_run_id=item.run.flow_run_id).order_by("-received_at")[
        :limit
    ]
    document = item.version.document
    entries = [
        TimelineEntry(e.received_at, "run", _run_event_text(document, e.status, e.state_id))
        for e in events
    ]
    audits = (
        AuditEvent.objects.filter(item_id=item.pk)
        .exclude(action="item.viewed")
        .select_related("actor")
        .order_by("-at")[:limit]
    )
    entries += [
        TimelineEntry(
            a.at,
            "item",
            AUDIT_TEXT.get(a.action, a.action),
            roles.display_name(a.actor) if a.actor else "",
        )
        for a in audits
    ]
    return sorted(entries, key=lambda e: e.at, reverse=True)[:limit]


def _run_event_text(document: Mapping[str, Any], status: str, state_id: str) -> str:
    text = f"Run {status.replace('_', ' ').lower() or 'updated'}"
    return f"{text} at {state_title(document, state_id)}" if state_id else text


@dataclass(frozen=True)
class SigninLock:
    """A username or an address that too many wrong passwords have locked out, until ``until``."""

    kind: str  # "username" or "address"
    value: str
    failures: int
    until: datetime


def signin_locks() -> list[SigninLock]:
    """Who is locked out of signing in now (django-axes counts usernames and addresses apart)."""
    from axes.models import AccessAttempt
    from django.conf import settings
    from django.db.models import Max, Sum

    cooloff = settings.AXES_COOLOFF_TIME
    recent = AccessAttempt.objects.filter(attempt_time__gte=timezone.now() - cooloff)
    locks = []
    for kind, field in (("username", "username"), ("address", "ip_address")):
        counted = (
            recent.exclude(**{f"{field}__isnull": True})
            .values(field)
            .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            .filter(failures__gte=settings.AXES_FAILURE_LIMIT)
            .order_by("-last")
        )
        locks += [
            SigninLock(kind, row[field], row["failures"], row["last"] + cooloff) for row in counted
        ]
    return locks
