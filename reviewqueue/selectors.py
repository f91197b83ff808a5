"""Reads of the review queue: who sees what, the queue page, an item's context and timeline."""

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
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
    ItemReason,
    ItemStatus,
    Queue,
    ReasonCode,
    ReasonKind,
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


def earlier_answerer(item: ReviewItem) -> Any | None:
    """Who answered the latest earlier pause of ``item``'s Run in Flowdesk: the person a return
    for rework goes to (``services.item_return``); None when nobody did."""
    answer = (
        Submission.objects.filter(item__run_id=item.run_id, item__episode__lt=item.episode)
        .exclude(status__in=NOT_ANSWERS)
        .select_related("submitted_by")
        .order_by("-item__episode", "-created_at", "-pk")
        .first()
    )
    return answer.submitted_by if answer is not None else None


# --- Declined and postponed ------------------------------------------------------------------


def postponed() -> Q:
    """Items postponed until a time still to come (``services.item_postpone``). The time
    passing is what brings them back: a condition read at each query, no task to run."""
    return Q(postponed_until__gt=timezone.now())


def not_postponed() -> Q:
    return Q(postponed_until__isnull=True) | Q(postponed_until__lte=timezone.now())


def declined_by(user: Any) -> Q:
    """Items ``user`` declined ("not mine"): "get next" does not hand them back. An item is one
    pause of a Run, so the Run's next pause is offered to them again."""
    return Q(
        Exists(ItemReason.objects.filter(item=OuterRef("pk"), kind=ReasonKind.DECLINE, by=user))
    )


def reason_codes(item: ReviewItem, kind: str) -> list[ReasonCode]:
    """The reasons a reviewer of ``item``'s queue may choose from for ``kind``, in order."""
    return list(ReasonCode.objects.filter(queue_id=item.queue_id, kind=kind, active=True))


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
    "postponed": ("Postponed", frozenset({ItemStatus.OPEN})),
    "supervising": ("Open, claimed or needing attention", SUPERVISING_STATUSES),
    "open": ("Open", frozenset({ItemStatus.OPEN})),
    "claimed": ("Claimed", frozenset({ItemStatus.CLAIMED})),
    "sending": ("Sending", frozenset({ItemStatus.SENDING, ItemStatus.DELIVERED})),
    "needs_attention": ("Needs attention", frozenset({ItemStatus.NEEDS_ATTENTION})),
    "active": ("Everything not closed", ACTIVE_STATUSES),
    "closed": ("Closed", frozenset({ItemStatus.RESUMED, ItemStatus.SUPERSEDED})),
    # An item whose answer reached the Run (its submission is delivered).
    "completed": ("Completed", frozenset({ItemStatus.DELIVERED, ItemStatus.RESUMED})),
    # The dashboard's lists of what was open at a time, answered wrongly or declined.
    "any": ("Any status", frozenset(ItemStatus.values)),
}
SORTS: dict[str, tuple[str, tuple[Any, ...]]] = {
    "urgent": ("Most urgent", (F("priority").desc(), "due_at", "pk")),
    "due": ("Due soonest", ("due_at", "pk")),
    "newest": ("Newest", ("-opened_at", "-pk")),
    "oldest": ("Oldest", ("opened_at", "pk")),
}
ASSIGNEES = {"anyone": "Anyone", "me": "Me", "unassigned": "Unassigned"}
# The supervisors' dashboard links its numbers here (dashboard_selectors counts with the same
# conditions): open items by age (from, to), and answers delivered in a period of local days.
AGES: dict[str, tuple[timedelta, timedelta | None]] = {
    "lt1h": (timedelta(0), timedelta(hours=1)),
    "1to4h": (timedelta(hours=1), timedelta(hours=4)),
    "4to24h": (timedelta(hours=4), timedelta(days=1)),
    "gt1d": (timedelta(days=1), None),
}
DONE_PERIODS = {"today": 1, "7d": 7, "14d": 14, "30d": 30}
# Answers Flows did not take, as the dashboard's errors count them (``answer=``).
ANSWER_ERRORS: dict[str, str] = {
    SubmissionStatus.REJECTED: "rejected by Flows",
    SubmissionStatus.FAILED: "failed after retries",
}
REASON_TITLES: dict[str, str] = {
    ReasonKind.DECLINE: "declined",
    ReasonKind.RETURN: "returned for rework",
}
DUE_SOON = timedelta(hours=1)
# How the dashboard's selections read above the list they open.
AGE_TITLES = {
    "lt1h": "opened less than an hour ago",
    "1to4h": "opened 1 to 4 hours ago",
    "4to24h": "opened 4 to 24 hours ago",
    "gt1d": "opened more than a day ago",
}
DONE_TITLES = {
    "today": "today",
    "7d": "in the last 7 days",
    "14d": "in the last 14 days",
    "30d": "in the last 30 days",
}


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
    claimed_by: int | None = None
    age: str = ""
    due_soon: bool = False
    done: str = ""
    done_by: int | None = None
    team: int | None = None
    open_at: datetime | None = None
    answer: str = ""
    reason: str = ""
    reason_by: int | None = None

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
        for name in ("claimed_by", "done_by", "team", "reason_by"):
            value = query.get(name, "")
            setattr(found, name, int(value) if value.isdecimal() and len(value) < 10 else None)
        found.age = query.get("age", "") if query.get("age") in AGES else ""
        found.due_soon = query.get("due_soon") == "1"
        found.done = query.get("done", "") if done_window(query.get("done", "")) else ""
        found.open_at = _open_at(query.get("open_at", ""))
        found.answer = query.get("answer", "") if query.get("answer") in ANSWER_ERRORS else ""
        found.reason = query.get("reason", "") if query.get("reason") in REASON_TITLES else ""
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
    items = items_matching(user, filters)
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


def items_matching(user: Any, filters: QueueFilters) -> QuerySet[ReviewItem]:
    """Every item of the queue page's list for these filters, unordered and unpaged (the page,
    and a supervisor's "all matching this filter")."""
    items = items_visible_to(user).filter(status__in=sorted(STATUS_FILTERS[filters.status][1]))
    if filters.status in NOT_POSTPONED_FILTERS:
        items = items.filter(not_postponed())
    elif filters.status == "postponed":
        items = items.filter(postponed())
    if filters.queue is not None:
        items = items.filter(queue_id=filters.queue)
    if filters.team is not None:
        items = items.filter(queue_id__in=Queue.objects.filter(teams=filters.team).values("pk"))
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
    if filters.claimed_by is not None:
        items = items.filter(claimed_by_id=filters.claimed_by)
    if filters.age:
        items = items.filter(age_condition(filters.age, timezone.now()))
    if filters.due_soon:
        items = items.filter(due_soon_condition(timezone.now()))
    if filters.open_at is not None:
        at = filters.open_at
        items = items.filter(Q(opened_at__lte=at), Q(closed_at__isnull=True) | Q(closed_at__gt=at))
    window = done_window(filters.done)
    if filters.reason:
        items = items.filter(Exists(reasons_given(filters.reason, window, by=filters.reason_by)))
    elif filters.answer:
        items = items.filter(Exists(delivered_answers(window, status=filters.answer)))
    elif window is not None or filters.done_by is not None:
        items = items.filter(Exists(delivered_answers(window, by=filters.done_by)))
    if filters.q:
        items = items.filter(_search(filters.q))
    return items


def dashboard_selection(filters: QueueFilters) -> list[str]:
    """The dashboard's filters that the queue's own form has no field for, in words, so the list
    says what it is showing ("claimed by Bob, opened 1 to 4 hours ago")."""
    people = get_user_model().objects.in_bulk(
        [pk for pk in (filters.claimed_by, filters.done_by, filters.reason_by) if pk]
    )

    def name(pk: int) -> str:
        return roles.display_name(people[pk]) if pk in people else "nobody known"

    words = []
    if filters.team is not None:
        team = Group.objects.filter(pk=filters.team).values_list("name", flat=True).first()
        words.append(f"queues of the team {team or 'nobody knows'}")
    if filters.claimed_by:
        words.append(f"claimed by {name(filters.claimed_by)}")
    when = _when(filters.done)
    if filters.reason:
        by = f" by {name(filters.reason_by)}" if filters.reason_by else ""
        words.append(f"{REASON_TITLES[filters.reason]}{by} {when}".strip())
    elif filters.answer:
        words.append(f"an answer {ANSWER_ERRORS[filters.answer]} {when}".strip())
    elif filters.done or filters.done_by:
        by = f" by {name(filters.done_by)}" if filters.done_by else ""
        words.append(f"answered{by} {when}".strip())
    if filters.open_at is not None:
        words.append(f"open at {present.moment(filters.open_at)}")
    if filters.age:
        words.append(AGE_TITLES[filters.age])
    if filters.due_soon:
        words.append("due within the hour")
    return words


def _when(done: str) -> str:
    if not done or done in DONE_TITLES:
        return DONE_TITLES.get(done, "")
    if "T" in done:
        return f"on {done[:10]} between {done[11:]}:00 and {(int(done[11:]) + 1) % 24:02d}:00"
    return f"on {done}"


def age_condition(key: str, now: datetime) -> Q:
    """Items opened ``AGES[key]`` ago: at least its first bound, less than its second."""
    low, high = AGES[key]
    condition = Q(opened_at__lte=now - low)
    return condition & Q(opened_at__gt=now - high) if high is not None else condition


def due_soon_condition(now: datetime) -> Q:
    """Not overdue yet, but due within the next hour."""
    return Q(due_at__gte=now, due_at__lt=now + DUE_SOON)


def start_of_day(day: date) -> datetime:
    """Midnight of ``day`` in the viewer's time zone (``config.middleware.time_zone``)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def done_window(key: str) -> tuple[datetime, datetime | None] | None:
    """[from, until) of ``done``: today, the last N local days (today included), one day
    given as YYYY-MM-DD, or one local hour as YYYY-MM-DDTHH; None for anything else."""
    today = timezone.localdate()
    if key in DONE_PERIODS:
        return start_of_day(today - timedelta(days=DONE_PERIODS[key] - 1)), None
    if len(key) == 13 and key[10] == "T" and key[11:].isdecimal() and int(key[11:]) < 24:
        whole = done_window(key[:10])
        if whole is None:
            return None
        start = timezone.make_aware(datetime.combine(whole[0].date(), time(int(key[11:]))))
        return start, start + timedelta(hours=1)
    try:
        day = date.fromisoformat(key) if len(key) == 10 else None
    except ValueError:
        return None
    if day is None or not date(2000, 1, 1) <= day <= today:
        return None
    return start_of_day(day), start_of_day(day + timedelta(days=1))


def delivered_answers(
    window: tuple[datetime, datetime | None] | None,
    *,
    by: int | None = None,
    status: str = SubmissionStatus.DELIVERED,
) -> QuerySet[Submission]:
    """The outer item's delivered answer, delivered within ``window`` and by ``by`` if given
    (one at most: ``one_live_submission_per_item``); or, with ``status``, its answers that
    ended so (rejected, failed) within ``window``."""
    answers = Submission.objects.filter(item=OuterRef("pk"), status=status)
    if window is not None:
        start, until = window
        answers = answers.filter(finished_at__gte=start)
        if until is not None:
            answers = answers.filter(finished_at__lt=until)
    return answers.filter(submitted_by_id=by) if by is not None else answers


def reasons_given(
    kind: str, window: tuple[datetime, datetime | None] | None, *, by: int | None = None
) -> QuerySet[ItemReason]:
    """The outer item's declines or returns (``kind``), within ``window`` and by ``by``."""
    reasons = ItemReason.objects.filter(item=OuterRef("pk"), kind=kind)
    if window is not None:
        start, until = window
        reasons = reasons.filter(at__gte=start)
        if until is not None:
            reasons = reasons.filter(at__lt=until)
    return reasons.filter(by_id=by) if by is not None else reasons


def _open_at(text: str) -> datetime | None:
    """A moment given as ISO 8601 with its offset (the dashboard's depth points), in the last
    31 days; None for anything else."""
    try:
        at = datetime.fromisoformat(text) if 0 < len(text) <= 40 else None
    except ValueError:
        return None
    if at is None or at.tzinfo is None:
        return None
    now = timezone.now()
    return at if now - timedelta(days=31) <= at <= now else None


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
    "submission.unconfirmed": "Sent, but Flows's reply was lost; will check before sending again",
    "note.added": "Note added",
    "item.declined": "Declined (not mine); back in the queue",
    "item.postponed": "Postponed",
    "item.resumed_early": "Brought back before its postponement ended",
    "item.returned": "Returned for rework",
    "item.escalated": "Escalated",
}
# Filters that mean "what can be worked now": a postponed item is not, until its time.
NOT_POSTPONED_FILTERS = frozenset({"workable", "supervising", "open"})


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
    titles = _reason_titles(item)
    entries += [
        TimelineEntry(
            a.at,
            "item",
            _audit_text(a, titles),
            roles.display_name(a.actor) if a.actor else "",
        )
        for a in audits
    ]
    return sorted(entries, key=lambda e: e.at, reverse=True)[:limit]


def _reason_titles(item: ReviewItem) -> dict[tuple[str, str], str]:
    """(kind, code) → the title of the queue's reason code, for the timeline's words."""
    codes = ReasonCode.objects.filter(queue_id=item.queue_id).values_list("kind", "code", "title")
    return {(kind, code): title for kind, code, title in codes}


def _audit_text(event: AuditEvent, titles: Mapping[tuple[str, str], str]) -> str:
    """An audit event in words; a decline or postponement says its reason by the code's title
    (the audit keeps the code only, never the reviewer's note) and a postponement its end."""
    text = AUDIT_TEXT.get(event.action, event.action)
    detail = event.detail if isinstance(event.detail, Mapping) else {}
    if event.action == "item.postponed" and detail.get("until"):
        until = _moment(detail["until"])
        if until is not None:
            text = f"{text} until {present.moment(until)}"
    if event.action == "item.escalated":
        stage = "overdue" if detail.get("stage") == "overdue" else "due soon"
        text = f"{text}: {stage}; priority raised"
    kind = REASON_ACTIONS.get(event.action)
    if kind is not None and detail.get("reason"):
        text = f"{text}: {titles.get((kind, detail['reason']), detail['reason'])}"
    return text


# Events that carry a reason code, and the kind of reason it is.
REASON_ACTIONS = {
    "item.declined": ReasonKind.DECLINE,
    "item.postponed": ReasonKind.POSTPONE,
    "item.returned": ReasonKind.RETURN,
}


def _moment(text: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        return None


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
