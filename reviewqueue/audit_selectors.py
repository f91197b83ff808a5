"""The audit report for compliance staff: the trail filtered by person, patient, Run, action and
time (docs/security.md). Reads only; the views audit the reading."""

import json
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date

from audit.models import AuditEvent
from flows_integration.models import FlowRun
from reviewqueue.selectors import AUDIT_TEXT

PAGE_SIZE = 50

# What each kind of event is called on the report (the item timeline's wording where it has one).
ACTION_TITLES = {
    **AUDIT_TEXT,
    "item.opened": "Item opened",
    "item.viewed": "Item viewed",
    "queue.viewed": "Queue viewed",
    "runs.viewed": "Runs list viewed",
    "run.viewed": "Run viewed",
    "run.status_viewed": "Run status viewed",
    "run.started": "Run started",
    "run.triaged": "Run triaged",
    "run.resynced": "Run re-synced",
    "login": "Signed in",
    "logout": "Signed out",
    "login.failed": "Sign-in failed",
    "login.locked_out": "Locked out after failed sign-ins",
    "signin.unlocked": "Sign-in unlocked",
    "password.changed": "Password changed",
    "password.reset": "Password reset by e-mail",
    "two_factor.enrolled": "Two-step sign-in set up",
    "two_factor.verified": "Two-step code accepted",
    "two_factor.failed": "Two-step code refused",
    "two_factor.recovery_code_used": "Recovery code used to sign in",
    "two_factor.recovery_codes_created": "New recovery codes made",
    "two_factor.reset": "Two-step sign-in reset by an administrator",
    "user.created": "Account created at first single sign-on",
    "admin.viewed": "Patient data opened in the admin",
    "admin.list_viewed": "Patient data listed in the admin",
    "config.added": "Configuration added",
    "config.changed": "Configuration changed",
    "config.deleted": "Configuration deleted",
    "config.relation_changed": "Roles or members changed",
    "audit.viewed": "Audit report viewed",
    "audit.exported": "Audit report exported",
    "report.exported": "Report exported",
    "intake.client_created": "API client created",
    "intake.client_revoked": "API client revoked",
    "reviewer.get_next_paused": "Someone's “Get next” paused",
    "reviewer.get_next_resumed": "Someone's “Get next” resumed",
}

READS = (
    "item.viewed",
    "queue.viewed",
    "runs.viewed",
    "run.viewed",
    "run.status_viewed",
    "admin.viewed",
    "admin.list_viewed",
)

# The report's action filter: a family of events (``item.`` is every ``item.*``; reads are never
# "work"), or one kind.
ACTION_GROUPS = {
    "reads": ("Every read of patient data", READS),
    "work": ("Work on items", ("item.", "submission.", "note.", "reviewer.")),
    "signin": ("Sign-in and accounts", ("login", "logout", "signin.", "password.", "two_factor.")),
    "config": ("Configuration and roles", ("config.",)),
    "audit": ("The audit report itself", ("audit.",)),
}


@dataclass
class AuditFilters:
    person: str = ""
    patient: str = ""
    run: uuid.UUID | None = None
    run_text: str = ""  # as typed, to show again when it is not a Run id
    action: str = ""
    start: date | None = None
    end: date | None = None
    page: int = 1
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> "AuditFilters":
        """The report's filters; a value that cannot be read is an error on its field (the
        report then shows nothing rather than more than was asked for)."""
        query = {key: value.replace("\x00", "").strip() for key, value in query.items()}
        found = cls(person=query.get("person", "")[:150], patient=query.get("q", "")[:100])
        if run := query.get("run", "")[:100]:
            found.run_text = run
            try:
                found.run = uuid.UUID(run)
            except ValueError:
                found.errors["run"] = f"“{run[:40]}” is not a Run id (a UUID such as 0f8fad5b-…)."
        action = query.get("action", "")
        if action in ACTION_GROUPS or action in ACTION_TITLES:
            found.action = action
        elif action:
            found.errors["action"] = "Choose an action from the list."
        for name in ("start", "end"):
            text = query.get(name, "")
            try:
                day = parse_date(text) if text else None
            except ValueError:
                day = None
            if text and day is None:
                found.errors[name] = f"“{text[:20]}” is not a date (YYYY-MM-DD)."
            setattr(found, name, day)
        if found.start and found.end and found.start > found.end:
            found.errors["end"] = "The end is before the start."
        page = query.get("page", "1")
        found.page = max(1, min(int(page), 10_000)) if page.isdecimal() and len(page) < 6 else 1
        return found

    @property
    def any(self) -> bool:
        return any((self.person, self.patient, self.run, self.action, self.start, self.end))

    def described(self) -> dict[str, Any]:
        """The filters as the audit event of reading the report keeps them: the patient's name
        is PHI, so only that one was given."""
        return {
            "person": self.person or None,
            "patient_given": bool(self.patient),
            "run": str(self.run) if self.run else None,
            "action": self.action or None,
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
        }


def events_matching(filters: AuditFilters) -> QuerySet[AuditEvent]:
    """Newest first. Days are the viewer's days (their time zone is active)."""
    events = AuditEvent.objects.select_related("actor").order_by("-at", "-pk")
    if filters.errors:
        return events.none()
    if filters.person:
        events = events.filter(actor__username__iexact=filters.person)
    if filters.patient:
        runs = FlowRun.objects.filter(review_items__patient_name__icontains=filters.patient)
        events = events.filter(flow_run_id__in=runs.values("flow_run_id"))
    if filters.run:
        events = events.filter(flow_run_id=filters.run)
    if filters.action in ACTION_GROUPS:
        _, kinds = ACTION_GROUPS[filters.action]
        events = events.filter(_actions_of(kinds))
        if filters.action != "reads":
            events = events.exclude(action__in=READS)
    elif filters.action:
        events = events.filter(action=filters.action)
    zone = timezone.get_current_timezone()
    if filters.start:
        events = events.filter(at__gte=datetime.combine(filters.start, time.min, zone))
    if filters.end:
        events = events.filter(at__lt=datetime.combine(filters.end + timedelta(1), time.min, zone))
    return events


def _actions_of(kinds: tuple[str, ...]) -> Q:
    """``item.`` is every ``item.*`` action; anything else is one action."""
    condition = Q(action__in=[kind for kind in kinds if not kind.endswith(".")])
    for family in (kind for kind in kinds if kind.endswith(".")):
        condition |= Q(action__startswith=family)
    return condition


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    page: int
    has_next: bool


def audit_page(filters: AuditFilters) -> AuditPage:
    start = (filters.page - 1) * PAGE_SIZE
    rows = list(events_matching(filters)[start : start + PAGE_SIZE + 1])
    return AuditPage(rows[:PAGE_SIZE], filters.page, len(rows) > PAGE_SIZE)


def action_title(action: str) -> str:
    if action in ACTION_TITLES:
        return ACTION_TITLES[action]
    family, _, kind = action.partition(".")
    return f"{family.replace('_', ' ').capitalize()}: {kind.replace('_', ' ')}".rstrip(": ")


def detail_text(detail: Mapping[str, Any]) -> str:
    """The event's detail as a line for people: ``state: clinical-review · via: get_next``."""
    parts = []
    for key, value in detail.items():
        if value in (None, "", [], {}):
            continue
        if isinstance(value, list):
            value = ", ".join(str(v) for v in value[:10]) + (" …" if len(value) > 10 else "")
        elif isinstance(value, bool):
            value = "yes" if value else "no"
        parts.append(f"{key.replace('_', ' ')}: {value}")
    return " · ".join(parts)


def export_rows(filters: AuditFilters) -> Iterator[list[str]]:
    """Every matching event, oldest first, as CSV rows: times in UTC (ISO 8601), the detail as
    JSON."""
    yield [
        "time_utc",
        "login",
        "name",
        "action",
        "action_title",
        "run_id",
        "item_id",
        "address",
        "detail",
    ]
    events = events_matching(filters).order_by("at", "pk")
    for event in events.iterator(chunk_size=2000):
        actor = event.actor
        row = [
            event.at.astimezone(UTC).isoformat(),
            actor.get_username() if actor else "",
            actor.get_full_name() if actor else "",
            event.action,
            action_title(event.action),
            str(event.flow_run_id or ""),
            str(event.item_id or ""),
            event.ip or "",
            json.dumps(event.detail, sort_keys=True, ensure_ascii=False),
        ]
        # csv_export.csv_lines keeps a cell that looks like a formula as text.
        yield row
