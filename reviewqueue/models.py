"""The review queue: queues and their routes, one item per pause of a Run, and what staff do to it.

Statuses and the transitions between them are in ``ITEM_TRANSITIONS`` and
``SUBMISSION_TRANSITIONS``; services check them before every change (see ``services.py``).
"""

import zoneinfo
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from flows_integration.models import FlowRun, FlowTemplate, TemplateVersion


def validate_time_zone(value: str) -> None:
    """An IANA zone name this server knows (`America/New_York`), or blank for the site's."""
    if value and value not in available_time_zones():
        raise ValidationError(f"{value!r} is not a time zone this server knows.")


def available_time_zones() -> set[str]:
    return zoneinfo.available_timezones()


class BusinessCalendar(models.Model):
    """When a team works: opening hours per weekday, public holidays of a country (and state)
    from the ``holidays`` package, and the site's own days off. A queue whose SLA runs in
    business hours counts only the open time (``reviewqueue.business_hours``)."""

    name = models.CharField(max_length=100, unique=True)
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="The zone the opening hours are in (an IANA name such as America/New_York); "
        "blank is the site's time zone.",
    )
    country = models.CharField(
        max_length=2,
        blank=True,
        help_text="Public holidays of this country (ISO code such as US); blank for none.",
    )
    subdivision = models.CharField(
        max_length=10, blank=True, help_text="...and of this state or province (e.g. NY)."
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse a country or subdivision the ``holidays`` package does not know: it would
        fail when the first due time is counted, not here."""
        from reviewqueue.business_hours import holidays_check

        errors = holidays_check(self.country, self.subdivision)
        if errors:
            raise ValidationError(errors)


class OpeningHours(models.Model):
    """One open stretch of a weekday; a day may have several (a lunch break), or none (closed)."""

    class Weekday(models.IntegerChoices):
        MONDAY = 0, "Monday"
        TUESDAY = 1, "Tuesday"
        WEDNESDAY = 2, "Wednesday"
        THURSDAY = 3, "Thursday"
        FRIDAY = 4, "Friday"
        SATURDAY = 5, "Saturday"
        SUNDAY = 6, "Sunday"

    calendar = models.ForeignKey(BusinessCalendar, models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(choices=Weekday.choices)
    opens = models.TimeField()
    closes = models.TimeField()

    class Meta:
        ordering = ["calendar", "weekday", "opens"]
        verbose_name_plural = "opening hours"
        constraints = [
            models.CheckConstraint(
                condition=Q(closes__gt=models.F("opens")), name="opening_hours_closes_after_opens"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}–{self.closes:%H:%M}"


class DayOff(models.Model):
    """A day the site is closed besides public holidays (a training day, a local holiday)."""

    calendar = models.ForeignKey(BusinessCalendar, models.CASCADE, related_name="days_off")
    date = models.DateField()
    name = models.CharField(max_length=100)

    class Meta:
        ordering = ["calendar", "date"]
        verbose_name_plural = "days off"
        constraints = [
            models.UniqueConstraint(fields=["calendar", "date"], name="one_day_off_per_date")
        ]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}"


class SlaClock(models.TextChoices):
    CALENDAR = "calendar", "Calendar hours (around the clock)"
    BUSINESS = "business", "Business hours (the queue's calendar)"


class NextItemStrategy(models.TextChoices):
    MOST_URGENT = "most_urgent", "Most urgent first (priority, then due time)"
    OLDEST = "oldest", "Oldest first (opened longest ago)"
    ROUND_ROBIN = "round_robin", "Round robin between templates"
    RETURNED_FIRST = "returned_first", "Items returned to me first, then most urgent"


class Queue(models.Model):
    """A work queue; reviewers see the queues of the teams (groups) they belong to."""

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    teams = models.ManyToManyField(
        Group, blank=True, related_name="queues", help_text="Reviewers in these groups work here."
    )
    sla = models.DurationField(
        default=timedelta(hours=4), help_text="An item is due this long after it opens."
    )
    is_default = models.BooleanField(
        default=False, help_text="Items that no route names come here."
    )
    sla_clock = models.CharField(
        "SLA clock",
        max_length=10,
        choices=SlaClock.choices,
        default=SlaClock.CALENDAR,
        help_text="Business hours count only the open hours of the queue's calendar.",
    )
    calendar = models.ForeignKey(
        BusinessCalendar,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="queues",
        help_text="Required when the SLA runs in business hours.",
    )
    sla_paused_while_postponed = models.BooleanField(
        "SLA clock stops while postponed",
        default=False,
        help_text="A postponed item's due time moves on by the time it was postponed.",
    )
    warn_before = models.DurationField(
        default=timedelta(minutes=30),
        help_text="Escalate an item this long before it is due (on the SLA clock): its priority "
        "rises and the queue's supervisors are told. It escalates again when it is overdue.",
    )
    next_item_strategy = models.CharField(
        max_length=20,
        choices=NextItemStrategy.choices,
        default=NextItemStrategy.MOST_URGENT,
        help_text="Which item “Get next” hands out.",
    )
    # Round robin's turn: the template whose item "get next" handed out last.
    last_served_template = models.ForeignKey(
        FlowTemplate, models.SET_NULL, null=True, blank=True, related_name="+", editable=False
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="one_default_queue"
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """Refuse a business-hours clock that cannot count time: without a calendar, or with
        one that has no opening hours, no item would ever fall due."""
        if self.sla_clock != SlaClock.BUSINESS:
            return
        if self.calendar is None:
            raise ValidationError(
                {
                    "calendar": "An SLA in business hours needs a business calendar: choose one, "
                    "or count the SLA in calendar hours."
                }
            )
        if not self.calendar.opening_hours.exists():
            raise ValidationError(
                {
                    "calendar": f"“{self.calendar}” has no opening hours, so business hours "
                    "cannot be counted on it: add its opening hours (Business calendars), or "
                    "choose another calendar."
                }
            )


class Route(models.Model):
    """Which queue an item of a template (and, optionally, one of its states) goes to."""

    template = models.ForeignKey(FlowTemplate, models.CASCADE, related_name="routes")
    state_id = models.CharField(
        max_length=200, blank=True, help_text="A callback state; blank matches every state."
    )
    queue = models.ForeignKey(Queue, models.PROTECT, related_name="routes")
    priority = models.IntegerField(default=0, help_text="Higher is more urgent.")
    priority_path = models.CharField(
        max_length=200,
        blank=True,
        help_text="Optional path into the Run's input whose number is the priority, "
        "e.g. $input.urgency; the fixed priority applies when it is missing.",
    )
    sla = models.DurationField(
        "SLA",
        null=True,
        blank=True,
        help_text="Due this long after opening, on the queue's SLA clock; blank uses the queue's.",
    )
    # Separation of duties: read when someone takes or answers an item (selectors.barred), not
    # copied onto items, so switching it on covers the items already waiting too.
    not_by_earlier_answerers = models.BooleanField(
        "another person than earlier steps' answerers",
        default=False,
        help_text="Separation of duties: whoever answered another step of the same Run (e.g. "
        "the clinical review) may not claim, be assigned or answer this one (e.g. its sign-off).",
    )

    class Meta:
        ordering = ["template", "state_id"]
        constraints = [
            models.UniqueConstraint(fields=["template", "state_id"], name="one_route_per_state")
        ]

    def __str__(self) -> str:
        return f"{self.template} {self.state_id or '*'} → {self.queue}"

    def clean(self) -> None:
        """Refuse a state id that no stored version of the template has: a misspelt id routes
        nothing, and its items would go to the default queue without anyone noticing."""
        if not self.state_id or self.template_id is None:
            return
        versions = list(self.template.versions.order_by("number"))
        if not versions:
            raise ValidationError(
                {
                    "state_id": f"No version of {self.template.template_id} is stored yet, so "
                    "its states are unknown. Leave the state blank to route every state, or "
                    "store a copy of a version first (Flows integration › Template versions)."
                }
            )
        # state id → (its title in the latest version that has it, the versions that have it)
        states: dict[str, tuple[str, list[int]]] = {}
        for version in versions:
            for state in version.spec.callback_states():
                numbers = states.get(state.id, ("", []))[1]
                states[state.id] = (state.title, [*numbers, version.number])
        if self.state_id in states:
            return
        valid = []
        for state_id, (title, numbers) in states.items():
            where = (
                ""
                if len(numbers) == len(versions)
                else ", " + ", ".join(f"v{number}" for number in numbers)
            )
            valid.append(f"{state_id} ({title}{where})")
        raise ValidationError(
            {
                "state_id": f"“{self.state_id}” is no waiting (callback) state of "
                f"{self.template.template_id} in any stored version. Valid states: "
                f"{'; '.join(valid) or 'none'}. Leave it blank to route every state. A "
                "version published since is known here once Flowdesk stores its copy (Flows "
                "integration › Template versions › Copy new versions from the Flows server)."
            }
        )


class ItemStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    SENDING = "sending", "Sending"
    DELIVERED = "delivered", "Delivered"
    RESUMED = "resumed", "Run resumed"
    SUPERSEDED = "superseded", "Superseded"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


# Allowed moves; a service refuses any other. A 400 from Update Run sends SENDING back to
# CLAIMED for the same reviewer; a supervisor re-sends or reopens NEEDS_ATTENTION.
ITEM_TRANSITIONS: dict[str, frozenset[str]] = {
    ItemStatus.OPEN: frozenset({ItemStatus.CLAIMED, ItemStatus.SUPERSEDED}),
    ItemStatus.CLAIMED: frozenset(
        {ItemStatus.CLAIMED, ItemStatus.OPEN, ItemStatus.SENDING, ItemStatus.SUPERSEDED}
    ),
    ItemStatus.SENDING: frozenset(
        {
            ItemStatus.DELIVERED,
            ItemStatus.RESUMED,
            ItemStatus.CLAIMED,
            ItemStatus.SUPERSEDED,
            ItemStatus.NEEDS_ATTENTION,
        }
    ),
    ItemStatus.DELIVERED: frozenset({ItemStatus.RESUMED}),
    ItemStatus.NEEDS_ATTENTION: frozenset(
        {ItemStatus.SENDING, ItemStatus.SUPERSEDED, ItemStatus.DELIVERED, ItemStatus.RESUMED}
    ),
    ItemStatus.RESUMED: frozenset(),
    ItemStatus.SUPERSEDED: frozenset(),
}
# An item in one of these still stands for the Run's current pause.
ACTIVE_STATUSES = frozenset(
    {
        ItemStatus.OPEN,
        ItemStatus.CLAIMED,
        ItemStatus.SENDING,
        ItemStatus.DELIVERED,
        ItemStatus.NEEDS_ATTENTION,
    }
)
# ...and in these a reviewer may still work on it.
WORKABLE_STATUSES = frozenset({ItemStatus.OPEN, ItemStatus.CLAIMED})
# A supervisor's default view: what reviewers work on, and what only a supervisor can unblock.
SUPERVISING_STATUSES = WORKABLE_STATUSES | {ItemStatus.NEEDS_ATTENTION}


class ReviewItem(models.Model):
    """One pause of a Run (an *episode*): the Run waits in ``state_id`` for a person's input."""

    run = models.ForeignKey(FlowRun, models.PROTECT, related_name="review_items")
    episode = models.PositiveIntegerField()
    queue = models.ForeignKey(Queue, models.PROTECT, related_name="items")
    # The Run's own version: a newer version never changes a form already in someone's queue.
    version = models.ForeignKey(TemplateVersion, models.PROTECT, related_name="review_items")
    state_id = models.CharField(max_length=200)
    status = models.CharField(
        max_length=20, choices=ItemStatus.choices, default=ItemStatus.OPEN, db_index=True
    )
    status_changed_at = models.DateTimeField(default=timezone.now)
    priority = models.IntegerField(default=0)
    due_at = models.DateTimeField()
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    claimed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        models.PROTECT,
        null=True,
        blank=True,
        related_name="claimed_items",
    )
    lease_until = models.DateTimeField(null=True, blank=True)
    # Copied from the Run's input at opening so the queue can search it without reading JSON.
    patient_name = models.CharField(max_length=200, blank=True)
    # A search key for the run id as text (a UUID column cannot be searched by prefix).
    run_ref = models.CharField(max_length=36)
    # Postponed (services.item_postpone): open, but not workable before then. Read as a
    # condition (``selectors.postponed``), so the item comes back by itself when the time passes.
    postponed_until = models.DateTimeField(null=True, blank=True)
    # Returned for rework (services.item_return) to whoever answered the Run's earlier pause:
    # the queues' "returned to me first" strategy hands it to them first.
    returned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    # Each escalation happens once (reviewqueue.escalation): near its due time, and overdue.
    escalated_near_due_at = models.DateTimeField(null=True, blank=True)
    escalated_overdue_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-priority", "due_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["run", "episode"], name="one_item_per_episode"),
            # At most one item stands for a Run's current pause, however the signals arrive.
            models.UniqueConstraint(
                fields=["run"],
                condition=Q(status__in=sorted(ACTIVE_STATUSES)),
                name="one_active_item_per_run",
            ),
        ]
        indexes = [
            # The queue page and "get next": workable items of some queues, most urgent first.
            models.Index(
                "queue",
                models.F("priority").desc(),
                "due_at",
                "id",
                condition=Q(status__in=sorted(WORKABLE_STATUSES)),
                name="item_workable_idx",
            ),
            models.Index(
                fields=["lease_until"],
                condition=Q(status=ItemStatus.CLAIMED),
                name="item_lease_idx",
            ),
            # ...and the same order across queues (a supervisor, a reviewer of several queues):
            # without it PostgreSQL sorts every workable item for each page.
            models.Index(
                models.F("priority").desc(),
                "due_at",
                "id",
                condition=Q(status__in=sorted(WORKABLE_STATUSES)),
                name="item_workable_any_queue_idx",
            ),
            # ...and a supervisor's default view, which adds the items that need attention.
            models.Index(
                models.F("priority").desc(),
                "due_at",
                "id",
                condition=Q(status__in=sorted(SUPERVISING_STATUSES)),
                name="item_supervising_idx",
            ),
            # "N new items since you opened the page", on every refresh.
            models.Index(
                fields=["opened_at"],
                condition=Q(status__in=sorted(WORKABLE_STATUSES)),
                name="item_workable_opened_idx",
            ),
            # Search by the start of a run id: a prefix LIKE needs pattern ops under a non-C
            # collation (PostgreSQL only; other databases ignore opclasses).
            models.Index(
                fields=["run_ref"], name="item_run_ref_idx", opclasses=["varchar_pattern_ops"]
            ),
            # The dashboard's depth over time: items open now (closed_at empty), and items
            # opened, and closed, per queue and hour of the last 14 days, from the index alone.
            models.Index(fields=["opened_at", "queue"], name="item_opened_queue_idx"),
            # ...and its open items per queue by age and due time: every column it reads.
            models.Index(
                fields=["queue", "status", "opened_at", "due_at"],
                condition=Q(status__in=sorted(SUPERVISING_STATUSES)),
                name="item_supervising_counts_idx",
            ),
            models.Index(fields=["closed_at", "queue", "opened_at"], name="item_closed_queue_idx"),
            # ...and its answers: the period's delivered answers joined to their completed
            # items, whose queue (and template) is read from this index alone, where the
            # status index took a heap fetch for each of every completed item.
            models.Index(
                fields=["id", "queue", "version"],
                condition=Q(status__in=[ItemStatus.DELIVERED, ItemStatus.RESUMED]),
                name="item_completed_queue_idx",
            ),
        ]
        permissions = [("supervise_item", "Can supervise every queue and reassign items")]

    def __str__(self) -> str:
        return f"{self.run_ref[:8]} {self.state_id}"

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def is_overdue(self) -> bool:
        return self.is_active and self.due_at < timezone.now()

    @property
    def is_postponed(self) -> bool:
        return self.postponed_until is not None and self.postponed_until > timezone.now()

    def lease_held_by(self, user: object) -> bool:
        """Whether ``user`` holds a live claim (an expired lease is nobody's until released)."""
        return (
            self.status == ItemStatus.CLAIMED
            and self.claimed_by_id == getattr(user, "pk", None)
            and self.lease_until is not None
            and self.lease_until > timezone.now()
        )


class SubmissionStatus(models.TextChoices):
    PENDING = "pending", "Waiting to be sent"
    DELIVERED = "delivered", "Delivered"
    REJECTED = "rejected", "Rejected by Flows"
    REFUSED = "refused", "Refused: the Run moved on"
    FAILED = "failed", "Failed after retries"


SUBMISSION_TRANSITIONS: dict[str, frozenset[str]] = {
    SubmissionStatus.PENDING: frozenset(
        {
            SubmissionStatus.DELIVERED,
            SubmissionStatus.REJECTED,
            SubmissionStatus.REFUSED,
            SubmissionStatus.FAILED,
        }
    ),
    # A supervisor may send a failed submission again once the API is back.
    # An answer whose outcome was unknown is settled delivered once the Run is seen past its
    # pause, or by a supervisor.
    SubmissionStatus.FAILED: frozenset(
        {SubmissionStatus.PENDING, SubmissionStatus.REFUSED, SubmissionStatus.DELIVERED}
    ),
    SubmissionStatus.DELIVERED: frozenset(),
    SubmissionStatus.REJECTED: frozenset(),
    SubmissionStatus.REFUSED: frozenset(),
}


class Submission(models.Model):
    """A reviewer's answer and its outbox state: the row is the outbox, Celery only delivers."""

    item = models.ForeignKey(ReviewItem, models.PROTECT, related_name="submissions")
    submitted_by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    input = models.JSONField()
    status = models.CharField(
        max_length=20, choices=SubmissionStatus.choices, default=SubmissionStatus.PENDING
    )
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A worker holds the submission until then; a worker that died lets it go.
    locked_until = models.DateTimeField(null=True, blank=True)
    # Set before each Update Run call and cleared once its outcome is known: when it is still set,
    # the last call may have been applied, so Get Run decides before anything is sent again.
    maybe_sent = models.BooleanField(default=False)
    last_error = models.CharField(max_length=500, blank=True)
    field_errors = models.JSONField(default=list, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # Handle time runs from here: the submitter's latest claim of the item at or before the
    # answer (so rework after a 400 counts, and time someone else held it does not). None when
    # they never claimed it (it was reassigned to them). Kept with the answer so the dashboard
    # and the exports need not look each one up in the audit trail.
    claimed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Double click, two tabs, a replayed POST: one live submission per item.
            models.UniqueConstraint(
                fields=["item"],
                condition=Q(status__in=[SubmissionStatus.PENDING, SubmissionStatus.DELIVERED]),
                name="one_live_submission_per_item",
            )
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status=SubmissionStatus.PENDING),
                name="submission_outbox_idx",
            ),
            # The dashboard's completed counts and handle times, and the completed-work export:
            # answers delivered in a period, with what they are grouped by.
            # (Key columns rather than INCLUDE, which SQLite refuses with a system check warning.)
            models.Index(
                fields=["finished_at", "item", "submitted_by", "created_at", "claimed_at"],
                condition=Q(status=SubmissionStatus.DELIVERED),
                name="submission_delivered_claim_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"submission {self.pk} ({self.status})"


class Draft(models.Model):
    """What a reviewer has typed so far, as posted (values as typed, even invalid ones)."""

    item = models.ForeignKey(ReviewItem, models.CASCADE, related_name="drafts")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    data = models.JSONField(help_text="The form's fields: name → list of values.")
    saved_at = models.DateTimeField(default=timezone.now)
    # Which reading of which page load these values are (set by schema_forms.js; empty without
    # script): of two saves from one page, the later reading is kept whatever arrives last.
    page_load = models.CharField(max_length=40, blank=True, default="")
    reading = models.PositiveBigIntegerField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["item", "user"], name="one_draft_per_user")]

    def is_later_than(self, reading: tuple[str, int] | None) -> bool:
        """Whether this draft holds a later reading of the same page load than ``reading``."""
        if reading is None or self.reading is None:
            return False
        page, count = reading
        return bool(page) and self.page_load == page and self.reading > count

    def __str__(self) -> str:
        return f"draft of {self.item_id} by {self.user_id}"


class Note(models.Model):
    item = models.ForeignKey(ReviewItem, models.PROTECT, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    body = models.TextField(max_length=5000)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"note {self.pk}"


class StaffPreferences(models.Model):
    """What one person chose for their own pages: the time zone every time is shown in
    (``config.middleware.time_zone`` activates it; blank means the site's ``TIME_ZONE``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, related_name="staff_preferences"
    )
    time_zone = models.CharField(
        max_length=64,
        blank=True,
        validators=[validate_time_zone],
        help_text="An IANA name such as America/New_York; blank shows the site's time zone.",
    )
    # The notification kinds this person also wants by e-mail (a link only, never PHI).
    email_notifications = models.JSONField(default=list, blank=True)
    # A supervisor paused this person's "get next" (out sick); their claims went back.
    get_next_paused_at = models.DateTimeField(null=True, blank=True)
    get_next_paused_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = verbose_name_plural = "staff preferences"

    def __str__(self) -> str:
        return f"preferences of {self.user}"


class LatestSignIn(models.Model):
    """Each person's latest sign-in, so that ``SESSION_ONE_PER_USER`` can end the others: a
    session that carries another sign-in's key was replaced and ends on its next request
    (``config.middleware.session_limits``). One row per person, overwritten at each sign-in: of
    two sign-ins racing each other, the one written last stays, and only that one."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, models.CASCADE, primary_key=True, related_name="+"
    )
    key = models.CharField(max_length=32)
    signed_in_at = models.DateTimeField()

    class Meta:
        verbose_name = "latest sign-in"

    def __str__(self) -> str:
        return f"latest sign-in of user {self.user_id}"


class ReasonKind(models.TextChoices):
    DECLINE = "decline", "Decline"
    POSTPONE = "postpone", "Postpone"
    RETURN = "return", "Return for rework"


class ReasonCode(models.Model):
    """A reason a reviewer may give for declining, postponing or returning an item of one queue
    (configured in the admin, on the queue). Retired by ``active``, never deleted once used
    (PROTECT)."""

    queue = models.ForeignKey(Queue, models.CASCADE, related_name="reason_codes")
    kind = models.CharField(max_length=10, choices=ReasonKind.choices)
    code = models.SlugField(max_length=40, help_text="Short and stable: reports and audit use it.")
    title = models.CharField(max_length=100, help_text="What reviewers choose from.")
    active = models.BooleanField(default=True)
    order = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["queue", "kind", "order", "title"]
        constraints = [
            models.UniqueConstraint(fields=["queue", "kind", "code"], name="one_reason_code")
        ]

    def __str__(self) -> str:
        return self.title


class ItemReason(models.Model):
    """Why someone declined or postponed an item. ``text`` is the reviewer's optional note and
    may hold patient data: it stays on this row, never in the audit trail (which keeps the code)."""

    TEXT_MAX = 500

    item = models.ForeignKey(ReviewItem, models.CASCADE, related_name="reasons")
    kind = models.CharField(max_length=10, choices=ReasonKind.choices)
    # Blank when the queue has no reason codes; kept as text so a renamed or retired code still
    # says what was chosen.
    code = models.CharField(max_length=40, blank=True)
    reason = models.ForeignKey(
        ReasonCode, models.PROTECT, null=True, blank=True, related_name="uses"
    )
    text = models.CharField(max_length=TEXT_MAX, blank=True)
    by = models.ForeignKey(settings.AUTH_USER_MODEL, models.PROTECT, related_name="+")
    at = models.DateTimeField(default=timezone.now)
    until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            # "Get next" passes over the items the asker declined (``selectors.declined_by``).
            models.Index(fields=["by", "kind", "item"], name="item_reason_by_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} of {self.item_id} by {self.by_id}"


class NotificationKind(models.TextChoices):
    ASSIGNED = "assigned", "Assigned to you"
    RETURNED = "returned", "Returned to you"
    NEAR_DUE = "near_due", "Due soon"
    OVERDUE = "overdue", "Overdue"
    NEEDS_ATTENTION = "needs_attention", "Needs attention"


class Notification(models.Model):
    """Something one person should know about an item, shown in the app (unread count in the
    header) and e-mailed when they opted in. ``text`` never holds patient data: it names the
    item by its Run's short id and its step, as the queue does."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    kind = models.CharField(max_length=20, choices=NotificationKind.choices)
    item = models.ForeignKey(
        ReviewItem, models.CASCADE, null=True, blank=True, related_name="notifications"
    )
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [
            # The header's unread count, on every page.
            models.Index(
                fields=["user", "created_at"],
                condition=Q(read_at__isnull=True),
                name="notification_unread_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} for {self.user_id}"


class SavedView(models.Model):
    """A supervisor's named dashboard filters (team, queue, template, period): a query string,
    which never holds patient data (the dashboard's filters are ids and periods)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, models.CASCADE, related_name="+")
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["user", "name"], name="one_view_name")]

    def __str__(self) -> str:
        return self.name
