"""The engine's own tables: published template versions, API clients, runs and webhooks.

These mirror nothing of Flowdesk's: the engine is a separate service that happens to share the
process in development, and the two talk over HTTP only.
"""

import base64
import hashlib
import secrets
import uuid
from datetime import timedelta
from functools import cached_property

from django.contrib.auth.hashers import check_password, make_password
from django.db import models
from django.utils import timezone

import flowspec


class Environment(models.TextChoices):
    SANDBOX = "sandbox", "Sandbox"
    PRODUCTION = "production", "Production"


class Template(models.Model):
    template_id = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template_id"]

    def __str__(self) -> str:
        return self.template_id

    def latest_version(self) -> "TemplateVersion | None":
        return self.versions.order_by("-number").first()


class TemplateVersion(models.Model):
    """One published, immutable version of a template; runs keep theirs to the end."""

    template = models.ForeignKey(Template, models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.TextField(help_text="The document as published (YAML or JSON).")
    document = models.JSONField()
    published_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["template", "number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="engine_version_unique")
        ]

    def __str__(self) -> str:
        return f"{self.template.template_id} v{self.number}"

    @cached_property
    def spec(self) -> flowspec.Template:
        # Stored documents were validated when published, so this cannot fail short of a
        # flowspec change that invalidates old versions, which would be a bug worth crashing on.
        return flowspec.stored_template(self.document)


class ApiClient(models.Model):
    """Client credentials for the token endpoint; the environment decides the event names."""

    name = models.CharField(max_length=200)
    client_id = models.CharField(max_length=100, unique=True)
    secret_hash = models.CharField(max_length=200)
    environment = models.CharField(max_length=20, choices=Environment.choices)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.client_id} ({self.environment})"

    def set_secret(self, secret: str) -> None:
        self.secret_hash = make_password(secret)

    def check_secret(self, secret: str) -> bool:
        return check_password(secret, self.secret_hash)


class AccessToken(models.Model):
    # Only a hash is stored, so a leaked database does not leak usable tokens.
    token_hash = models.CharField(max_length=64, unique=True)
    client = models.ForeignKey(ApiClient, models.CASCADE, related_name="tokens")
    expires_at = models.DateTimeField(db_index=True)

    @staticmethod
    def hash(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    @classmethod
    def issue(cls, client: ApiClient, ttl_seconds: int) -> tuple[str, "AccessToken"]:
        token = secrets.token_urlsafe(32)
        row = cls.objects.create(
            token_hash=cls.hash(token),
            client=client,
            expires_at=timezone.now() + timedelta(seconds=ttl_seconds),
        )
        return token, row


class RunStatus(models.TextChoices):
    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    PENDING = "PENDING"
    COMPLETE = "COMPLETE"
    ERROR = "ERROR"


TERMINAL_STATUSES = frozenset({RunStatus.COMPLETE, RunStatus.ERROR})

# The executor's lifecycle: CREATED → IN_PROGRESS → (PENDING ⇄ IN_PROGRESS)* → COMPLETE | ERROR.
# A run may also go straight from CREATED to PENDING when its first state is a callback.
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.CREATED: frozenset({RunStatus.IN_PROGRESS, RunStatus.PENDING, RunStatus.ERROR}),
    RunStatus.IN_PROGRESS: frozenset(
        {RunStatus.IN_PROGRESS, RunStatus.PENDING, RunStatus.COMPLETE, RunStatus.ERROR}
    ),
    RunStatus.PENDING: frozenset({RunStatus.IN_PROGRESS}),
    RunStatus.COMPLETE: frozenset(),
    RunStatus.ERROR: frozenset(),
}


class Run(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    version = models.ForeignKey(TemplateVersion, models.PROTECT, related_name="runs")
    client = models.ForeignKey(ApiClient, models.SET_NULL, null=True, related_name="runs")
    environment = models.CharField(max_length=20, choices=Environment.choices)
    status = models.CharField(max_length=20, choices=RunStatus.choices, default=RunStatus.CREATED)
    state_id = models.CharField(max_length=200, blank=True)
    input_data = models.JSONField(default=dict)
    # What each finished state produced: the `$states` of path expressions.
    state_outputs = models.JSONField(default=dict)
    output = models.JSONField(default=dict)
    errors = models.JSONField(default=list)
    # Bumped on every transition; a step computed against an older value is discarded, which
    # is what makes a step safe to run twice.
    step = models.PositiveIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(
        default=0, help_text="Attempts already made at the current request state."
    )
    wake_at = models.DateTimeField(
        null=True, blank=True, help_text="When a retry is due, or when a callback times out."
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "updated_at"], name="engine_run_status_idx")]

    def __str__(self) -> str:
        return str(self.id)

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def context(self) -> dict:
        """The data that path expressions read: ``$input`` and ``$states``."""
        return {"input": self.input_data, "states": self.state_outputs}


class WebhookEndpoint(models.Model):
    url = models.URLField(max_length=500)
    secret = models.CharField(max_length=200, help_text="The signing secret, whsec_…")
    environment = models.CharField(max_length=20, choices=Environment.choices)
    description = models.CharField(max_length=200, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.url} ({self.environment})"

    @staticmethod
    def generate_secret() -> str:
        return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"


class WebhookMessage(models.Model):
    """One event for one endpoint; its ``msg_id`` is the ``svix-id`` of every attempt."""

    msg_id = models.CharField(max_length=40, unique=True)
    endpoint = models.ForeignKey(WebhookEndpoint, models.CASCADE, related_name="messages")
    run = models.ForeignKey(Run, models.CASCADE, related_name="webhook_messages")
    event_type = models.CharField(max_length=50)
    payload = models.JSONField()
    status = models.CharField(
        max_length=20, choices=MessageStatus.choices, default=MessageStatus.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    # A delivery claims the message until this time, so two workers never send it at once.
    claimed_until = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="engine_msg_due_idx"),
        ]

    def __str__(self) -> str:
        return self.msg_id

    @staticmethod
    def new_msg_id() -> str:
        return "msg_" + secrets.token_urlsafe(18)


class WebhookAttempt(models.Model):
    message = models.ForeignKey(WebhookMessage, models.CASCADE, related_name="delivery_attempts")
    attempted_at = models.DateTimeField(default=timezone.now)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True)
    error = models.CharField(max_length=500, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["attempted_at"]

    def __str__(self) -> str:
        return f"{self.message.msg_id} @ {self.attempted_at:%H:%M:%S}"

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300
