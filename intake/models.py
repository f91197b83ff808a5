"""Runs that Flowdesk starts: from the Start run page, from other systems through the intake API,
and from scripts; and the API clients those systems sign in as.

A ``StartedRun`` row is written *before* Create Run is called, so that the database, not timing,
decides that one key starts one Run: a repeated request (a retry, a double click, two workers of
the calling system) meets the unique constraint and answers the Run the first one started.
"""

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

from flows_integration.models import FlowRun

TOKEN_PREFIX = "fdk_"


def token_hash(token: str) -> str:
    """How a token is stored and looked up: a plain sha256 is enough for a random 256-bit
    token (no dictionary to try), and unlike a password hash it can be looked up by equality."""
    return hashlib.sha256(token.encode()).hexdigest()


class ApiClient(models.Model):
    """A system that may start Runs through the intake API, with its own token."""

    name = models.CharField(max_length=100, unique=True)
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_hint = models.CharField(
        max_length=12, editable=False, help_text="The token's first characters, to recognise it."
    )
    is_active = models.BooleanField(default=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        verbose_name = "API client"

    def __str__(self) -> str:
        return self.name

    def token_issue(self) -> str:
        """A new random token for this client; only its hash is kept, so the caller shows the
        plain token once and it can never be shown again."""
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.token_hash = token_hash(token)
        self.token_hint = token[:10]
        return token


class Source(models.TextChoices):
    PAGE = "page", "Start run page"
    API = "api", "Intake API"
    COMMAND = "command", "manage.py run_start"


class StartedRun(models.Model):
    """One request to start a Run, written before Create Run is called.

    ``flow_run`` is empty while Create Run is in flight, and stays empty with
    ``outcome_unknown`` when Flows never confirmed it (a timeout after sending, a 5xx): the Run
    may exist, so the same key never starts another one.
    """

    source = models.CharField(max_length=10, choices=Source.choices)
    client = models.ForeignKey(
        ApiClient, models.PROTECT, null=True, blank=True, related_name="started_runs"
    )
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.SET_NULL, null=True, blank=True, related_name="+"
    )
    external_id = models.CharField(
        max_length=200, blank=True, help_text="The calling system's id for this Run (intake API)."
    )
    # The Start run page's one-time key: a double click or a resent form starts one Run.
    form_key = models.UUIDField(null=True, blank=True, unique=True, editable=False)
    template_id = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    flow_run = models.OneToOneField(
        FlowRun, models.PROTECT, null=True, blank=True, related_name="started"
    )
    outcome_unknown = models.BooleanField(default=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "external_id"],
                condition=~models.Q(external_id=""),
                name="intake_external_id_unique",
            )
        ]
        permissions = [("start_run", "Can start Runs on the Start run page")]

    def __str__(self) -> str:
        return f"{self.template_id} v{self.version} ({self.get_source_display()})"
