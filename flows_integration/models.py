"""Flowdesk's mirror of a Flows server: templates as published, runs, and received events.

Get Run is the truth; these rows are a cache of it that the review queue can query quickly.
"""

from functools import cached_property

from django.conf import settings
from django.db import models
from django.utils import timezone

import flowspec


class RunStatus(models.TextChoices):
    CREATED = "CREATED", "Created"
    IN_PROGRESS = "IN_PROGRESS", "In progress"
    PENDING = "PENDING", "Waiting for input"
    COMPLETE = "COMPLETE", "Complete"
    ERROR = "ERROR", "Error"


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETE, RunStatus.ERROR})


class FlowTemplate(models.Model):
    template_id = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template_id"]

    def __str__(self) -> str:
        return self.name or self.template_id


class TemplateVersion(models.Model):
    """A template version as published; immutable once stored, like the server's."""

    template = models.ForeignKey(FlowTemplate, models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.TextField(help_text="The document as published (YAML or JSON).")
    document = models.JSONField()
    stored_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template", "number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="mirror_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.template.template_id} v{self.number}"

    @cached_property
    def spec(self) -> flowspec.Template:
        """The parsed document: input schema, callback states, their ui hints and instructions."""
        return flowspec.stored_template(self.document)

    def callback_state(self, state_id: str) -> flowspec.CallbackState | None:
        return next((s for s in self.spec.callback_states() if s.id == state_id), None)


class FlowRun(models.Model):
    """The mirror of one Run, keyed on the server's ``flowRunId``."""

    flow_run_id = models.UUIDField(unique=True)
    template = models.ForeignKey(
        FlowTemplate, models.PROTECT, null=True, blank=True, related_name="runs"
    )
    version = models.ForeignKey(
        TemplateVersion, models.PROTECT, null=True, blank=True, related_name="runs"
    )
    status = models.CharField(max_length=20, choices=RunStatus.choices)
    state_id = models.CharField(
        max_length=200, blank=True, help_text="The state a PENDING run waits in."
    )
    state_unresolved = models.BooleanField(
        default=False,
        help_text="PENDING, but neither the server nor the version says at which state.",
    )
    input_data = models.JSONField(
        default=dict,
        blank=True,
        help_text="Known for runs that Flowdesk created, and from servers that share it.",
    )
    output = models.JSONField(default=dict, blank=True)
    # What each state produced so far (state id → result): Get Run's `states`, our extension;
    # the review queue shows it as the results of earlier steps.
    state_results = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    remote_created_at = models.DateTimeField(null=True, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Written only when a sync changed something, so a pass that finds nothing new writes
    # nothing; reconcile visits the least recently changed runs first.
    synced_at = models.DateTimeField(null=True, blank=True)
    sync_error = models.CharField(max_length=500, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "synced_at"], name="mirror_run_status_sync_idx"),
            # The Runs explorer lists newest first.
            models.Index(fields=["-created_at"], name="mirror_run_created_idx"),
            # The dashboard's Runs by status: those not finished, and those finished in a period,
            # counted from the index alone.
            models.Index(fields=["status", "created_at"], name="mirror_run_status_created_idx"),
            # ...and the Runs waiting in triage: waiting Runs that no active item stands for, an
            # anti-join merged in id order with reviewqueue's one_active_item_per_run.
            models.Index(
                fields=["id"],
                condition=models.Q(status=RunStatus.PENDING),
                name="mirror_run_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return str(self.flow_run_id)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


class PauseRule(models.Model):
    """The template version that Runs started elsewhere are taken for, by the callback state they
    wait in. Sohar's Get Run and webhooks name no template: a person choosing in triage may ask
    for their choice to be remembered for every later Run waiting at that state."""

    state_id = models.CharField(max_length=200, unique=True)
    version = models.ForeignKey(TemplateVersion, models.CASCADE, related_name="pause_rules")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.state_id} → {self.version}"


class WebhookEvent(models.Model):
    """The inbox: every verified webhook, once, keyed on ``svix-id``."""

    svix_id = models.CharField(max_length=100, unique=True)
    event_type = models.CharField(max_length=50)
    flow_run_id = models.UUIDField(db_index=True)
    status = models.CharField(max_length=20, blank=True)
    state_id = models.CharField(max_length=200, blank=True)
    payload = models.JSONField()
    received_at = models.DateTimeField(default=timezone.now)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=models.Q(processed_at__isnull=True),
                name="mirror_inbox_unprocessed_idx",
            )
        ]

    def __str__(self) -> str:
        return self.svix_id


class ApiHealth(models.Model):
    """One row: how the Flows API has been answering, for the banner staff see."""

    last_success_at = models.DateTimeField(null=True, blank=True)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name = verbose_name_plural = "Flows connection"

    def __str__(self) -> str:
        return "failing" if self.is_failing else "healthy"

    @property
    def is_failing(self) -> bool:
        return self.consecutive_failures > 0


class SyncPass(models.Model):
    """Metrics of one reconcile pass."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    runs_checked = models.PositiveIntegerField(default=0)
    runs_changed = models.PositiveIntegerField(default=0)
    runs_failed = models.PositiveIntegerField(default=0)
    throttled = models.BooleanField(default=False)
    skipped = models.BooleanField(
        default=False, help_text="Not run: another pass held the lease (it outlasted the period)."
    )
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at"]
        verbose_name_plural = "sync passes"

    def __str__(self) -> str:
        return f"sync {self.started_at:%Y-%m-%d %H:%M:%S}"


class SyncLease(models.Model):
    """Who may run a periodic job now, and until when: one row per job.

    Taken with a conditional ``UPDATE`` that must touch this one row (see
    ``services.lease_acquire``), so that two beat ticks, or a tick and ``manage.py sync_runs``,
    never run reconcile passes that overlap; a holder that dies frees it by letting it expire.
    """

    name = models.CharField(max_length=50, primary_key=True)
    holder = models.CharField(max_length=32, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.name}: {self.holder or 'free'}"
