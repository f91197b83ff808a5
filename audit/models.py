from django.conf import settings
from django.db import models
from django.utils import timezone

from audit import chain


class AuditEvent(models.Model):
    """Append-only: who did or saw what, to which Run, when, from where.

    Database triggers refuse UPDATE (and DELETE on PostgreSQL), and on PostgreSQL the role the
    application runs as holds no UPDATE, DELETE or TRUNCATE on the table (docs/security.md).
    ``link`` chains every event to the one before it (``audit.chain``); ``manage.py verify_audit``
    walks the chain. ``detail`` never holds PHI: ids, statuses and field names, not values.
    """

    at = models.DateTimeField(default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, models.PROTECT, null=True, blank=True, related_name="+"
    )
    action = models.CharField(max_length=50, db_index=True)
    # The review item, by id: the trail sits below the apps it records and names their rows.
    item_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    flow_run_id = models.UUIDField(null=True, blank=True, db_index=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    link = models.CharField(max_length=64, editable=False)

    class Meta:
        ordering = ["at", "pk"]
        indexes = [
            # Handle times (the dashboard, the completed-work export): each answer's latest claim
            # by its submitter, from the index alone.
            models.Index(
                fields=["item_id", "actor", "at"],
                condition=models.Q(action="item.claimed"),
                name="audit_item_claims_idx",
            ),
        ]
        permissions = [
            ("view_patient_data", "Can see patient data in the admin (every view is audited)"),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action}"

    def content(self) -> bytes:
        return chain.content_of(self)


class AuditChainHead(models.Model):
    """The one row that says where the chain ends: its last link and length. Appending locks it,
    so events are chained one at a time, in the order their transactions take the lock."""

    link = models.CharField(max_length=64, default=chain.GENESIS)
    events = models.PositiveBigIntegerField(default=0)

    class Meta:
        verbose_name = "audit chain head"

    def __str__(self) -> str:
        return f"{self.events} events, last link {self.link[:12]}"
